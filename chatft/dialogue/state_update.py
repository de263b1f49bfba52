"""The learned tracker's decisions -> the new dialogue state (numpy only; PyTorch, ONNX and chat share it).

The model (:class:`chatft.model.tracker.StateTracker`) scores, for each informable slot, a gate over
:data:`~chatft.dialogue.state_labels.GATES` and a span of the turn's text; this module turns those scores and
the previous state into the next state, with these rules (:func:`apply_decisions`):

- ``carry``: the slot keeps its value (or stays unset);
- ``dontcare``: the slot becomes ``dontcare``;
- ``user``: the value said by the user overwrites the slot ("no, not Chinese, make it Thai");
- ``system``: the value the system offered or asked to confirm, which the user accepted ("Do you want Italian
  food?" "Yes.");
- ``remove``: the slot is unset.

A span is mapped to the slot's value list when the schema has one (:func:`~chatft.dialogue.values.normalise_value`:
exact, the variants learned from training data, a loose match); when it matches no value, the slot's value
classifier decides (a paraphrase such as "high end" for ``expensive``); an open slot keeps the words as said.
A ``user``/``system`` gate whose segment is empty (no system turn yet) carries the slot.

Requests are the requestable slots whose logit is above 0 (probability above 0.5).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from chatft.dialogue.dialogues import DONTCARE, Schema
from chatft.dialogue.state_labels import GATES
from chatft.dialogue.turn_input import SYSTEM, USER, EncodedTurns
from chatft.dialogue.values import normalise_value

__all__ = [
    "TrackerSchema",
    "Decision",
    "apply_decisions",
    "best_span",
    "decode_turn",
    "decode_batch",
    "TurnUpdate",
]

#: The longest span (tokens) decoding considers.
MAX_SPAN_TOKENS = 12


@dataclass(frozen=True)
class TrackerSchema:
    """What a trained tracker knows about its slots; saved in the checkpoint (``hyper_parameters["schema"]``).

    ``variants``: per slot, the ways training data said a listed value (``{"price range": {"moderately":
    "moderate"}}``), learned when the training labels were derived.
    """

    slots: tuple[str, ...]
    values: dict[str, tuple[str, ...] | None]
    requestable: tuple[str, ...] = ()
    variants: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def of(cls, schema: Schema, variants: Mapping[str, Mapping[str, str]] | None = None) -> TrackerSchema:
        return cls(
            tuple(schema.informable),
            {s: v for s, v in schema.informable.items()},
            tuple(schema.requestable),
            {s: dict(m) for s, m in (variants or {}).items()},
        )

    def to_dict(self) -> dict:
        return {
            "slots": list(self.slots),
            "values": {s: (list(v) if v is not None else None) for s, v in self.values.items()},
            "requestable": list(self.requestable),
            "variants": {s: dict(m) for s, m in self.variants.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> TrackerSchema:
        return cls(
            tuple(d["slots"]),
            {s: (tuple(v) if v is not None else None) for s, v in d["values"].items()},
            tuple(d.get("requestable", ())),
            {s: dict(m) for s, m in (d.get("variants") or {}).items()},
        )

    @property
    def max_values(self) -> int:
        """The width of the value-classifier logits: the longest value list (at least 1)."""
        return max([len(v) for v in self.values.values() if v] + [1])


@dataclass(frozen=True)
class Decision:
    """A slot's decision on one turn: a gate and, for ``user``/``system``, the value."""

    gate: str
    value: str | None = None


@dataclass(frozen=True)
class TurnUpdate:
    """The state after a turn, what changed (slot -> new value, None when removed) and the turn's requests."""

    state: dict[str, str]
    changed: dict[str, str | None]
    requests: tuple[str, ...]
    decisions: dict[str, Decision]


def apply_decisions(previous: Mapping[str, str], decisions: Mapping[str, Decision]) -> dict[str, str]:
    """The state after applying each slot's decision to ``previous`` (slots without a decision are kept)."""
    state = dict(previous)
    for slot, d in decisions.items():
        if d.gate == "dontcare":
            state[slot] = DONTCARE
        elif d.gate == "remove":
            state.pop(slot, None)
        elif d.gate in ("user", "system") and d.value:
            state[slot] = d.value
        elif d.gate not in GATES:
            raise ValueError(f"unknown gate {d.gate!r} (expected one of {', '.join(GATES)})")
    return state


def best_span(
    start: np.ndarray, end: np.ndarray, allowed: np.ndarray, max_len: int = MAX_SPAN_TOKENS
) -> tuple[int, int] | None:
    """The ``(i, j)`` with ``i <= j < i + max_len``, both ``allowed``, maximising ``start[i] + end[j]``."""
    idx = np.flatnonzero(allowed)
    if idx.size == 0:
        return None
    s, e = start[idx], end[idx]
    score = s[:, None] + e[None, :]
    gap = idx[None, :] - idx[:, None]
    score = np.where((gap >= 0) & (gap < max_len), score, -np.inf)
    i, j = np.unravel_index(int(np.argmax(score)), score.shape)
    return int(idx[i]), int(idx[j])


def decode_turn(
    schema: TrackerSchema,
    previous: Mapping[str, str],
    gate_logits: np.ndarray,
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    value_logits: np.ndarray,
    request_logits: np.ndarray,
    segments: Sequence[int],
    offsets: Sequence[tuple[int, int]],
    texts: Mapping[int, str],
) -> TurnUpdate:
    """One turn's new state from the model's outputs for it (one example, no batch axis).

    ``gate_logits [S, G]``, ``start_logits``/``end_logits [S, T]``, ``value_logits [S, V]``,
    ``request_logits [R]``; ``segments [T]`` (:data:`USER`/:data:`SYSTEM`/:data:`OTHER` per token),
    ``offsets [T]`` the tokens' character offsets in ``texts[segment]`` (the strings the tokenizer read).
    """
    segments = np.asarray(segments)
    decisions: dict[str, Decision] = {}
    for k, slot in enumerate(schema.slots):
        gate = GATES[int(np.argmax(gate_logits[k]))]
        value = None
        if gate in ("user", "system"):
            seg = USER if gate == "user" else SYSTEM
            span = best_span(start_logits[k], end_logits[k], segments == seg)
            if span is None:
                gate = "carry"
            else:
                text = texts[seg][offsets[span[0]][0] : offsets[span[1]][1]]
                values = schema.values.get(slot)
                value = normalise_value(text, values, schema.variants.get(slot))
                if values and value not in values:
                    value = values[int(np.argmax(value_logits[k][: len(values)]))]
                if not value:
                    gate = "carry"
        decisions[slot] = Decision(gate, value)
    state = apply_decisions(previous, decisions)
    changed = {s: state.get(s) for s in schema.slots if state.get(s) != previous.get(s)}
    requests = tuple(r for r, x in zip(schema.requestable, np.asarray(request_logits), strict=True) if x > 0)
    return TurnUpdate(state, changed, requests, decisions)


def decode_batch(
    schema: TrackerSchema,
    previous: Sequence[Mapping[str, str]],
    outputs: Sequence[np.ndarray],
    encoded: EncodedTurns,
) -> list[TurnUpdate]:
    """:func:`decode_turn` for each example of a batch: ``outputs`` are the model's five logit arrays
    (gate, start, end, value, request; batch axis first, as numpy) for the turns ``encoded`` holds, whose
    previous states are ``previous``. The one decoding loop evaluation, the API, ``chat`` and ONNX share."""
    gates, start, end, values, requests = outputs
    return [
        decode_turn(
            schema,
            prev,
            gates[b],
            start[b],
            end[b],
            values[b],
            requests[b],
            encoded.segments[b],
            encoded.offsets[b],
            encoded.texts[b],
        )
        for b, prev in enumerate(previous)
    ]
