"""What readers tell the user besides their records: counted notes, and notes or warnings shown with places.

Readers take a ``notes: Counter`` and count what they skipped or changed (``notes["lookup sections
(skipped...)"] += 1``); ``convert`` prints ``note: WHAT: COUNT``. Some things are only useful with *where*
they happened (a header row skipped, a broken annotation kept as words): :func:`shown` stores them in the
same Counter, keyed ``"LEVEL: KIND<tab>WHERE: WHAT"``, and :func:`summary_lines` prints each kind as one line
with its count and its first :data:`SHOWN` places. A plain Counter keeps every reader's signature as it was.
"""

from __future__ import annotations

from collections import Counter

#: How many places a shown note or warning lists before it only counts the rest.
SHOWN = 3
_SEP = "\t"


def shown(notes: Counter, kind: str, place: str, level: str = "note") -> None:
    """Count one ``kind`` at ``place`` (``file:line: what``); ``level`` is ``note`` or ``warning``."""
    notes[f"{level}: {kind}{_SEP}{place}"] += 1


def summary_lines(notes: Counter) -> list[str]:
    """``note: WHAT: COUNT`` for counted notes (sorted), then one line per shown kind, in the order first seen."""
    plain = sorted((key, n) for key, n in notes.items() if _SEP not in key)
    groups: dict[str, list[tuple[str, int]]] = {}
    for key, n in notes.items():
        if _SEP in key:
            head, place = key.split(_SEP, 1)
            groups.setdefault(head, []).append((place, n))
    out = [f"note: {key}: {n}" for key, n in plain]
    for head, places in groups.items():
        level, kind = head.split(": ", 1)
        more = f"; first {SHOWN}: " if len(places) > SHOWN else ": "
        total = sum(n for _, n in places)
        out.append(f"{level}: {total} {kind}{more}" + "; ".join(place for place, _ in places[:SHOWN]))
    return out
