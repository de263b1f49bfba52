"""Broken Rasa entity annotations: found and named, never trained as words.

Rasa reads ``[text](entity)``, ``[text](entity:value)``, ``[text]{"entity": ...}`` and ``[text][{...}]``;
whatever else is written stays literal text to Rasa, so a typo such as ``send [50(amount) to Mary`` or a
``{"entity": "amount"}`` without its ``[text]`` would train ``[``, ``50(amount`` and ``)`` as words. After the
well-formed annotations are taken out of an example, what is left must hold none of:

- a ``[`` never closed, a ``]`` that closes nothing, a ``[text]`` with no ``(entity)``/``{...}`` right after
  it, a ``(`` or ``{`` after ``[text]`` never closed, an empty ``[]``;
- a ``{...}`` naming an ``"entity"`` with no ``[text]`` before it;
- an ``(entity)`` glued to the word before it (``50(amount)``): ``(name)`` or ``(name:value)`` right after a
  non-space character, ``name`` an identifier of two characters or more and not a plural ending, so
  ``item(s)`` and ``box(es)`` stay text while ``call me (maybe)`` (a space before it) is never flagged.

Each is a one-line error with ``file:line``; ``lenient`` keeps the characters as words and warns once per
example, with the place, in the converter's summary (:mod:`chatft.data_tools.notes`).
"""

from __future__ import annotations

import re
from collections import Counter

from chatft.core.errors import DataFormatError
from chatft.data_tools.notes import shown

#: The summary line's kind for examples kept as words under ``lenient``.
LENIENT_KIND = "broken annotations kept as literal words (--lenient)"
_HINT = "data convert --lenient keeps it as words"
_ENTITY_DICT = re.compile(r"\{[^{}]*[\"']entity[\"'][^{}]*\}?")
_GLUED = re.compile(r"(?<=\S)\((?P<name>[A-Za-z_][\w.-]+)(?::[^()]*)?\)")
_PLURALS = ("es", "ies")


def _brackets_problem(segment: str) -> str | None:
    """The first misuse of ``[`` ``]`` in text left after the well-formed annotations, or None."""
    for i, c in enumerate(segment):
        if c == "]":
            return "']' closes no '['"
        if c != "[":
            continue
        close = segment.find("]", i + 1)
        if close < 0:
            return f"'[' before {segment[i + 1 : i + 21]!r} is never closed"
        text = segment[i + 1 : close]
        after = segment[close + 1 : close + 2]
        if not text.strip():
            return f"[{text}] has no text"
        if after == "(":
            if ")" not in segment[close + 2 :]:
                return f"'(' after [{text}] is never closed"
            return f"[{text}]{segment[close + 1 : segment.index(')', close) + 1]} is not [text](entity)"
        if after == "{":
            if "}" not in segment[close + 2 :]:
                return "'{' after " + f"[{text}] is never closed"
            return f"[{text}]" + '{...} is not [text]{"entity": "type"}'
        return f"[{text}] has no (entity) right after it"
    return None


def problem(example: str, annotation: re.Pattern) -> str | None:
    """What is broken in ``example`` once the matches of ``annotation`` are taken out (None: nothing)."""
    segments, pos = [], 0
    for m in annotation.finditer(example):
        segments.append(example[pos : m.start()])
        pos = m.end()
    segments.append(example[pos:])
    for segment in segments:
        found = _brackets_problem(segment)
        if found:
            return found
    for segment in segments:
        m = _ENTITY_DICT.search(segment)
        if m:
            return f"{m.group(0)} has no [text] before it"
        for m in _GLUED.finditer(segment):
            if m.group("name").lower() not in _PLURALS:
                word = segment[: m.start()].split()[-1]
                return f"{m.group(0)} has no [text] (write [{word}]{m.group(0)})"
    return None


def check(example: str, annotation: re.Pattern, where: str, notes: Counter, lenient: bool = False) -> None:
    """Raise a one-line error for a broken annotation in ``example`` (``lenient``: count and show it instead)."""
    found = problem(example, annotation)
    if found is None:
        return
    if not lenient:
        raise DataFormatError(f"{where}: broken entity annotation in {example!r}: {found} ({_HINT})")
    shown(notes, LENIENT_KIND, f"{where}: {found}", level="warning")
