"""The loops of ``python -m chatft chat``, shared by every kind of model: a file of turns, or a prompt.

An intent and slot model (:mod:`chatft.serving.chat`) and a learned dialogue state tracker
(:mod:`chatft.serving.tracker_chat`) differ only in what one turn does, how it is shown and what a new dialogue
resets; they hand those as functions to :func:`chat_file` and :func:`chat_interactive`, so the commands
(``/reset``, ``/quit``), blank lines and the end of input behave the same for both. Torch-free.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import TextIO

__all__ = ["chat_file", "chat_interactive"]


def chat_file(
    lines: Iterable[str], turn: Callable[[str], dict], reset: Callable[[], None], out: TextIO
) -> None:
    """File mode: ``turn(line)``'s record as one JSON object per non-blank line; a blank line calls ``reset``
    (a new dialogue)."""
    for line in lines:
        if not line.strip():
            reset()
            continue
        out.write(json.dumps(turn(line), ensure_ascii=False) + "\n")
    out.flush()


def chat_interactive(
    banner: str,
    turn: Callable[[str], None],
    reset: Callable[[], None],
    out: TextIO,
    command: Callable[[str], bool] | None = None,
) -> None:
    """Interactive: ``banner``, then one ``you> `` prompt per turn, ``turn(line)`` showing its answer. ``/quit``,
    ``/exit`` or the end of input ends; ``/reset`` calls ``reset`` and says so; ``command(line)`` may take
    other lines first (``/why``), returning True when it did; blank lines are skipped."""
    print(banner, file=out, flush=True)
    while True:
        try:
            line = input("you> ")
        except (EOFError, KeyboardInterrupt):
            print(file=out)
            return
        typed = line.strip().lower()
        if typed in ("/quit", "/exit"):
            return
        if typed == "/reset":
            reset()
            print("bot> (new dialogue)", file=out, flush=True)
            continue
        if command is not None and command(line):
            continue
        if not typed:
            continue
        turn(line)
