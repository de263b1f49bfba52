"""Dynamic padding of tokenized utterances into tensors (the DataLoader's collate function)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from chatft.core.features import Features, pad_batch

__all__ = ["Collator", "collate"]


def collate(features: Sequence[Features], pad_id: int, pad_to_multiple_of: int = 1) -> dict:
    """:func:`chatft.core.features.pad_batch` as tensors, plus ``gold_tags``.

    ``gold_tags``: the gold tag strings of every word (truncated ones included), for exact scoring.
    """
    batch = {k: torch.from_numpy(v) for k, v in pad_batch(features, pad_id, pad_to_multiple_of).items()}
    batch["gold_tags"] = [f.gold_tags for f in features]
    return batch


class Collator:
    """Picklable collate function (DataLoader workers need to pickle it)."""

    def __init__(self, pad_id: int, pad_to_multiple_of: int = 1) -> None:
        self.pad_id = pad_id
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, features: Sequence[Features]) -> dict:
        return collate(features, self.pad_id, self.pad_to_multiple_of)
