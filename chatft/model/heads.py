"""The cosine intent head: class scores from the angle between the sentence vector and each class's vector.

Why it exists: a linear head scores ``w·x + b``, so a class can win by the length of its weight vector or of
the sentence vector, not only by direction. sentence-transformers encoders (the default MiniLM-L6 and
all-mpnet-base-v2) were pretrained so that the *cosine* between two sentence vectors says how alike they
are; a head that compares directions only asks the same question, and few-shot image and text classifiers
that normalise both sides ("Baseline++", Chen et al. 2019; NormFace, Wang et al. 2017) separate classes
better from few examples. ``--model.intent_head cosine`` selects it (:class:`chatft.model.joint.JointModel`).

The scale: cosines lie in [-1, 1], so the logits are multiplied by a fixed ``s`` or the softmax could never
become confident. AdaCos (Zhang et al. 2019) derives ``s = sqrt(2) * ln(C - 1)`` for ``C`` classes as the
value at which the softmax's probability of the right class still changes most where it matters; we take
it as given rather than adding a knob (7.1 for CLINC150's 151 intents with ``<unk>``, 4.3 for ATIS's 22).
It is a buffer, so checkpoints and ONNX carry it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["CosineHead", "adacos_scale"]


def adacos_scale(num_classes: int) -> float:
    """AdaCos's fixed scale ``sqrt(2) * ln(C - 1)``, at least 1 (one or two classes would give <= 0)."""
    return max(1.0, math.sqrt(2.0) * math.log(max(num_classes - 1, 1)))


class CosineHead(nn.Module):
    """``scale x cos(x, w_c)`` for each class ``c``: no bias, weights ``[C, H]`` initialised as ``nn.Linear``'s."""

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, in_features))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # nn.Linear's init; only directions matter
        self.register_buffer("scale", torch.tensor(adacos_scale(num_classes)), persistent=True)

    def forward(self, x: Tensor) -> Tensor:
        # eps keeps an all-zero vector (a padded row) finite; normalising in float32 under bf16 autocast.
        x = F.normalize(x.float(), dim=-1, eps=1e-6)
        w = F.normalize(self.weight.float(), dim=-1, eps=1e-6)
        return self.scale * (x @ w.t())

    def extra_repr(self) -> str:
        return f"in_features={self.weight.shape[1]}, num_classes={self.weight.shape[0]}, scale={float(self.scale):.3f}"
