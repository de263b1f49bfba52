"""The older Rasa NLU JSON: ``{"rasa_nlu_data": {"common_examples": [{"text", "intent", "entities"}]}}``.

Entities carry character ``start``/``end`` and an ``entity`` type (``value``, ``role``, ``group`` as in the
YAML format). ``entity_synonyms``, ``regex_features``, ``lookup_tables`` (lists of elements; a lookup file path
is skipped with a note) and entity synonym values go into ``resources`` (``entities.json``), as in the YAML reader.
Records are named ``file: common_examples[i]`` (JSON has no useful line for an element).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from chatft.core.entity_resources import EntityResources
from chatft.core.errors import DataFormatError
from chatft.data_tools.rasa_yaml import add_span_synonyms
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


def _resources(nlu: dict, path: Path, resources: EntityResources, notes: Counter) -> None:
    """``entity_synonyms``, ``regex_features`` and ``lookup_tables`` into ``resources``.

    Each must be a list: a string (a file name, say) was read letter by letter, a number was a traceback."""
    for key in ("entity_synonyms", "regex_features", "lookup_tables"):
        if not isinstance(nlu.get(key) or [], list):
            raise DataFormatError(f"{path}: {key} must be a list, got {type(nlu[key]).__name__}")
    for i, syn in enumerate(nlu.get("entity_synonyms") or []):
        if (
            not isinstance(syn, dict)
            or not isinstance(syn.get("value"), str)
            or not isinstance(syn.get("synonyms") or [], list)
        ):
            raise DataFormatError(
                f'{path}: entity_synonyms[{i}]: expected {{"value": ..., "synonyms": [...]}}'
            )
        for text in syn.get("synonyms") or []:
            if not resources.add_synonym(str(text), syn["value"]):
                notes["conflicting synonyms (the later value wins, as in Rasa)"] += 1
    for i, reg in enumerate(nlu.get("regex_features") or []):
        if not isinstance(reg, dict) or not {"name", "pattern"} <= reg.keys():
            raise DataFormatError(f'{path}: regex_features[{i}]: expected {{"name": ..., "pattern": ...}}')
        resources.add_regex(str(reg["name"]), str(reg["pattern"]), f"{path}: regex_features[{i}]")
    for i, table in enumerate(nlu.get("lookup_tables") or []):
        if not isinstance(table, dict) or "name" not in table:
            raise DataFormatError(f'{path}: lookup_tables[{i}]: expected {{"name": ..., "elements": [...]}}')
        if not isinstance(table.get("elements"), list):
            notes["lookup tables given as a file (skipped: list the elements instead)"] += 1
            continue
        resources.add_lookup(str(table["name"]), [str(e) for e in table["elements"]])
    for key in ("entity_synonyms", "regex_features", "lookup_tables"):
        if nlu.get(key):
            notes[f"{key} entries (kept in entities.json)"] += len(nlu[key])


def read_file(
    path: Path, notes: Counter, roles: str = "drop", resources: EntityResources | None = None
) -> list[Record]:
    """Records of one file; its synonyms, regexes and lookup tables go into ``resources`` (dropped when None)."""
    resources = resources if resources is not None else EntityResources()
    data = load_json(path)
    nlu = data.get("rasa_nlu_data") if isinstance(data, dict) else None
    if not isinstance(nlu, dict) or not isinstance(nlu.get("common_examples", []), list):
        raise DataFormatError(
            f'{path}: expected {{"rasa_nlu_data": {{"common_examples": [...]}}}} (the Rasa NLU JSON format)'
        )
    _resources(nlu, path, resources, notes)
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
            value = ent.get("value")
            synonym = (
                str(value)
                if value is not None and str(value) != ex["text"][ent["start"] : ent["end"]]
                else None
            )
            spans.append(Span(ent["start"], ent["end"], typ, synonym))
        records.append(Record(ex["text"], intent.strip(), tuple(spans), where))
        add_span_synonyms(ex["text"], spans, resources, notes)
    return records


def read(
    path: Path, notes: Counter, roles: str = "drop", resources: EntityResources | None = None
) -> list[Record]:
    """Records of a Rasa NLU JSON file, or of every ``.json`` file under a folder."""
    return [r for f in files_in(path, (".json",)) for r in read_file(f, notes, roles, resources)]
