"""``python -m chatft data check DIR`` on a dialogue folder: what a team should fix before training a tracker.

The format itself is checked by its reader (:func:`chatft.dialogue.dialogues.read_dialogues`: the first
malformed line ends the check in one ``file:line`` line, exit 2). Then the data is checked against
``schema.json``, each problem on its own line with ``file:line: dialogue 'id' turn N``:

- errors (exit 2): a slot the schema does not list (the tracker has no head for it), a value outside the
  slot's value list (a tracker that picks from the list can never predict it; WOZ 2.0's train sets
  ``area='center'`` once, beside ``centre`` everywhere else), both listed on the turn that sets them; a
  request for a slot that is not requestable; a dialogue id used in two splits (the same dialogue trained on
  and scored on, or two dialogues a report cannot tell apart);
- warnings (exit 0): a slot dropped from the state (a removal: rare in real dialogues, and in data rebuilt
  from turn labels usually a slot the annotation forgot; WOZ 2.0 has none), a user turn without a word (the
  converter writes ``...`` for an empty transcript).

Each kind lists its first :data:`SHOWN` places and counts the rest. Exit 0 prints one ``ok:`` line, as the
NLU check does.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from dataclasses import dataclass

from chatft.core.errors import DataFormatError
from chatft.data_tools.dialogue_folder import DialogueFolder, read_dialogue_folder
from chatft.dialogue.dialogues import DONTCARE

__all__ = ["Problem", "find_problems", "check_dialogues"]

#: How many places each kind of problem lists before it only counts the rest.
SHOWN = 10


@dataclass(frozen=True)
class Problem:
    """One thing to fix: ``level`` error or warning, its ``kind`` (for counting), where, and what."""

    level: str
    kind: str
    where: str
    what: str


def find_problems(folder: DialogueFolder) -> list[Problem]:
    """Every problem of the folder, in file order (train, dev, test), errors and warnings mixed."""
    schema = folder.schema
    found: list[Problem] = []
    first_seen: dict[str, str] = {}
    for split, dialogues in folder.splits.items():
        for i, d in enumerate(dialogues):
            if d.id in first_seen:
                found.append(
                    Problem(
                        "error",
                        "dialogue ids used in two splits",
                        folder.where(split, i),
                        f"id also used at {first_seen[d.id]}",
                    )
                )
            else:
                first_seen[d.id] = folder.line(split, i)
            before: dict[str, str] = {}
            for j, turn in enumerate(d.turns):
                where = folder.where(split, i, j)
                for slot, value in turn.state.items():
                    if before.get(slot) == value:
                        continue  # carried over: reported where it was set
                    if slot not in schema.informable:
                        found.append(
                            Problem(
                                "error",
                                "slots not in the schema",
                                where,
                                f"slot {slot!r} is not an informable slot of schema.json",
                            )
                        )
                    elif (
                        (values := schema.informable[slot]) is not None
                        and value != DONTCARE
                        and value not in values
                    ):
                        found.append(
                            Problem(
                                "error",
                                "values outside the schema's list",
                                where,
                                f"{slot}={value!r} is not one of schema.json's values of {slot!r}",
                            )
                        )
                for slot in turn.requests:
                    if slot not in schema.requestable:
                        found.append(
                            Problem(
                                "error",
                                "requests for slots that are not requestable",
                                where,
                                f"request {slot!r} is not a requestable slot of schema.json",
                            )
                        )
                for slot in sorted(set(before) - set(turn.state)):
                    found.append(
                        Problem(
                            "warning",
                            "slots dropped from the state (removals: check each was meant)",
                            where,
                            f"{slot}={before[slot]!r} dropped",
                        )
                    )
                if not re.search(r"\w", turn.user):
                    found.append(
                        Problem("warning", "user turns without a word", where, f"user said {turn.user!r}")
                    )
                before = turn.state
    return found


def _print(problems: list[Problem], stream) -> None:
    """Each kind's first :data:`SHOWN` problems, then one line with how many more."""
    shown: Counter = Counter()
    total = Counter(p.kind for p in problems)
    for p in problems:
        shown[p.kind] += 1
        if shown[p.kind] <= SHOWN:
            print(f"{p.level}: {p.where}: {p.what}", file=stream)
        elif shown[p.kind] == total[p.kind]:
            print(f"{p.level}: ... {total[p.kind] - SHOWN} more {p.kind}", file=stream)


def check_dialogues(data_dir: str) -> DialogueFolder:
    """Check a dialogue folder; print warnings and errors on stderr, ``ok:`` on stdout or exit 2."""
    folder = read_dialogue_folder(data_dir)
    problems = find_problems(folder)
    for warning in folder.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    warnings = [p for p in problems if p.level == "warning"]
    errors = [p for p in problems if p.level == "error"]
    _print(warnings, sys.stderr)
    _print(errors, sys.stderr)
    if errors:
        kinds = "; ".join(f"{n} {kind}" for kind, n in Counter(p.kind for p in errors).items())
        many = "problem" if len(errors) == 1 else "problems"
        raise DataFormatError(f"{data_dir}: {len(errors)} {many} to fix ({kinds}), listed above")
    sizes = ", ".join(
        f"{s} {len(ds)} dialogues ({sum(len(d.turns) for d in ds)} turns)" for s, ds in folder.splits.items()
    )
    schema = folder.schema
    print(
        f"ok: {data_dir} (dialogues): {sizes}; {len(schema.informable)} informable slots, "
        f"{len(schema.requestable)} requestable"
    )
    return folder
