"""``python -m chatft chat`` with a learned dialogue state tracker (a tracker checkpoint or its ONNX export).

    python -m chatft chat --ckpt_path runs/woz/.../best.ckpt --requirements woz
    python -m chatft chat --onnx exports/woz --input turns.txt

Each turn the tracker reads the bot's previous reply (the *system* turn) and the user's words, and updates the
state (:class:`~chatft.serving.tracker_base.BaseTracker`); the bot answers with :class:`~chatft.dialogue.
state_policy.StatePolicy`. Interactive: each turn prints the state, what changed, the requests and the reply;
``/reset`` starts a new dialogue, ``/quit`` (or end of input) ends. With ``--input FILE``: one user turn per line
(``SYSTEM<TAB>USER`` gives the system's words instead of the bot's own reply: a logged dialogue replays as it
was), a blank line starts a new dialogue, one JSON object per turn on standard output
(:func:`chatft.dialogue.state_session.apply_turn`'s record, the same as ``POST /chat``'s). The loops are the
intent and slot model's (:mod:`chatft.serving.chat_loop`); only the turn and its display are the tracker's.
"""

from __future__ import annotations

from typing import TextIO

from chatft.dialogue.state_policy import StatePolicy
from chatft.dialogue.state_session import StateSession, apply_turn, system_turn
from chatft.serving.chat_loop import chat_file, chat_interactive

__all__ = ["run_tracker_file", "run_tracker_interactive", "take_turn"]


def take_turn(tracker, policy: StatePolicy, session: StateSession, text: str, system: str | None = None):
    """One turn: ``(new session, record)``; a text without words changes nothing and reaches no model."""
    said = system_turn(session, system)
    update = tracker.update(session.state, said, text) if text.strip() else None
    return apply_turn(session, text, said, update, policy)


def _show(record: dict, out: TextIO) -> None:
    def slots(d: dict) -> str:
        return ", ".join(f"{k}={v!r}" if v is not None else f"{k} removed" for k, v in d.items())

    print(f"  state:    {slots(record['state']) or '(empty)'}", file=out)
    print(f"  changed:  {slots(record['changed']) or '(nothing)'}", file=out)
    if record["requests"]:
        print(f"  requests: {', '.join(record['requests'])}", file=out)
    print(f"bot> {record['response']}", file=out, flush=True)


def run_tracker_file(tracker, policy: StatePolicy, lines: list[str], out: TextIO) -> None:
    """File mode: one JSON object per non-blank line (``SYSTEM<TAB>USER`` gives the system's words); a blank
    line starts a new dialogue."""
    session = StateSession()

    def step(line: str) -> dict:
        nonlocal session
        system, text = line.split("\t", 1) if "\t" in line else (None, line)
        session, record = take_turn(tracker, policy, session, text, system)
        return record

    def reset() -> None:
        nonlocal session
        session = StateSession()

    chat_file(lines, step, reset, out)


def run_tracker_interactive(tracker, policy: StatePolicy, out: TextIO) -> None:
    session = StateSession()

    def step(line: str) -> None:
        nonlocal session
        session, record = take_turn(tracker, policy, session, line)
        _show(record, out)

    def reset() -> None:
        nonlocal session
        session = StateSession()

    chat_interactive(
        "chat: a dialogue state tracker; type an utterance, /reset starts a new dialogue, /quit ends",
        step,
        reset,
        out,
    )
