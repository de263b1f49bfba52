"""New training utterances by slot-value substitution within the training split (no torch).

Each source utterance with slots yields up to K variants in which every slot span is replaced by another value
of the same slot type seen in train (``flights from [boston] to [denver]`` -> ``flights from [dallas] to
[atlanta]``). Why this is a sound source of new utterances for distillation:

* **Gold tags by construction**: a span is replaced by a whole value of its own type and retagged ``B-type
  I-type...``; the words around it keep their tags, so every new utterance has correct slot tags and the
  source's intent without anyone labelling it.
* **More contexts for each value**: a value seen in one or two carrier phrases now appears in others, which is
  what a small student lacks and what the gold utterances alone cannot give it.
* **The teacher's soft targets** on these utterances label their near misses: where a substituted value
  reads oddly in its new context (``round trip`` in a phrase that took ``one way`` better), the teacher's
  distribution says so, and the student learns that rather than a hard gold tag.

Only the training split is seen: values never come from dev or test, and no new utterance repeats the text of
a training utterance or of one already made. Everything is drawn from one seeded ``numpy`` Generator, so the
same data and seed give the same utterances. ``python -m chatft data augment`` writes them into a data folder
(:mod:`chatft.data_tools.augment`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np

from chatft.core.formats import Example
from chatft.core.tags import bio_chunks

__all__ = ["TRIES_PER_VARIANT", "Variant", "slot_values", "substitute_slot_values"]

#: Draws made per wanted variant of a source before giving up on it: a draw whose text already exists is
#: thrown away, and an utterance whose slots have few values may have fewer than K new texts at all.
TRIES_PER_VARIANT = 10


class Variant(NamedTuple):
    """A new utterance and the 0-based index, in train, of the utterance it was made from."""

    source: int
    example: Example


def slot_values(train: Sequence[Example]) -> dict[str, list[tuple[str, ...]]]:
    """Per slot type, its distinct values (word tuples) in the order train first shows them.

    Spans are chunked by :func:`chatft.core.tags.bio_chunks` (seqeval's rules): ``B-x B-x`` is two values and
    an ``I-x`` after ``O`` starts one, as scoring counts them.
    """
    values: dict[str, dict[tuple[str, ...], None]] = {}
    for ex in train:
        for type_, start, end in bio_chunks(ex.tags or ()):
            values.setdefault(type_, {})[ex.words[start:end]] = None
    return {type_: list(found) for type_, found in values.items()}


def substitute_slot_values(
    train: Sequence[Example], per_utterance: int, seed: int, avoid: Iterable[tuple[str, ...]] = ()
) -> list[Variant]:
    """Up to ``per_utterance`` new utterances per training utterance with slots, in train's order.

    ``avoid``: texts (word tuples) no new utterance may equal, drawn again instead, like a repeat: the
    data command passes the dev and test utterances, so that a substitution which happens to rebuild an
    evaluation utterance from train's values (5 dev and 5 test texts of ATIS at one variant each) cannot
    put it into train. Only their texts are read, never their labels or values.

    In each new utterance every slot span holds another value of its type drawn uniformly from
    :func:`slot_values` (a type with a single value keeps it), tagged ``B-type`` then ``I-type``; the words
    outside the spans and the intent are the source's. Utterances without slots, or whose slot types all have
    a single value, give none. A draw whose words equal a training utterance's or an earlier variant's is
    discarded; after :data:`TRIES_PER_VARIANT` draws per wanted variant the source gives what it has.
    """
    if per_utterance < 1:
        raise ValueError(f"per_utterance must be at least 1, got {per_utterance}")
    rng = np.random.default_rng(seed)
    values = slot_values(train)
    index = {type_: {value: i for i, value in enumerate(vals)} for type_, vals in values.items()}
    seen = {ex.words for ex in train} | set(avoid)
    out: list[Variant] = []
    for source, ex in enumerate(train):
        chunks = bio_chunks(ex.tags or ())
        if not any(len(values[type_]) > 1 for type_, _, _ in chunks):
            continue
        made = 0
        for _ in range(per_utterance * TRIES_PER_VARIANT):
            words: list[str] = []
            tags: list[str] = []
            at = 0
            for type_, start, end in chunks:
                words += ex.words[at:start]
                tags += ex.tags[at:start]
                value = _other_value(rng, values[type_], index[type_][ex.words[start:end]])
                words += value
                tags += [f"B-{type_}"] + [f"I-{type_}"] * (len(value) - 1)
                at = end
            words += ex.words[at:]
            tags += ex.tags[at:]
            new = tuple(words)
            if new in seen:
                continue
            seen.add(new)
            out.append(Variant(source, Example(new, tuple(tags), ex.intent)))
            made += 1
            if made == per_utterance:
                break
    return out


def _other_value(rng: np.random.Generator, values: list[tuple[str, ...]], current: int) -> tuple[str, ...]:
    """A value other than ``values[current]``, uniformly (the only value when there is one)."""
    if len(values) == 1:
        return values[0]
    pick = int(rng.integers(len(values) - 1))
    return values[pick + (pick >= current)]
