"""The JSON record of one dialogue turn: what ``chat --input`` writes per line and ``POST /chat`` answers.

Both front ends build it here, so a turn reads the same from the command line and over HTTP::

    {"turn", "text", "intent", "intent_confidence", "out_of_scope", "slots",
     "new_frame", "state", "missing", "response"}

Torch-free, next to the tracker it reports on.
"""

from __future__ import annotations

from chatft.core.prediction import Prediction
from chatft.dialogue.tracker import DialogueTracker

__all__ = ["turn_record", "blank_turn_record"]


def turn_record(turn: int, pred: Prediction, update: dict) -> dict:
    """One turn: the prediction's intent and slots, then ``update`` (what :meth:`DialogueTracker.update` said)."""
    d = pred.to_dict()
    return {
        "turn": turn,
        "text": pred.text,
        "intent": pred.intent,
        "intent_confidence": pred.intent_confidence,
        "out_of_scope": pred.out_of_scope,
        "slots": d["slots"],
        **update,
    }


def blank_turn_record(turn: int, text: str, tracker: DialogueTracker) -> dict:
    """A turn with nothing said: no intent, the dialogue stays as it is and the bot asks again.

    The model is not asked (a guess from no words would only move the dialogue), and ``turn`` is not counted.
    """
    missing = tracker.missing()
    return {
        "turn": turn,
        "text": text,
        "intent": None,
        "intent_confidence": 0.0,
        "out_of_scope": False,
        "slots": [],
        "new_frame": False,
        "state": tracker.state.to_dict(),
        "missing": missing,
        "response": tracker.respond(missing),
    }
