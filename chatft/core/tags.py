"""The BIO tag rules, in one place (no torch): parsing, span chunking, allowed transitions, ``<unk>``.

Everything that reads tags calls this module: slot metrics (:mod:`chatft.training.metrics`), the CRF and
constrained decoding (:mod:`chatft.model.crf`, :mod:`chatft.core.decoding`), data validation
(:mod:`chatft.core.formats`), predictions (:mod:`chatft.core.prediction`) and the dialogue policy. Changing
the tag scheme means changing this file.

The rules:

* **Parsing** is seqeval's: a tag is (its first character, the text after the first ``-``), so ``B-x`` is
  ``("B", "x")``, ``O`` is ``("O", "_")`` and ``<unk>`` is ``("<", "unk>")``. Data files may only hold
  ``O``, ``B-type`` and ``I-type`` (:func:`is_bio_tag`); parsing anything else the way seqeval does keeps the
  scores equal to seqeval's whatever a model predicts.
* **Spans** are chunked with conlleval's rules (seqeval's default mode), which repair malformed BIO: an
  ``I-x`` after ``O`` or after another type starts a new span (:func:`bio_chunks`).
* **Allowed transitions**: ``I-x`` only after ``B-x`` or ``I-x``, never first; everything else is allowed
  (:func:`allowed_transitions`). An ``I-x`` in data that breaks this rule is an *orphan*
  (:func:`orphan_positions`): accepted and scored as seqeval does, but reported.
* **``<unk>``** is index 0 of every label vocabulary (intents and tags): gold labels unseen in training map
  to it, and the model never predicts it (:func:`exclude_unk`, :func:`decoding_transitions`), so such gold
  labels always count as errors.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

__all__ = [
    "FORBIDDEN_SCORE",
    "OUTSIDE",
    "UNK",
    "UNK_INDEX",
    "allowed_transitions",
    "bio_chunks",
    "decoding_transitions",
    "entity_types",
    "exclude_unk",
    "is_bio_tag",
    "orphan_positions",
    "split_tag",
]

#: The label of anything unseen in training; always at :data:`UNK_INDEX` of a vocabulary, never predicted.
UNK = "<unk>"
UNK_INDEX = 0
#: The outside tag (no slot); words cut by truncation are tagged with it.
OUTSIDE = "O"

#: Score given to forbidden starts/transitions in constrained decoding and in the CRF. Finite on purpose: a
#: path that must break a rule (e.g. gold data with an orphan ``I-x``) still gets a finite likelihood and
#: decoding never produces NaNs; large enough to dominate any realistic emission/transition score, small
#: enough that float32 sums of a few of them stay exact to ~1e-3.
FORBIDDEN_SCORE = -1e4


def split_tag(tag: str) -> tuple[str, str]:
    """``(prefix char, type)`` exactly as seqeval parses a tag.

    ``'B-x' -> ('B', 'x')``, ``'O' -> ('O', '_')``, ``'<unk>' -> ('<', 'unk>')``, ``'B-x-y' -> ('B', 'x-y')``;
    an empty type becomes ``'_'``.
    """
    if not isinstance(tag, str):
        raise TypeError(f"tags must be str, got {type(tag).__name__}: {tag!r}")
    if not tag:
        raise ValueError("empty tag string")  # seqeval would crash with an IndexError
    return tag[0], tag[1:].split("-", maxsplit=1)[-1] or "_"


def is_bio_tag(tag: str) -> bool:
    """Whether a data file may hold ``tag``: ``O``, ``B-type`` or ``I-type`` (IOBES must be converted)."""
    return tag == OUTSIDE or (len(tag) > 2 and tag[1] == "-" and tag[0] in "BI")


def bio_chunks(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """Entity spans ``(type, start, end_exclusive)`` of one sentence, chunked exactly like seqeval's default mode.

    A line-for-line port of ``seqeval.metrics.sequence_labeling.get_entities`` / ``start_of_chunk`` /
    ``end_of_chunk`` (conlleval rules) on a flat list, with the end made exclusive. Consequences worth knowing,
    all inherited on purpose so that scores match published ones:

    * Malformed BIO is repaired, not rejected: ``I-x`` after ``O`` or after another type starts a new entity;
      ``B-x I-x I-y`` is two entities.
    * IOBES prefixes ``E-``/``S-`` are understood; a bare ``B``/``I`` has type ``"_"``.
    * Anything else is split as (first char, rest after the first '-'): ``"<unk>"`` is an entity of type
      ``"unk>"``, so a predicted ``<unk>`` costs precision. ``O``-prefixed tags (``"O"``, ``"O-x"``) are outside.
    * ``.``-prefixed tags and single foreign characters (``"X"``) can yield odd, even overlapping, spans: the
      same odd spans seqeval yields.
    """
    chunks: list[tuple[str, int, int]] = []
    prev_tag, prev_type = "O", ""
    begin = 0
    n = len(tags)
    for i in range(n + 1):
        tag, type_ = split_tag(tags[i]) if i < n else ("O", "_")
        # end_of_chunk(prev_tag, tag, prev_type, type_)
        if (
            prev_tag in ("E", "S")
            or (prev_tag in ("B", "I") and tag in ("B", "S", "O"))
            or (prev_tag not in ("O", ".") and prev_type != type_)
        ):
            chunks.append((prev_type, begin, i))
        # start_of_chunk(prev_tag, tag, prev_type, type_)
        if (
            tag in ("B", "S")
            or (prev_tag in ("E", "S", "O") and tag in ("E", "I"))
            or (tag not in ("O", ".") and prev_type != type_)
        ):
            begin = i
        prev_tag, prev_type = tag, type_
    return chunks


def entity_types(tags: Iterable[str]) -> list[str]:
    """Sorted unique entity types of a tag vocabulary (``["O", "B-x", "I-x", "B-y"] -> ["x", "y"]``).

    Only ``B-``/``I-``/``E-``/``S-`` tags contribute; ``O`` and specials such as ``<unk>`` do not, because they
    are not entity types of the data set.
    """
    return sorted({split_tag(tag)[1] for tag in tags if tag[:2] in ("B-", "I-", "E-", "S-")})


def _may_follow(prev: str | None, tag: str) -> bool:
    """THE transition rule: ``I-x`` only after ``B-x`` or ``I-x`` (``prev`` None: at the start)."""
    prefix, type_ = split_tag(tag)
    if prefix != "I":
        return True
    if prev is None:
        return False
    prev_prefix, prev_type = split_tag(prev)
    return prev_prefix in ("B", "I") and prev_type == type_


def allowed_transitions(tags: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """BIO constraint masks ``(allowed_start [T] bool, allowed_trans [T, T] bool)`` of a tag vocabulary.

    ``allowed_trans[i, j]`` is True when tag ``j`` may follow tag ``i``. Tags other than ``B-x``/``I-x``
    (``O``, ``<unk>``) may start and follow anything, so ``O`` and every ``B-*`` are always reachable and a
    valid path of any length exists. Plain numpy: the CRF turns them into tensors.
    """
    tags = list(tags)
    allowed_start = np.array([_may_follow(None, t) for t in tags], dtype=bool).reshape(len(tags))
    allowed_trans = np.array([[_may_follow(prev, t) for t in tags] for prev in tags], dtype=bool).reshape(
        len(tags), len(tags)
    )
    return allowed_start, allowed_trans


def decoding_transitions(tags: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """What a model decodes with: :func:`allowed_transitions`, and ``<unk>`` (index 0) never starts nor follows."""
    allowed_start, allowed_trans = allowed_transitions(tags)
    if len(tags):
        allowed_start[UNK_INDEX] = False
        allowed_trans[:, UNK_INDEX] = False
    return allowed_start, allowed_trans


def exclude_unk(scores):
    """Set the ``<unk>`` column of ``scores [..., C]`` to ``-inf`` in place (numpy array or torch tensor).

    So argmax, softmax and top-k never pick ``<unk>``. A head with a single class is left alone (nothing
    else could be predicted).
    """
    if scores.shape[-1] > 1:
        scores[..., UNK_INDEX] = float("-inf")
    return scores


def orphan_positions(tags: Sequence[str]) -> list[int]:
    """Positions of ``I-x`` tags that follow neither ``B-x`` nor ``I-x`` (the transition rule broken).

    Accepted in data (real data has them; they are scored as seqeval does, as the start of an entity) but
    worth reporting, since they often point at a labelling slip.
    """
    return [i for i, tag in enumerate(tags) if not _may_follow(tags[i - 1] if i else None, tag)]
