"""Dynamic padding of tokenized utterances into tensors (the DataLoader's collate function)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from chatft.core.features import IGNORE, Features

__all__ = ["Collator", "collate"]


def collate(features: Sequence[Features], pad_id: int, pad_to_multiple_of: int = 1) -> dict:
    """Pad a batch to its longest member (dynamic padding) and its most-worded member.

    Returns tensors ``input_ids``, ``attention_mask``, ``word_index`` (first sub-word positions, 0 where
    padded), ``word_mask``, ``word_tags`` (``-100`` where padded), ``intent``, ``index`` and ``n_words``,
    plus ``gold_tags``: the gold tag strings of every word (truncated ones included) for exact scoring.
    ``pad_to_multiple_of`` rounds the token length up (few distinct shapes for ``torch.compile``).
    """
    batch = len(features)
    seq_len = max(len(f.input_ids) for f in features)
    seq_len = -(-seq_len // pad_to_multiple_of) * pad_to_multiple_of
    n_word = max(1, max(len(f.word_starts) for f in features))
    input_ids = torch.full((batch, seq_len), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((batch, seq_len), dtype=torch.long)
    word_index = torch.zeros((batch, n_word), dtype=torch.long)
    word_mask = torch.zeros((batch, n_word), dtype=torch.bool)
    word_tags = torch.full((batch, n_word), IGNORE, dtype=torch.long)
    for b, f in enumerate(features):
        n, w = len(f.input_ids), len(f.word_starts)
        input_ids[b, :n] = torch.tensor(f.input_ids)
        attention_mask[b, :n] = 1
        if w:
            word_index[b, :w] = torch.tensor(f.word_starts)
            word_mask[b, :w] = True
            word_tags[b, :w] = torch.tensor(f.word_tags)
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "word_index": word_index,
        "word_mask": word_mask,
        "word_tags": word_tags,
        "intent": torch.tensor([f.intent for f in features], dtype=torch.long),
        "index": torch.tensor([f.index for f in features], dtype=torch.long),
        "n_words": torch.tensor([f.n_words for f in features], dtype=torch.long),
        "gold_tags": [f.gold_tags for f in features],
    }


class Collator:
    """Picklable collate function (DataLoader workers need to pickle it)."""

    def __init__(self, pad_id: int, pad_to_multiple_of: int = 1) -> None:
        self.pad_id = pad_id
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, features: Sequence[Features]) -> dict:
        return collate(features, self.pad_id, self.pad_to_multiple_of)
