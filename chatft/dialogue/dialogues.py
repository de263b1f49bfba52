"""chatft's dialogue format: JSON Lines, one dialogue per line, the state after every user turn.

A dialogue folder holds ``train.jsonl``, ``dev.jsonl`` (and optionally ``test.jsonl``) and ``schema.json``.
One line of a split file::

    {"id": "woz-train-0",
     "turns": [
       {"system": "",
        "user": "Are there any eritrean restaurants in town?",
        "state": {"food": "eritrean"}},
       {"system": "There is a wide variety of Chinese restaurants, do you have an area preference?",
        "user": "Any part of town is fine.",
        "state": {"food": "chinese", "area": "dontcare"},
        "system_acts": [["request", "area"]],
        "requests": []}]}

- ``system`` is what the bot said just before the user's utterance (``""`` on the first turn): the tracker reads
  it, which is how "yes" to "Do you want Italian food?" and "the same area" get resolved.
- ``state`` is the whole informable state *after* the turn: slot -> value. :data:`DONTCARE` means the user does
  not mind; a slot that is absent is not set (a slot that disappears from one turn to the next was removed).
- ``system_acts`` (optional): the system's acts before the turn, ``["request", slot]`` or
  ``["inform", slot, value]`` (an offer or a confirmation). Training may use them; prediction never needs them.
- ``requests`` (optional, default none): the requestable slots the user asks for in this turn ("what is
  the phone number?" -> ``["phone"]``).

``schema.json`` lists the slots::

    {"informable": {"food": ["chinese", "italian", ...], "area": ["centre", "north", ...], "name": null},
     "requestable": ["address", "phone", "postcode"]}

An informable slot's value list is optional (``null``: open values, e.g. names and times, taken from the text).

Torch-free: the data tools, the chat loop and the ONNX tracker read it. Errors are one line naming the file and
line (and the turn), as every other reader in chatft.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from chatft.core.errors import DataFormatError

__all__ = [
    "DONTCARE",
    "SPLIT_FILES",
    "SCHEMA_FILE",
    "Turn",
    "Dialogue",
    "Schema",
    "read_dialogues",
    "write_dialogues",
    "read_schema",
    "write_schema",
    "is_dialogue_folder",
]

#: The value of a slot the user explicitly does not mind ("any part of town").
DONTCARE = "dontcare"
#: Split name -> file name inside a dialogue folder.
SPLIT_FILES = {"train": "train.jsonl", "dev": "dev.jsonl", "test": "test.jsonl"}
SCHEMA_FILE = "schema.json"
_ACT_KINDS = {"request": 2, "inform": 3}
_TURN_KEYS = {"system", "user", "state", "system_acts", "requests"}


@dataclass(frozen=True)
class Turn:
    """One exchange: the system's utterance, the user's answer, and the state after it."""

    system: str
    user: str
    state: dict[str, str]
    system_acts: tuple[tuple[str, ...], ...] = ()
    requests: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        d: dict = {"system": self.system, "user": self.user, "state": dict(self.state)}
        if self.system_acts:
            d["system_acts"] = [list(a) for a in self.system_acts]
        if self.requests:
            d["requests"] = list(self.requests)
        return d


@dataclass(frozen=True)
class Dialogue:
    """A dialogue: an id (unique within its file) and its turns in order."""

    id: str
    turns: tuple[Turn, ...]

    def to_dict(self) -> dict:
        return {"id": self.id, "turns": [t.to_dict() for t in self.turns]}


@dataclass(frozen=True)
class Schema:
    """The slots a tracker follows: informable ones (with an optional value list) and requestable ones."""

    informable: dict[str, tuple[str, ...] | None]
    requestable: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        return {
            "informable": {s: (list(v) if v is not None else None) for s, v in self.informable.items()},
            "requestable": list(self.requestable),
        }


def _strings(value, what: str, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(x, str) and x.strip() for x in value):
        raise DataFormatError(f"{where}: {what} must be a list of non-empty strings")
    return value


def _turn(raw, where: str, states: bool = True) -> Turn:
    if not isinstance(raw, dict):
        what = "system, user and state" if states else "system and user"
        raise DataFormatError(f"{where}: a turn must be an object with {what}")
    unknown = sorted(set(raw) - _TURN_KEYS)
    if unknown:
        raise DataFormatError(
            f"{where}: unknown key {unknown[0]!r} (expected {', '.join(sorted(_TURN_KEYS))})"
        )
    for key in ("system", "user"):
        if not isinstance(raw.get(key), str):
            raise DataFormatError(f'{where}: {key!r} must be a string ("" for an empty system turn)')
    if not raw["user"].strip():
        raise DataFormatError(f"{where}: 'user' is empty")
    state = raw.get("state", None if states else {})
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and k.strip() and isinstance(v, str) and v.strip() for k, v in state.items()
    ):
        raise DataFormatError(f"{where}: 'state' must be an object of slot -> non-empty string value")
    acts = []
    for i, act in enumerate(raw.get("system_acts", [])):
        n = _ACT_KINDS.get(act[0]) if isinstance(act, list) and act else None
        if n is None or len(act) != n or not all(isinstance(x, str) and x for x in act):
            raise DataFormatError(
                f'{where}: system_acts[{i}] must be ["request", slot] or ["inform", slot, value], got {act!r}'
            )
        acts.append(tuple(act))
    requests = _strings(raw.get("requests", []), "'requests'", where)
    return Turn(raw["system"], raw["user"], dict(state), tuple(acts), tuple(requests))


def read_dialogues(path: str | Path, states: bool = True) -> list[Dialogue]:
    """Read a JSON Lines dialogue file; a malformed line is a :class:`DataFormatError` naming file, line, turn.

    ``states=False`` reads conversations to track (``predict --data.predict_file``): a turn's ``state`` is
    optional (``{}`` when absent), the rest is checked as in a split file."""
    path = Path(path)
    dialogues: list[Dialogue] = []
    seen: dict[str, int] = {}
    with path.open("rb") as f:
        for lineno, data in enumerate(f, 1):
            where = f"{path}:{lineno}"
            try:
                line = data.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataFormatError(f"{where}: not UTF-8 text (byte {err.start + 1} of the line)") from None
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataFormatError(f"{where}: not JSON ({err.msg}, column {err.colno})") from None
            if not isinstance(raw, dict) or not isinstance(raw.get("turns"), list) or not raw["turns"]:
                raise DataFormatError(
                    f'{where}: expected {{"id": ..., "turns": [...]}} with at least one turn'
                )
            did = raw.get("id", str(len(dialogues)))
            if not isinstance(did, (str, int)):
                raise DataFormatError(f"{where}: 'id' must be a string")
            did = str(did)
            if did in seen:
                raise DataFormatError(f"{where}: dialogue id {did!r} already used on line {seen[did]}")
            seen[did] = lineno
            turns = tuple(
                _turn(t, f"{where}: dialogue {did!r} turn {i}", states) for i, t in enumerate(raw["turns"])
            )
            dialogues.append(Dialogue(did, turns))
    return dialogues


def write_dialogues(path: str | Path, dialogues: list[Dialogue]) -> None:
    """Write dialogues as JSON Lines (UTF-8, one dialogue per line, non-ASCII kept as is)."""
    with Path(path).open("w", encoding="utf-8") as f:
        for d in dialogues:
            f.write(json.dumps(d.to_dict(), ensure_ascii=False) + "\n")


def read_schema(path: str | Path) -> Schema:
    """Read ``schema.json``; errors name the file."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataFormatError(f"{path}:{err.lineno}: not JSON ({err.msg})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("informable"), dict) or not raw["informable"]:
        raise DataFormatError(
            f'{path}: expected {{"informable": {{slot: [values] or null}}, "requestable": [...]}}'
        )
    informable: dict[str, tuple[str, ...] | None] = {}
    for slot, values in raw["informable"].items():
        informable[slot] = (
            None if values is None else tuple(_strings(values, f"informable[{slot!r}]", str(path)))
        )
    requestable = tuple(_strings(raw.get("requestable", []), "'requestable'", str(path)))
    return Schema(informable, requestable)


def write_schema(path: str | Path, schema: Schema) -> None:
    Path(path).write_text(json.dumps(schema.to_dict(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def is_dialogue_folder(folder: str | Path) -> bool:
    """A folder is a dialogue folder when it has ``schema.json`` and a ``train.jsonl`` or ``dev.jsonl``."""
    folder = Path(folder)
    return (folder / SCHEMA_FILE).is_file() and any(
        (folder / SPLIT_FILES[s]).is_file() for s in ("train", "dev")
    )
