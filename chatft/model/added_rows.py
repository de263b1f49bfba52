"""Word embeddings whose added rows are a parameter of their own, so they can train at their own rate.

The rows :mod:`chatft.model.vocabulary` adds for units the tokenizer lacked all start at the same vector and
must become distinct characters during one fine-tuning run; at the encoder's small learning rate (1e-4 in the
recipes, chosen to move the *pretrained* rows little) they barely move in the steps a small set gives. An
optimizer's learning rate is per parameter, so the added rows become one (``added_rows``) and the pretrained
ones another (``pretrained_rows``); :func:`chatft.training.param_groups.parameter_groups` then gives the added
rows ``added_token_lr`` without weight decay.

Only the training module splits the matrix, and only when units were added. The state dict still holds the
one matrix (``weight``) that a plain ``nn.Embedding`` saves, so checkpoints, inference, ``export`` and older
checkpoints read and write exactly what they did.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: The added rows' learning rate by default (``--model.added_token_lr``), chosen on CAIS valid
#: (docs/results.md, "Chinese with an English encoder (CAIS)").
ADDED_TOKEN_LR: float | None = 1e-3
#: The name of the added rows' parameter (what :func:`~chatft.training.param_groups.parameter_groups` matches).
ADDED_ROWS = "added_rows"


class AddedRowsEmbedding(nn.Module):
    """A drop-in ``nn.Embedding`` with rows ``[:base]`` in ``pretrained_rows`` and ``[base:]`` in
    ``added_rows``; looks up ids in their concatenation and saves/loads the concatenation as ``weight``."""

    def __init__(self, embedding: nn.Embedding, base: int) -> None:
        super().__init__()
        weight = embedding.weight.detach()
        if not 0 < base < weight.shape[0]:
            raise ValueError(f"base must be within the {weight.shape[0]} rows (got {base})")
        self.base = base
        pad = embedding.padding_idx
        self.padding_idx = pad if pad is not None and pad < base else None
        self.num_embeddings, self.embedding_dim = weight.shape
        self.pretrained_rows = nn.Parameter(
            weight[:base].clone(), requires_grad=embedding.weight.requires_grad
        )
        self.added_rows = nn.Parameter(weight[base:].clone())
        self.register_state_dict_post_hook(_merge)
        self.register_load_state_dict_pre_hook(_split)

    @property
    def weight(self) -> torch.Tensor:
        """The whole matrix (what ``get_input_embeddings().weight`` gives for a plain embedding)."""
        return torch.cat([self.pretrained_rows, self.added_rows])

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        # Two look-ups and a select rather than one look-up in ``weight``: no copy of the whole matrix per step.
        added = input_ids >= self.base
        pretrained = F.embedding(input_ids.clamp(max=self.base - 1), self.pretrained_rows, self.padding_idx)
        new = F.embedding((input_ids - self.base).clamp(min=0), self.added_rows)
        return torch.where(added.unsqueeze(-1), new, pretrained)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}, added from row {self.base}"


def _merge(module: AddedRowsEmbedding, state_dict: dict, prefix: str, local_metadata: dict) -> None:
    pretrained = state_dict.pop(prefix + "pretrained_rows")
    added = state_dict.pop(prefix + "added_rows")
    state_dict[prefix + "weight"] = torch.cat([pretrained.detach(), added.detach()])


def _split(module: AddedRowsEmbedding, state_dict: dict, prefix: str, *args) -> None:
    weight = state_dict.pop(prefix + "weight", None)
    if weight is not None:
        state_dict[prefix + "pretrained_rows"] = weight[: module.base]
        state_dict[prefix + "added_rows"] = weight[module.base :]


def split_added_rows(encoder, base: int) -> AddedRowsEmbedding | None:
    """Replace ``encoder``'s word embeddings by an :class:`AddedRowsEmbedding` whose added rows start at row
    ``base`` (the first added unit's id); None (nothing changed) when the matrix has no row from ``base`` on."""
    embedding = encoder.get_input_embeddings()
    if isinstance(embedding, AddedRowsEmbedding):
        return embedding
    if embedding.weight.shape[0] <= base:
        return None
    split = AddedRowsEmbedding(embedding, base)
    encoder.set_input_embeddings(split)
    return split
