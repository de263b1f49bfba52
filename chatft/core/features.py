"""Pure data transforms: tokenize pre-split words, align word tags to sub-words, and collate batches.

The alignment rule is Hugging Face ``run_ner.py``'s: a word's tag goes on its first sub-word, ``-100`` on
its other sub-words and on special tokens. The model reads slots at word level by gathering those first
sub-word positions, so scores are always computed on the original words, never on sub-words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
    word_tag_ids: Sequence[Sequence[int] | None],
    intents: Sequence[int],
    max_length: int,
    gold_tags: Sequence[Sequence[str] | None] | None = None,
) -> list[Features]:
    """Tokenize utterances in one fast-tokenizer call and align their word tags.

    A word that yields no sub-word (e.g. a lone zero-width character) is replaced by the unknown token,
    so every kept word has a position and truncation only ever drops a suffix of the words.
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
        tags = word_tag_ids[i]
        starts = first_subword_positions(word_ids)
        tag_list = list(tags) if tags is not None else [IGNORE] * len(ws)
        out.append(
            Features(
                input_ids=list(ids),
                labels=align_labels(word_ids, tag_list),
                word_starts=starts,
                word_tags=tag_list[: len(starts)],
                intent=intents[i],
                n_words=len(ws),
                index=i,
                gold_tags=None if gold_tags is None or gold_tags[i] is None else tuple(gold_tags[i]),
            )
        )
    return out
