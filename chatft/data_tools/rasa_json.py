"""The older Rasa NLU JSON: ``{"rasa_nlu_data": {"common_examples": [{"text", "intent", "entities"}]}}``.

Entities carry character ``start``/``end`` and an ``entity`` type (``value``, ``role``, ``group`` as in the
YAML format). ``entity_synonyms``, ``regex_features`` and ``lookup_tables`` are skipped and counted.
Records are named ``file: common_examples[i]`` (JSON has no useful line for an element).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from chatft.core.errors import DataFormatError
from chatft.data_tools.records import Record, Span
from chatft.data_tools.sources import files_in, read_text


def load_json(path: Path):
    """The file's JSON value; malformed JSON is one line with the line and column."""
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as err:
        raise DataFormatError(
            f"{path}:{err.lineno}: malformed JSON ({err.msg} at column {err.colno})"
        ) from None


def read_file(path: Path, notes: Counter, roles: str = "drop") -> list[Record]:
    data = load_json(path)
    nlu = data.get("rasa_nlu_data") if isinstance(data, dict) else None
    if not isinstance(nlu, dict) or not isinstance(nlu.get("common_examples", []), list):
        raise DataFormatError(
            f'{path}: expected {{"rasa_nlu_data": {{"common_examples": [...]}}}} (the Rasa NLU JSON format)'
        )
    for key in ("entity_synonyms", "regex_features", "lookup_tables"):
        if nlu.get(key):
            notes[f"{key} entries (skipped: not training examples)"] += len(nlu[key])
    records = []
    for i, ex in enumerate(nlu.get("common_examples", [])):
        where = f"{path}: common_examples[{i}]"
        if not isinstance(ex, dict) or not isinstance(ex.get("text"), str):
            raise DataFormatError(f'{where}: expected an object with "text" and "intent"')
        intent = ex.get("intent")
        if not isinstance(intent, str) or not intent.strip():
            raise DataFormatError(f'{where}: "intent" missing or empty')
        spans = []
        for k, ent in enumerate(ex.get("entities") or []):
            if not isinstance(ent, dict) or not {"start", "end", "entity"} <= ent.keys():
                raise DataFormatError(f'{where}: entities[{k}] needs "start", "end" and "entity"')
            if not all(
                isinstance(ent[key], int) and not isinstance(ent[key], bool) for key in ("start", "end")
            ):
                raise DataFormatError(f'{where}: entities[{k}]: "start" and "end" must be integers')
            typ = str(ent["entity"]).strip()
            if ent.get("role") or ent.get("group"):
                if roles == "keep" and ent.get("role"):
                    typ = f"{typ}.{ent['role']}"
                    notes["entities with a role (kept as entity.role)"] += 1
                else:
                    notes["entities with a role or group (dropped; roles='keep' types them entity.role)"] += 1
            spans.append(Span(ent["start"], ent["end"], typ))
        records.append(Record(ex["text"], intent.strip(), tuple(spans), where))
    return records


def read(path: Path, notes: Counter, roles: str = "drop") -> list[Record]:
    """Records of a Rasa NLU JSON file, or of every ``.json`` file under a folder."""
    return [r for f in files_in(path, (".json",)) for r in read_file(f, notes, roles)]
