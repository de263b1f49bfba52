"""Inline bracket annotations, as MASSIVE, SLURP and HWU64 write them: ``wake me at [time : five am]``.

Input: a text file with one annotated utterance per line (the intent is then a fixed ``intent``), a CSV/TSV
file (``column``: the annotated text's column, default ``annot_utt`` or the first; ``intent_column``: the
intent's, default ``intent`` or the second; header and columns by :func:`csv_table.table_columns`, the CSV
format's rule), or JSON Lines such as MASSIVE's (keys ``annot_utt``/``intent``,
SLURP's ``sentence_annotation``). An annotation is ``[type : value]``; the text keeps the value. Nested,
unclosed or stray brackets, or a bracket without ``type :``, are one-line errors naming the file and line
(``lenient``: the line is kept as literal words, without slots, and the summary warns with its place).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from chatft.core.errors import ConfigError, DataFormatError
from chatft.data_tools import csv_table
from chatft.data_tools.notes import shown
from chatft.data_tools.rasa_annotations import LENIENT_KIND
from chatft.data_tools.records import Record, Span
from chatft.data_tools.sources import files_in, read_text

TEXT_KEYS = ("annot_utt", "sentence_annotation", "annotation", "text")
INTENT_KEYS = ("intent", "label")


def parse(annotated: str, where: str) -> tuple[str, tuple[Span, ...]]:
    """Plain text and spans of ``annotated``; the value's surrounding spaces are not part of the slot."""
    out: list[str] = []
    spans: list[Span] = []
    length, i = 0, 0
    while i < len(annotated):
        c = annotated[i]
        if c == "]":
            raise DataFormatError(
                f"{where}: ']' at column {i + 1} closes no '[' (annotations are [type : value])"
            )
        if c != "[":
            out.append(c)
            length += 1
            i += 1
            continue
        close = annotated.find("]", i + 1)
        inner_open = annotated.find("[", i + 1)
        if close < 0:
            raise DataFormatError(
                f"{where}: '[' at column {i + 1} is never closed (annotations are [type : value])"
            )
        if 0 <= inner_open < close:
            raise DataFormatError(
                f"{where}: nested '[' at column {inner_open + 1} inside the annotation opened at column {i + 1} "
                "(one slot per word: annotations cannot nest)"
            )
        body = annotated[i + 1 : close]
        typ, sep, value = body.partition(":")
        if not sep or not typ.strip() or not value.strip():
            rasa = (
                " (Rasa's [text](entity) is --from rasa-yaml)"
                if annotated[close + 1 : close + 2] in ("(", "{")
                else ""
            )
            raise DataFormatError(
                f"{where}: annotation [{body}] at column {i + 1} is not [type : value]{rasa}"
            )
        value = value.strip()
        # the spaces written around an annotation stay in the text: "at [time : five am]" -> "at five am"
        spans.append(Span(length, length + len(value), typ.strip()))
        out.append(value)
        length += len(value)
        i = close + 1
    return "".join(out), tuple(spans)


def _key(keys: list[str], given: str | None, defaults: tuple[str, ...], what: str) -> str:
    """The JSON key holding the text or the intent: ``given``, else the first of ``defaults`` present."""
    if given is not None:
        if given not in keys:
            raise ConfigError(f"--{what} {given!r}: not found (have {keys})")
        return given
    for key in defaults:
        if key in keys:
            return key
    raise ConfigError(f"--{what}: none of {list(defaults)} found (have {keys}); name it with --{what}")


def read_file(
    path: Path,
    notes: Counter,
    column: str | None = None,
    intent_column: str | None = None,
    intent: str | None = None,
    lenient: bool = False,
) -> list[Record]:
    suffix = path.suffix.lower()
    items: list[tuple[str, str, str]] = []  # (where, annotated, intent)
    if suffix in (".csv", ".tsv"):
        table = csv_table.rows(path)
        if table:
            # csv_table's column rule (header names, numbers, defaults), with this format's own column names.
            header, col_i, icol_i = csv_table.table_columns(
                path,
                table,
                column,
                intent_column,
                has_label=intent is None,
                text_names=TEXT_KEYS,
                label_names=INTENT_KEYS,
                options=("column", "intent-column"),
            )
            if header:
                shown(
                    notes,
                    "header rows (not read as examples)",
                    f"{path}:{table[0][0]}: " + " | ".join(repr(c.strip()) for c in header),
                )
            need = max(col_i, icol_i if icol_i is not None else 0)
            for line, cells in table[1:] if header else table:
                where = f"{path}:{line}"
                if len(cells) <= need:
                    raise DataFormatError(f"{where}: {len(cells)} column(s), expected at least {need + 1}")
                items.append((where, cells[col_i], intent if icol_i is None else cells[icol_i].strip()))
    elif suffix in (".jsonl", ".json"):
        for n, line in enumerate(read_text(path).split("\n"), start=1):
            if not line.strip():
                continue
            where = f"{path}:{n}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataFormatError(f"{where}: malformed JSON ({err.msg} at column {err.colno})") from None
            if not isinstance(obj, dict):
                raise DataFormatError(f"{where}: expected one JSON object per line")
            keys = list(obj)
            col = _key(keys, column, TEXT_KEYS, "column")
            label = intent
            if label is None:
                label = obj.get(_key(keys, intent_column, INTENT_KEYS, "intent-column"))
            items.append((where, obj.get(col), label))
    else:
        if intent is None:
            raise ConfigError(
                f"{path}: a plain text file of bracket lines has no intent column: give --intent NAME (or use a "
                "CSV/TSV/JSON Lines file with an intent column)"
            )
        for n, line in enumerate(read_text(path).split("\n"), start=1):
            if line.strip():
                items.append((f"{path}:{n}", line, intent))
    records = []
    for where, annotated, label in items:
        if not isinstance(annotated, str):
            raise DataFormatError(f"{where}: the annotated text is missing or not a string")
        if not isinstance(label, str) or not label.strip():
            raise DataFormatError(f"{where}: the intent is missing or empty")
        try:
            text, spans = parse(annotated, where)
        except DataFormatError as err:
            if not lenient:
                raise DataFormatError(f"{err} (data convert --lenient keeps the line as words)") from None
            shown(notes, LENIENT_KIND, str(err), level="warning")
            text, spans = annotated, ()
        records.append(Record(text, label.strip(), spans, where))
    return records


def read(path: Path, notes: Counter, **options) -> list[Record]:
    """Records of a bracket-annotated file, or of every such file under a folder."""
    files = files_in(path, (".txt", ".csv", ".tsv", ".jsonl", ".json"))
    return [r for f in files for r in read_file(f, notes, **options)]
