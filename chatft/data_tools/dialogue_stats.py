"""``python -m chatft data stats DIR`` on a dialogue folder: what the states hold and how a tracker can fill them.

Per split: dialogues, user turns, turns per dialogue. Per informable slot (the schema's, then any other the
data uses): the share of turns where it is set, set to ``dontcare``, or changed (set, overwritten or
removed), the removals, the distinct values, and for every *update* (a turn that gives the slot a new value
other than ``dontcare``) where the value can be copied from: the user's words, else the system's words
(an offer the user accepts: "yes"), else neither (the value must come from a list, or the user paraphrased
it: "cheap" for ``price range=cheap`` is in the user's words; "something in the middle" for ``moderate`` is
not). A team sees from it how much a span tracker can copy, and how much needs the slot's value list.
Then the requests per requestable slot. A table in the terminal, ``--json`` for machines.

Verbatim means case-insensitive and on word boundaries ("east" is not found in "least").
"""

from __future__ import annotations

import re
from collections import Counter

from chatft.data_tools.dialogue_folder import DialogueFolder
from chatft.data_tools.stats import percentile
from chatft.dialogue.dialogues import DONTCARE, Dialogue, Schema

__all__ = ["dialogue_stats", "split_stats", "format_dialogue_table", "appears_in"]


def appears_in(value: str, text: str) -> bool:
    """``value`` occurs in ``text``, ignoring case, as whole words."""
    return re.search(rf"(?<!\w){re.escape(value.lower())}(?!\w)", text.lower()) is not None


def _share(n: int, total: int) -> float:
    return round(n / total, 4) if total else 0.0


def slot_names(schema: Schema, dialogues: list[Dialogue]) -> list[str]:
    """The schema's informable slots in its order, then the other slots the states use, sorted."""
    used = {s for d in dialogues for t in d.turns for s in t.state}
    return [*schema.informable, *sorted(used - set(schema.informable))]


def split_stats(dialogues: list[Dialogue], schema: Schema) -> dict:
    """The numbers of one split (see the module docstring for what each counts)."""
    turns = sum(len(d.turns) for d in dialogues)
    lengths = sorted(len(d.turns) for d in dialogues)
    slots = {}
    for slot in slot_names(schema, dialogues):
        n_set = n_dontcare = changes = removals = 0
        values: set[str] = set()
        copy = Counter()
        for d in dialogues:
            before = None
            for turn in d.turns:
                value = turn.state.get(slot)
                n_set += value is not None
                n_dontcare += value == DONTCARE
                if value != before:
                    changes += 1
                    if value is None:
                        removals += 1
                    elif value != DONTCARE:
                        where = (
                            "user"
                            if appears_in(value, turn.user)
                            else ("system" if appears_in(value, turn.system) else "neither")
                        )
                        copy[where] += 1
                if value is not None and value != DONTCARE:
                    values.add(value)
                before = value
        updates = sum(copy.values())
        slots[slot] = {
            "set": _share(n_set, turns),
            "dontcare": _share(n_dontcare, turns),
            "changes_per_turn": _share(changes, turns),
            "removals": removals,
            "values": len(values),
            "updates": updates,
            "in_user": _share(copy["user"], updates),
            "in_system": _share(copy["system"], updates),
            "neither": _share(copy["neither"], updates),
        }
    requests = Counter(r for d in dialogues for t in d.turns for r in t.requests)
    order = [*schema.requestable, *sorted(set(requests) - set(schema.requestable))]
    return {
        "dialogues": len(dialogues),
        "turns": turns,
        "turns_per_dialogue": {
            "min": lengths[0] if lengths else 0,
            "p50": percentile(lengths, 50),
            "mean": round(turns / len(dialogues), 2) if dialogues else 0.0,
            "max": lengths[-1] if lengths else 0,
        },
        "slots": slots,
        "requests": {r: requests[r] for r in order},
        "turns_with_requests": sum(1 for d in dialogues for t in d.turns if t.requests),
    }


def dialogue_stats(folder: DialogueFolder) -> dict:
    """Every split's numbers, the schema's size and the folder's warnings, as one JSON-ready dict."""
    schema = folder.schema
    return {
        "data_dir": str(folder.data_dir),
        "format": "dialogues",
        "schema": {
            "informable": {s: (None if v is None else len(v)) for s, v in schema.informable.items()},
            "requestable": list(schema.requestable),
        },
        "splits": {s: split_stats(ds, schema) for s, ds in folder.splits.items()},
        "warnings": folder.warnings,
    }


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def format_dialogue_table(result: dict) -> str:
    """The terminal view: one row per split, then per split a row per slot and the requests."""
    informable = ", ".join(
        f"{s} ({'open' if n is None else f'{n} values'})" for s, n in result["schema"]["informable"].items()
    )
    lines = [
        f"{result['data_dir']} (dialogues)",
        f"schema: informable {informable}; requestable {', '.join(result['schema']['requestable']) or 'none'}",
        "",
    ]
    head = f"{'split':<6} {'dialogues':>9} {'turns':>6} {'turns/dialogue min/p50/mean/max':>32}"
    lines += [head, "-" * len(head)]
    for s, st in result["splits"].items():
        t = st["turns_per_dialogue"]
        per = f"{t['min']}/{t['p50']}/{t['mean']:.2f}/{t['max']}"
        lines.append(f"{s:<6} {st['dialogues']:>9} {st['turns']:>6} {per:>32}")
    for s, st in result["splits"].items():
        width = max([4, *(len(slot) for slot in st["slots"])])
        head = (
            f"{'slot':<{width}} {'set':>6} {'dontcare':>8} {'changes/turn':>12} {'removals':>8} {'values':>6} "
            f"{'updates':>7} {'in user':>7} {'in system':>9} {'neither':>7}"
        )
        lines += ["", f"{s}: per slot, share of turns; where each update's value appears verbatim", head]
        lines.append("-" * len(head))
        for slot, x in st["slots"].items():
            lines.append(
                f"{slot:<{width}} {_pct(x['set']):>6} {_pct(x['dontcare']):>8} {x['changes_per_turn']:>12.2f} "
                f"{x['removals']:>8} {x['values']:>6} {x['updates']:>7} {_pct(x['in_user']):>7} "
                f"{_pct(x['in_system']):>9} {_pct(x['neither']):>7}"
            )
        asked = ", ".join(f"{r} {n}" for r, n in st["requests"].items())
        lines.append(f"requests ({st['turns_with_requests']} turns with any): {asked or 'none'}")
    for warning in result["warnings"]:
        lines.append(f"warning: {warning}")
    return "\n".join(lines)
