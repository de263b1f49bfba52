"""The text the learned tracker reads for one turn: the user's words, then the previous state and the system's.

The encoder gets a text pair, ``[CLS] user [SEP] state ; system [SEP]``::

    first  = "No, make it Thai."
    second = "food = chinese ; price range = none ; area = dontcare [SEP] Do you want Chinese food?"

Every slot is written with its value or ``none``, in the schema's order, so the model sees what it would
carry, overwrite or remove; at training the previous state is the gold one, at inference the tracker's own
prediction (evaluation feeds each dialogue's predictions forward, turn by turn). The system's words come
last so that truncation (``only_second``) cuts the end of a long system turn, never the user's words or the
state. :func:`system_start` says where the system's words start in ``second``, for the span labels and for
decoding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "NONE",
    "OTHER",
    "USER",
    "SYSTEM",
    "state_text",
    "turn_pair",
    "system_start",
    "EncodedTurns",
    "encode_turns",
]

#: How an unset slot is written.
NONE = "none"
#: Token segments: which text a token comes from (the user's, the system's, or neither: specials, the state).
OTHER, USER, SYSTEM = 0, 1, 2


def state_text(state: Mapping[str, str], slots: Sequence[str]) -> str:
    """``"food = chinese ; price range = none ; area = dontcare"``: every slot of ``slots``, in order."""
    return " ; ".join(f"{s} = {state.get(s, NONE)}" for s in slots)


def turn_pair(
    user: str, system: str, previous: Mapping[str, str], slots: Sequence[str], sep: str
) -> tuple[str, str]:
    """``(first, second)``: the user's text, and the previous state then the system's text joined by ``sep``
    (the tokenizer's separator token, e.g. ``[SEP]``)."""
    return user, f"{state_text(previous, slots)} {sep} {system}"


def system_start(second: str, system: str) -> int:
    """Where ``system`` starts in ``second`` (its character offset)."""
    return len(second) - len(system)


@dataclass
class EncodedTurns:
    """A batch of turns as the encoder reads them (numpy, padded to the longest): ``input_ids``,
    ``attention_mask``, ``token_type_ids`` ``[B, T]``; per token its ``segments`` (:data:`USER`,
    :data:`SYSTEM` or :data:`OTHER`) and character ``offsets`` ``[B, T, 2]`` in ``texts[b][segment]``."""

    input_ids: np.ndarray
    attention_mask: np.ndarray
    token_type_ids: np.ndarray
    segments: np.ndarray
    offsets: np.ndarray
    texts: list[dict[int, str]]

    def span_tokens(self, b: int, segment: int, span: tuple[int, int]) -> tuple[int, int] | None:
        """The first and last token of example ``b`` covering the character ``span`` of its ``segment``
        text (None when truncation cut it off)."""
        if segment == SYSTEM:
            span = (span[0] + self.texts[b]["system_start"], span[1] + self.texts[b]["system_start"])  # type: ignore[index]
        seg, off = self.segments[b], self.offsets[b]
        inside = np.flatnonzero((seg == segment) & (off[:, 1] > span[0]) & (off[:, 0] < span[1]))
        if inside.size == 0:
            return None
        return int(inside[0]), int(inside[-1])


def encode_turns(
    tokenizer,
    turns: Sequence[tuple[str, str, Mapping[str, str]]],
    slots: Sequence[str],
    max_length: int,
) -> EncodedTurns:
    """Tokenize ``(user, system, previous state)`` turns with a Hugging Face fast tokenizer (passed in, so
    this module imports no transformers): truncation cuts the system's words first (``only_second``)."""
    firsts, seconds, starts = [], [], []
    for user, system, previous in turns:
        first, second = turn_pair(user, system, previous, slots, tokenizer.sep_token)
        firsts.append(first)
        seconds.append(second)
        starts.append(system_start(second, system))
    enc = tokenizer(
        firsts,
        seconds,
        truncation="only_second",
        max_length=max_length,
        padding=True,
        return_offsets_mapping=True,
        return_token_type_ids=True,
    )
    n, t = len(firsts), len(enc["input_ids"][0])
    segments = np.zeros((n, t), dtype=np.int64)
    for b in range(n):
        offsets = enc["offset_mapping"][b]
        for i, sid in enumerate(enc.sequence_ids(b)):
            if sid == 0:
                segments[b, i] = USER
            elif sid == 1 and offsets[i][0] >= starts[b] and offsets[i][1] > offsets[i][0]:
                segments[b, i] = SYSTEM
    texts = [
        {USER: f, SYSTEM: s, "system_start": st} for f, s, st in zip(firsts, seconds, starts, strict=False)
    ]
    return EncodedTurns(
        np.asarray(enc["input_ids"], dtype=np.int64),
        np.asarray(enc["attention_mask"], dtype=np.int64),
        np.asarray(enc["token_type_ids"], dtype=np.int64),
        segments,
        np.asarray(enc["offset_mapping"], dtype=np.int64),
        texts,  # type: ignore[arg-type]
    )
