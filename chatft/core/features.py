"""Pure data transforms: tokenize pre-split words, align word tags to sub-words, and pad batches (numpy).

The alignment rule is Hugging Face ``run_ner.py``'s: a word's tag goes on its first sub-word, ``-100`` on
its other sub-words and on special tokens. The model reads slots at word level by gathering those first
sub-word positions, so scores are always computed on the original words, never on sub-words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

IGNORE = -100


@dataclass(frozen=True)
class Features:
    """One tokenized utterance.

    ``word_starts[k]`` is the token position of the first sub-word of word ``k``; only words that survived
    truncation have one (always a prefix of the words, so ``len(word_starts) <= n_words``).
    """

    input_ids: list[int]
    labels: list[int]
    word_starts: list[int]
    word_tags: list[int]
    intent: int
    n_words: int
    index: int
    gold_tags: tuple[str, ...] | None = None

    @property
    def truncated(self) -> bool:
        return len(self.word_starts) < self.n_words


def align_labels(word_ids: Sequence[int | None], word_tag_ids: Sequence[int]) -> list[int]:
    """Token-level labels: the word's tag id on its first sub-word, ``-100`` elsewhere."""
    labels, previous = [], None
    for wid in word_ids:
        labels.append(IGNORE if wid is None or wid == previous else word_tag_ids[wid])
        previous = wid
    return labels


def first_subword_positions(word_ids: Sequence[int | None]) -> list[int]:
    """Token position of each word's first sub-word, in word order (words cut by truncation are absent)."""
    starts, previous = [], None
    for pos, wid in enumerate(word_ids):
        if wid is not None and wid != previous:
            starts.append(pos)
        previous = wid
    return starts


def _kept_prefix_ok(word_ids: Sequence[int | None], n_words: int, truncated: bool) -> bool:
    """True when every word up to the last kept one has at least one sub-word."""
    kept = [w for w in dict.fromkeys(w for w in word_ids if w is not None)]
    return kept == list(range(len(kept))) and (truncated or len(kept) == n_words)


def tokenize_examples(
    tokenizer,
    words: Sequence[Sequence[str]],
    max_length: int,
    *,
    word_tag_ids: Sequence[Sequence[int] | None] | None = None,
    intents: Sequence[int] | None = None,
    gold_tags: Sequence[Sequence[str] | None] | None = None,
) -> list[Features]:
    """Tokenize utterances in one fast-tokenizer call and align their word tags.

    Inference passes words only; training and evaluation also pass tag ids, intent ids and the gold tag
    strings (an utterance without tags gets ``-100`` labels, a missing intent 0). A word that yields no
    sub-word (e.g. a lone zero-width character) is replaced by the unknown token, so every kept word has a
    position and truncation only ever drops a suffix of the words.
    """
    if not words:
        return []
    enc = tokenizer(
        [list(w) for w in words], is_split_into_words=True, truncation=True, max_length=max_length
    )
    out = []
    for i, ws in enumerate(words):
        ids, word_ids = enc["input_ids"][i], enc.word_ids(i)
        truncated = len(ids) >= max_length
        if not _kept_prefix_ok(word_ids, len(ws), truncated):
            fixed = [w if tokenizer.tokenize(w) else tokenizer.unk_token for w in ws]
            one = tokenizer(fixed, is_split_into_words=True, truncation=True, max_length=max_length)
            ids, word_ids = one["input_ids"], one.word_ids()
        tags = word_tag_ids[i] if word_tag_ids is not None else None
        starts = first_subword_positions(word_ids)
        tag_list = list(tags) if tags is not None else [IGNORE] * len(ws)
        out.append(
            Features(
                input_ids=list(ids),
                labels=align_labels(word_ids, tag_list),
                word_starts=starts,
                word_tags=tag_list[: len(starts)],
                intent=intents[i] if intents is not None else 0,
                n_words=len(ws),
                index=i,
                gold_tags=None if gold_tags is None or gold_tags[i] is None else tuple(gold_tags[i]),
            )
        )
    return out


def pad_batch(
    features: Sequence[Features], pad_id: int, pad_to_multiple_of: int = 1
) -> dict[str, np.ndarray]:
    """Pad a batch to its longest member (dynamic padding) and its most-worded member, in numpy.

    The one padding routine: the training collate function turns these arrays into tensors, the
    predictors feed them to the model. Returns ``input_ids``, ``attention_mask``, ``word_index`` (first
    sub-word positions, 0 where padded), ``word_mask``, ``word_tags`` (``-100`` where padded), ``intent``,
    ``index`` and ``n_words``. ``pad_to_multiple_of`` rounds the token length up (few distinct shapes for
    ``torch.compile``).
    """
    batch = len(features)
    seq_len = max(len(f.input_ids) for f in features)
    seq_len = -(-seq_len // pad_to_multiple_of) * pad_to_multiple_of
    n_word = max(1, max(len(f.word_starts) for f in features))
    input_ids = np.full((batch, seq_len), pad_id, dtype=np.int64)
    attention_mask = np.zeros((batch, seq_len), dtype=np.int64)
    word_index = np.zeros((batch, n_word), dtype=np.int64)
    word_mask = np.zeros((batch, n_word), dtype=bool)
    word_tags = np.full((batch, n_word), IGNORE, dtype=np.int64)
    for b, f in enumerate(features):
        n, w = len(f.input_ids), len(f.word_starts)
        input_ids[b, :n] = f.input_ids
        attention_mask[b, :n] = 1
        word_index[b, :w] = f.word_starts
        word_mask[b, :w] = True
        word_tags[b, :w] = f.word_tags
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "word_index": word_index,
        "word_mask": word_mask,
        "word_tags": word_tags,
        "intent": np.array([f.intent for f in features], dtype=np.int64),
        "index": np.array([f.index for f in features], dtype=np.int64),
        "n_words": np.array([f.n_words for f in features], dtype=np.int64),
    }
