"""Annotation-tool exports with character spans: doccano and Label Studio.

doccano (JSON Lines, one record a line): ``{"text": ..., "entities"|"label"|"labels": [[start, end, type],
...] or [{"start_offset", "end_offset", "label"}, ...], "cats": [intent]}``; the intent is the record's
category label (``cats``, or ``label`` when it is a list of names), or the ``intent_column`` key.
Label Studio (JSON export: one array of tasks): ``data`` holds the text (``text``, or the ``column`` key);
the first annotation not cancelled gives spans (``labels`` results: ``value.start/end/labels``) and the
intent (a ``choices`` result). Label Studio's JSON-MIN export (``"label": [{"start", "end", "labels"}]``)
reads too. Tasks nobody annotated have no intent: they are skipped and counted. Without any intent in the
records, ``intent`` gives a fixed one.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from chatft.core.errors import DataFormatError
from chatft.data_tools.records import Record, Span
from chatft.data_tools.sources import files_in, read_text

_SPAN_KEYS = ("entities", "label", "labels")


def _objects(path: Path) -> list[tuple[str, object]]:
    """``(where, value)`` of each record: the elements of a JSON array, or one JSON value per line."""
    text = read_text(path)
    if text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataFormatError(
                f"{path}:{err.lineno}: malformed JSON ({err.msg} at column {err.colno})"
            ) from None
        return [(f"{path}: record {i + 1}", obj) for i, obj in enumerate(data)]
    out = []
    for n, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            try:
                out.append((f"{path}:{n}", json.loads(line)))
            except json.JSONDecodeError as err:
                raise DataFormatError(
                    f"{path}:{n}: malformed JSON ({err.msg} at column {err.colno})"
                ) from None
    return out


def _span(item: object, where: str) -> Span:
    if isinstance(item, list) and len(item) == 3:
        start, end, typ = item
    elif isinstance(item, dict) and "start_offset" in item:
        start, end, typ = item.get("start_offset"), item.get("end_offset"), item.get("label")
    elif isinstance(item, dict) and "start" in item:
        labels = item.get("labels") or [item.get("label")]
        start, end, typ = item.get("start"), item.get("end"), labels[0]
    else:
        raise DataFormatError(f"{where}: span {item!r} is not [start, end, type] or a start/end/label object")
    if not (isinstance(start, int) and isinstance(end, int) and isinstance(typ, str)):
        raise DataFormatError(f"{where}: span {item!r}: start and end must be integers and the type a string")
    return Span(start, end, typ)


def _label_studio(
    task: dict, where: str, column: str | None, notes: Counter
) -> tuple[str, str | None, list[Span]] | None:
    data = task.get("data")
    key = column or ("text" if isinstance(data, dict) and "text" in data else None)
    if not isinstance(data, dict) or key is None or not isinstance(data.get(key), str):
        raise DataFormatError(
            f"{where}: task data has no text (expected data.text, or name the key with --column)"
        )
    done = [a for a in task.get("annotations") or task.get("completions") or [] if not a.get("was_cancelled")]
    if not done:
        notes["tasks without an annotation (skipped)"] += 1
        return None
    intent, spans = None, []
    for res in done[0].get("result", []):
        value = res.get("value", {})
        if res.get("type") == "labels" or "labels" in value:
            if len(value.get("labels", [])) > 1:
                notes["spans with several labels (first kept)"] += 1
            spans.append(
                _span(
                    {"start": value.get("start"), "end": value.get("end"), "labels": value.get("labels")},
                    where,
                )
            )
        elif res.get("type") == "choices" or "choices" in value:
            choices = value.get("choices") or []
            if intent is None and choices:
                intent = choices[0]
                if len(choices) > 1:
                    notes["records with several intent choices (first kept)"] += 1
    return data[key], intent, spans


def read_file(
    path: Path,
    notes: Counter,
    column: str | None = None,
    intent_column: str | None = None,
    intent: str | None = None,
) -> list[Record]:
    records = []
    for where, obj in _objects(path):
        if not isinstance(obj, dict):
            raise DataFormatError(f"{where}: expected a JSON object (a doccano line or a Label Studio task)")
        if isinstance(obj.get("data"), dict):
            found = _label_studio(obj, where, column, notes)
            if found is None:
                continue
            text, label, spans = found
        else:
            key = column or ("text" if "text" in obj else "data")  # doccano 1.x named the text "data"
            text = obj.get(key)
            if not isinstance(text, str):
                raise DataFormatError(f'{where}: no text (expected a "text" key, or name it with --column)')
            spans, label = [], None
            for k in _SPAN_KEYS:
                items = obj.get(k)
                if isinstance(items, list) and items and not all(isinstance(x, str) for x in items):
                    spans.extend(_span(x, where) for x in items)
                elif isinstance(items, list) and items and label is None:
                    label = items[0]  # a list of names: the record's category labels
            cats = obj.get("cats")
            if isinstance(cats, list) and cats:
                label = cats[0]
                if len(cats) > 1:
                    notes["records with several intent categories (first kept)"] += 1
            elif isinstance(cats, dict) and cats:  # spaCy-style {"intent": 1.0}
                label = max(cats, key=cats.get)
        if intent_column is not None:
            label = (
                obj.get(intent_column)
                if not isinstance(obj.get("data"), dict)
                else obj["data"].get(intent_column)
            )
        if label is None:
            label = intent
        if not isinstance(label, str) or not label.strip():
            raise DataFormatError(
                f"{where}: no intent (expected a category label: doccano 'cats', a Label Studio choice; or give "
                "--intent-column KEY or a fixed --intent NAME)"
            )
        records.append(Record(text, label.strip(), tuple(spans), where))
    return records


def read(path: Path, notes: Counter, **options) -> list[Record]:
    """Records of a doccano/Label Studio export, or of every ``.json``/``.jsonl`` file under a folder."""
    return [r for f in files_in(path, (".jsonl", ".json")) for r in read_file(f, notes, **options)]
