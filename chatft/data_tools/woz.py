"""WOZ 2.0 / DSTC2-style dialogue JSON -> chatft's dialogue format (:mod:`chatft.dialogue.dialogues`).

The input is a list of ``{"dialogue_idx": N, "dialogue": [turn, ...]}``; each turn has ``transcript`` (the
user), ``system_transcript`` (the system just before), ``system_acts`` (``"food"``: a request;
``["area", "east"]``: an offer or confirmation), and ``belief_state`` (``inform`` slot-value pairs: the whole
state after the turn; ``request`` pairs ``["slot", X]``: this turn's requests). Every turn is kept.

What cannot be placed is counted in ``notes`` (never silently dropped from the count): an informable slot that
the ontology does not list, a value outside the slot's list, a request for a slot that is not requestable. The
turn is still kept, with the value as given (a team's data may be ahead of its ontology).

Pure functions over parsed JSON; the ``data convert`` command does the file handling.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from chatft.core.errors import DataFormatError
from chatft.data_tools.rasa_json import load_json
from chatft.dialogue.dialogues import Dialogue, Schema, Turn

__all__ = ["read_woz", "read_ontology", "schema_from_dialogues"]


def read_ontology(path: Path) -> Schema:
    """WOZ/DSTC2 ``ontology.json``: ``{"informable": {slot: [values]}, "requestable": [slots]}``.

    The ``request`` entry WOZ puts among the informable slots is the list of requestable slots, not a slot.
    """
    raw = load_json(path)
    if not isinstance(raw, dict) or not isinstance(raw.get("informable"), dict):
        raise DataFormatError(f"{path}: expected an ontology with an 'informable' object of slot -> values")
    informable: dict[str, tuple[str, ...] | None] = {}
    for slot, values in raw["informable"].items():
        if slot == "request":
            continue
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise DataFormatError(f"{path}: informable[{slot!r}] must be a list of values")
        informable[slot] = tuple(values)
    requestable = raw.get("requestable", raw["informable"].get("request", []))
    if not isinstance(requestable, list) or not all(isinstance(v, str) for v in requestable):
        raise DataFormatError(f"{path}: 'requestable' must be a list of slot names")
    return Schema(informable, tuple(requestable))


def _acts(raw, where: str) -> tuple[tuple[str, ...], ...]:
    if not isinstance(raw, list):
        raise DataFormatError(f"{where}: 'system_acts' must be a list")
    acts = []
    for act in raw:
        if isinstance(act, str) and act.strip():
            acts.append(("request", act))
        elif isinstance(act, list) and len(act) == 2 and all(isinstance(x, str) and x.strip() for x in act):
            acts.append(("inform", act[0], act[1]))
        else:
            raise DataFormatError(
                f"{where}: system act {act!r} is neither a slot name nor a [slot, value] pair"
            )
    return tuple(acts)


def _turn(raw, where: str, schema: Schema | None, notes: Counter) -> Turn:
    if not isinstance(raw, dict) or not isinstance(raw.get("transcript"), str):
        raise DataFormatError(f"{where}: expected a turn with a 'transcript' string")
    system = raw.get("system_transcript", "")
    if not isinstance(system, str):
        raise DataFormatError(f"{where}: 'system_transcript' must be a string")
    beliefs = raw.get("belief_state")
    if not isinstance(beliefs, list):
        raise DataFormatError(f"{where}: 'belief_state' must be a list of {{act, slots}} entries")
    state: dict[str, str] = {}
    requests: list[str] = []
    for entry in beliefs:
        pairs = entry.get("slots") if isinstance(entry, dict) else None
        if not isinstance(pairs, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p) for p in pairs
        ):
            raise DataFormatError(f"{where}: belief_state entry {entry!r} lacks [slot, value] pairs")
        if any(not x.strip() for p in pairs for x in p):
            raise DataFormatError(f"{where}: belief_state entry {entry!r} has an empty slot name or value")
        act = entry.get("act")
        for slot, value in pairs:
            if act == "request":
                if schema is not None and value not in schema.requestable:
                    notes[f"requests for a slot the ontology does not list as requestable ({value!r})"] += 1
                if value not in requests:
                    requests.append(value)
            elif act == "inform":
                if schema is not None and slot not in schema.informable:
                    notes[f"informable slots the ontology does not list ({slot!r})"] += 1
                elif schema is not None and (values := schema.informable[slot]) is not None:
                    if value != "dontcare" and value not in values:
                        notes[f"values outside the ontology's list ({slot}={value!r})"] += 1
                if slot in state and state[slot] != value:
                    notes["turns with two values for one slot (the last kept)"] += 1
                state[slot] = value
            else:
                notes[f"belief_state entries with act {act!r} (ignored)"] += 1
    if not raw["transcript"].strip():
        notes["turns with an empty user transcript (kept as '...')"] += 1
    user = raw["transcript"] if raw["transcript"].strip() else "..."
    return Turn(system, user, state, _acts(raw.get("system_acts", []), where), tuple(requests))


def read_woz(path: Path, split: str, schema: Schema | None, notes: Counter) -> list[Dialogue]:
    """Every dialogue and turn of one WOZ/DSTC2 JSON file, ids ``{split}-{dialogue_idx}``."""
    data = load_json(path)
    if not isinstance(data, list):
        raise DataFormatError(f"{path}: expected a list of {{dialogue_idx, dialogue}} objects (WOZ 2.0 JSON)")
    out = []
    for i, raw in enumerate(data):
        where = f"{path}: dialogue [{i}]"
        if not isinstance(raw, dict) or not isinstance(raw.get("dialogue"), list) or not raw["dialogue"]:
            raise DataFormatError(f"{where}: expected {{'dialogue_idx': N, 'dialogue': [turn, ...]}}")
        idx = raw.get("dialogue_idx", i)
        turns = tuple(
            _turn(t, f"{path}: dialogue {idx} turn {j}", schema, notes) for j, t in enumerate(raw["dialogue"])
        )
        out.append(Dialogue(f"{split}-{idx}", turns))
    return out


def schema_from_dialogues(dialogues: list[Dialogue]) -> Schema:
    """A schema when no ontology is given: the slots seen in states (open values) and in requests."""
    informable = sorted({s for d in dialogues for t in d.turns for s in t.state})
    requestable = sorted({r for d in dialogues for t in d.turns for r in t.requests})
    return Schema({s: None for s in informable}, tuple(requestable))
