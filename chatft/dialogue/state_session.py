"""A learned tracker's dialogue across turns, as ``chat`` and ``serve`` keep it, and the JSON record of a turn.

A :class:`StateSession` is what must survive between turns (``serve`` stores it in SQLite as JSON, so a restarted
server continues the dialogue): the tracked state, the turn count and the bot's last reply, which is the
*system* turn the tracker reads next ("Do you want Italian food?" makes "yes" mean ``food = italian``). A client
that words its own replies sends them instead (``"system"`` in the ``/chat`` body).

Each turn's record, the same from ``chat --input`` and ``POST /chat``::

    {"turn": 2, "text": "any part of town", "system": "Which part of town ...?",
     "state": {"food": "thai", "area": "dontcare"}, "changed": {"area": "dontcare"}, "requests": [],
     "missing": ["price range"], "response": "Would you like something cheap, moderate or expensive?"}

``changed`` maps each slot that changed this turn to its new value (``null``: removed). A turn without words
reaches no model: nothing changes, the bot asks again, the turn is not counted. Torch-free.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from chatft.dialogue.state_policy import StatePolicy
from chatft.dialogue.state_update import TurnUpdate

__all__ = ["StateSession", "system_turn", "apply_turn", "SESSION_KIND"]

#: Marks a stored session as a learned tracker's (a rule-based one holds ``intent`` and ``frame``).
SESSION_KIND = "tracker"


@dataclass
class StateSession:
    """The tracked state, the number of turns so far and the bot's last reply."""

    state: dict[str, str] = field(default_factory=dict)
    turn: int = 0
    response: str = ""

    def to_dict(self) -> dict:
        return {"kind": SESSION_KIND, "state": dict(self.state), "turn": self.turn, "response": self.response}

    @classmethod
    def from_dict(cls, d: Mapping | None) -> StateSession:
        """The session stored as ``d``; a new one when ``d`` is None or another kind of session (a server that
        ran an intent and slot model on the same file before)."""
        if not d or d.get("kind") != SESSION_KIND:
            return cls()
        return cls(dict(d.get("state") or {}), int(d.get("turn", 0)), str(d.get("response", "")))


def system_turn(session: StateSession, given: str | None = None) -> str:
    """What the system said before the user's new turn: ``given`` (the client's own reply), else the bot's."""
    return session.response if given is None else given


def apply_turn(
    session: StateSession, text: str, system: str, update: TurnUpdate | None, policy: StatePolicy
) -> tuple[StateSession, dict]:
    """The session after one turn and the turn's record; ``update`` None for a turn without words."""
    if update is None:
        state, changed, requests, turn = dict(session.state), {}, [], session.turn
    else:
        state, changed, requests, turn = (
            dict(update.state),
            dict(update.changed),
            list(update.requests),
            session.turn + 1,
        )
    response = policy.respond(state, requests)
    record = {
        "turn": turn,
        "text": text,
        "system": system,
        "state": state,
        "changed": changed,
        "requests": requests,
        "missing": policy.missing(state),
        "response": response,
    }
    return StateSession(state, turn, response), record
