"""Intent-only spreadsheets (CSV/TSV), read with Python's ``csv`` module (quotes, commas and newlines in fields).

The delimiter is sniffed from the first lines (``,`` ``;`` tab ``|``) unless given. A first row whose cells
name a text column (``text``, ``sentence``, ``utterance``...) and a label column (``label``, ``intent``,
``category``, ``class``) is a header; ``text_column``/``label_column`` name the columns (or give 1-based
numbers). Without a header, text is column 1 and the label column 2.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path

from chatft.core.errors import ConfigError, DataFormatError
from chatft.data_tools.records import Record
from chatft.data_tools.sources import files_in, read_text

TEXT_NAMES = ("text", "sentence", "utterance", "utt", "query", "example")
LABEL_NAMES = ("label", "intent", "category", "class")
_DELIMITERS = ",;\t|"


def rows(path: Path, delimiter: str | None = None) -> list[tuple[int, list[str]]]:
    """``(line, cells)`` of every non-blank row; ``line`` is where the row starts (rows may span lines)."""
    text = read_text(path)
    if delimiter is None:
        if path.suffix.lower() == ".tsv":
            delimiter = "\t"
        else:
            try:
                delimiter = csv.Sniffer().sniff(text[:8192], delimiters=_DELIMITERS).delimiter
            except csv.Error:
                delimiter = ","
    elif delimiter in ("\\t", "tab"):
        delimiter = "\t"
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    out, start = [], 1
    try:
        for cells in reader:
            if any(c.strip() for c in cells):
                out.append((start, cells))
            start = reader.line_num + 1
    except csv.Error as err:
        raise DataFormatError(f"{path}:{reader.line_num}: unreadable CSV ({err})") from None
    return out


def column_index(
    cells: list[str] | None, given: str | None, names: tuple[str, ...], default: int, what: str
) -> int:
    """0-based index of a column: a given 1-based number or header name, a known name, or ``default``."""
    if given is not None and given.isdigit():
        return int(given) - 1
    header = [c.strip().lower() for c in cells] if cells is not None else []
    if given is not None:
        if given.strip().lower() not in header:
            raise ConfigError(f"--{what} {given!r}: no such column in the header {cells}")
        return header.index(given.strip().lower())
    for name in names:
        if name in header:
            return header.index(name)
    return default


def has_header(cells: list[str], text_column: str | None, label_column: str | None) -> bool:
    header = {c.strip().lower() for c in cells}
    text_ok = (
        (text_column.strip().lower() in header)
        if text_column and not text_column.isdigit()
        else bool(header & set(TEXT_NAMES))
    )
    label_ok = (
        (label_column.strip().lower() in header)
        if label_column and not label_column.isdigit()
        else bool(header & set(LABEL_NAMES))
    )
    return text_ok and label_ok


def read_file(
    path: Path,
    notes: Counter,
    text_column: str | None = None,
    label_column: str | None = None,
    delimiter: str | None = None,
) -> list[Record]:
    table = rows(path, delimiter)
    if not table:
        raise DataFormatError(f"{path}: file is empty (expected text,label rows)")
    header = table[0][1] if has_header(table[0][1], text_column, label_column) else None
    if header is None and any(c is not None and not c.isdigit() for c in (text_column, label_column)):
        raise ConfigError(f"{path}: no header row with the columns {text_column!r}/{label_column!r}")
    t = column_index(header, text_column, TEXT_NAMES, 0, "text-column")
    lab = column_index(header, label_column, LABEL_NAMES, 1, "label-column")
    records = []
    for line, cells in table[1:] if header is not None else table:
        where = f"{path}:{line}"
        if len(cells) <= max(t, lab):
            raise DataFormatError(
                f"{where}: {len(cells)} column(s), expected the text in column {t + 1} and the label in column "
                f"{lab + 1} (is the delimiter right? give it with --delimiter)"
            )
        if not cells[lab].strip():
            raise DataFormatError(f"{where}: empty label")
        records.append(Record(cells[t], cells[lab].strip(), None, where))
    if header is not None:
        notes["header rows recognised"] += 1
    return records


def read(path: Path, notes: Counter, **options) -> list[Record]:
    """Records of a CSV/TSV file, or of every ``.csv``/``.tsv`` file under a folder."""
    return [r for f in files_in(path, (".csv", ".tsv")) for r in read_file(f, notes, **options)]
