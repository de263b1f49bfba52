"""What every learned-tracker backend does, without torch: turns -> encoder input -> outputs -> the new state.

:class:`~chatft.serving.tracker_predictor.TrackerPredictor` (PyTorch) and :class:`~chatft.serving.onnx_tracker.
OnnxTracker` (onnxruntime) subclass :class:`BaseTracker` and differ only in :meth:`BaseTracker.outputs`, the
forward pass. The rest is the code evaluation runs (:meth:`chatft.training.tracker_module.TrackerModule.track`):
the turn's text pair from :func:`chatft.dialogue.turn_input.encode_turns` (user, previous state, system) and
the numpy decoding :func:`chatft.dialogue.state_update.decode_turn`. So the API, ``chat``, ``serve`` and
``test`` compute one state the same way.

    tracker.track([("", "I want Thai food"), ("What area?", "Any part of town")])
    # {"food": "thai", "area": "dontcare"}
    update = tracker.update({"food": "thai"}, "Do you want it cheap?", "yes")
    update.state, update.changed, update.requests
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from chatft.dialogue.state_update import TrackerSchema, TurnUpdate, decode_batch
from chatft.dialogue.turn_input import EncodedTurns, encode_turns

__all__ = ["BaseTracker", "TrackerInput"]

#: One turn to track: (previous state, the system's utterance before it, the user's utterance).
TrackerInput = tuple[Mapping[str, str], str, str]


class BaseTracker:
    """Encoding, batching and decoding shared by the tracker backends.

    Args:
        tokenizer: a fast tokenizer (or :class:`~chatft.serving.pair_tokenizer.PairTokenizer`).
        schema: the slots, value lists and requestable slots the tracker was trained on.
        max_length: tokens per turn (user + previous state + system; the system's words are cut first).
    """

    def __init__(self, tokenizer, schema: TrackerSchema, max_length: int) -> None:
        self.tokenizer = tokenizer
        self.schema = schema
        self.max_length = int(max_length)

    @property
    def slots(self) -> tuple[str, ...]:
        """The informable slots, in the schema's order."""
        return self.schema.slots

    def outputs(self, enc: EncodedTurns) -> tuple[np.ndarray, ...]:
        """``(gate, start, end, value, request)`` logits of a padded batch
        (see :class:`chatft.model.tracker.StateTracker`), as float32 numpy arrays."""
        raise NotImplementedError

    def update_batch(self, items: Sequence[TrackerInput], batch_size: int = 32) -> list[TurnUpdate]:
        """Many independent turns (each with its own previous state), ``batch_size`` per forward pass; results
        in input order. The server batches the turns of concurrent sessions this way."""
        out: list[TurnUpdate] = []
        for i in range(0, len(items), max(1, batch_size)):
            chunk = items[i : i + max(1, batch_size)]
            enc = encode_turns(
                self.tokenizer,
                [(user, system, dict(prev)) for prev, system, user in chunk],
                self.slots,
                self.max_length,
            )
            out.extend(decode_batch(self.schema, [prev for prev, _, _ in chunk], self.outputs(enc), enc))
        return out

    def update(self, state: Mapping[str, str], system: str, user: str) -> TurnUpdate:
        """The turn after ``state``: the system said ``system`` ("" on the first turn), the user answered
        ``user``. Returns the new state, what changed (slot -> new value, None when removed) and the
        requested slots."""
        return self.update_batch([(state, system, user)])[0]

    def history(self, turns: Sequence[tuple[str, str]]) -> list[TurnUpdate]:
        """Every turn's update of a dialogue given as ``(system, user)`` pairs, each turn reading the state the
        tracker predicted after the one before (as a deployed tracker runs)."""
        state: Mapping[str, str] = {}
        out = []
        for system, user in turns:
            update = self.update(state, system, user)
            out.append(update)
            state = update.state
        return out

    def track(self, turns: Sequence[tuple[str, str]]) -> dict[str, str]:
        """The state after the ``(system, user)`` turns so far (``{}`` for none)."""
        updates = self.history(turns)
        return dict(updates[-1].state) if updates else {}

    def track_dialogues(
        self, dialogues: Sequence[Sequence[tuple[str, str]]], batch_size: int = 32
    ) -> list[list[TurnUpdate]]:
        """Each dialogue's updates turn by turn, the i-th turns of up to ``batch_size`` dialogues in one
        forward pass (:meth:`TrackerModule.track`'s order): the fast way over a whole evaluation split."""
        updates: list[list[TurnUpdate]] = [[] for _ in dialogues]
        for lo in range(0, len(dialogues), max(1, batch_size)):
            group = range(lo, min(len(dialogues), lo + max(1, batch_size)))
            states: dict[int, Mapping[str, str]] = {k: {} for k in group}
            for i in range(max((len(dialogues[k]) for k in group), default=0)):
                active = [k for k in group if len(dialogues[k]) > i]
                batch = [(states[k], dialogues[k][i][0], dialogues[k][i][1]) for k in active]
                for k, update in zip(active, self.update_batch(batch, len(batch)), strict=True):
                    updates[k].append(update)
                    states[k] = update.state
        return updates
