"""Optimizer parameter groups: which learning rate and weight decay each parameter trains with.

A pure function of the parameter names, so the rule is testable without building an optimizer.
Layer-wise learning-rate decay (Howard & Ruder 2018; Sun et al. 2019, "How to fine-tune BERT for text
classification") lets the top transformer layer train at the peak rate and each layer below at
``decay`` times the one above it, the embeddings lowest: the lower layers hold general features that a
small labelled set should move least. ``decay = 1`` is the plain two-rate recipe (encoder, heads).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from chatft.model.added_rows import ADDED_ROWS

_NO_DECAY = (
    "bias",
    "LayerNorm.weight",
    "LayerNorm.bias",
    "layer_norm.weight",
    "layernorm.weight",
    "norm.weight",
)
_LAYER = re.compile(r"\.layers?\.(\d+)\.")


def encoder_depth(name: str, num_layers: int) -> int:
    """How many layers below the top an encoder parameter sits: 0 for the top layer (and the pooler),
    ``num_layers - 1 - i`` for layer ``i``, ``num_layers`` for the embeddings."""
    match = _LAYER.search(name)
    if match:
        return num_layers - 1 - int(match.group(1))
    return num_layers if ".embeddings." in name else 0


def parameter_groups(
    named_parameters: Iterable[tuple[str, object]],
    *,
    learning_rate: float,
    head_learning_rate: float,
    weight_decay: float,
    num_layers: int,
    layer_lr_decay: float = 1.0,
    added_token_lr: float | None = None,
    intent_head_learning_rate: float | None = None,
) -> list[dict]:
    """AdamW groups ``{"params", "lr", "weight_decay"}``, one per distinct (lr, decay) pair, in first-seen order.

    Parameters named ``encoder.*`` train at ``learning_rate x layer_lr_decay ** depth``, everything else
    (heads, CRF) at ``head_learning_rate``, except the intent head (``intent_head.*``), which trains at
    ``intent_head_learning_rate`` where one is given (few-shot sets: :mod:`chatft.training.schedule`).
    Biases, LayerNorm weights and the CRF get no weight decay.
    Parameters with ``requires_grad = False`` are left out. With ``added_token_lr``, the embedding rows added
    for units the tokenizer lacked (a parameter named ``...added_rows``: :mod:`chatft.model.added_rows`) train
    at that rate without weight decay: they start from one shared vector and have everything to learn.
    """
    groups: dict[tuple[float, float], list] = {}
    for name, p in named_parameters:
        if not p.requires_grad:
            continue
        if added_token_lr is not None and name.endswith("." + ADDED_ROWS):
            groups.setdefault((added_token_lr, 0.0), []).append(p)
            continue
        if name.startswith("encoder."):
            lr = learning_rate * layer_lr_decay ** encoder_depth(name, num_layers)
        elif intent_head_learning_rate is not None and name.startswith("intent_head."):
            lr = intent_head_learning_rate
        else:
            lr = head_learning_rate
        decay = (
            0.0
            if (p.ndim < 2 or any(k in name for k in _NO_DECAY) or name.startswith("crf."))
            else weight_decay
        )
        groups.setdefault((lr, decay), []).append(p)
    return [{"params": ps, "lr": lr, "weight_decay": wd} for (lr, wd), ps in groups.items()]
