"""Intent-only spreadsheets (CSV/TSV), read with Python's ``csv`` module (quotes, commas and newlines in fields).

The delimiter is sniffed from the first lines (``,`` ``;`` tab ``|``) unless given. ``text_column`` and
``label_column`` name the columns (or give 1-based numbers); without a header, text is column 1 and the
label column 2.

Header rule (:func:`is_header`; the same for every delimiter, and for the brackets format's tables). With
a column option that is a name, the first row is a header when it holds that name. Otherwise the first row
is a header when its cells read like column names and it does not read like data:

1. both its text cell and its label cell are known names (``text``, ``sentence``, ``utterance``, ``utt``,
   ``query``, ``example`` / ``label``, ``intent``, ``category``, ``class``, any case): a header, always; or
2. its label cell is no other row's label (a column's name is not one of its classes), and either
   a. one cell names a text column and another a label column: at most four words, no ``?``/``!``, and a
      header word among them (``Customer Query``, ``Intent Name``, ``utterance_text``, ``intentLabel``:
      :data:`TEXT_WORDS` / :data:`LABEL_WORDS`), or
   b. one of its cells is a known name exactly and its text and label cells are both short (at most four
      words, no ``?``/``!``): ``sentence,Absicht``, but not ``where is the text?,intent``.

The columns are then the cells that name them (exact names first), else columns 1 and 2. Ambiguous cases,
as tested: ``send a message,send_message`` is data (only its text cell has a header word); ``hello,greet``
is data; ``Frage,Absicht`` (no header word) is read as data, and when its label is the only one-example
class of a table whose other labels all repeat, the summary warns that it may be a header and how to say
so (``--label-column Absicht``). A recognised header is shown in the summary too, so neither choice is silent.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from pathlib import Path

from chatft.core.errors import ConfigError, DataFormatError
from chatft.data_tools.notes import shown
from chatft.data_tools.records import Record
from chatft.data_tools.sources import files_in, read_text

TEXT_NAMES = ("text", "sentence", "utterance", "utt", "query", "example")
LABEL_NAMES = ("label", "intent", "category", "class")
#: Words that make a short cell read like the name of a text / label column (``Customer Query``).
TEXT_WORDS = frozenset(
    {*TEXT_NAMES, "texts", "sentences", "utterances", "queries", "examples", "question", "questions"}
    | {"message", "messages", "phrase", "phrases", "input", "request", "prompt", "sample", "samples"}
)
LABEL_WORDS = frozenset(
    {*LABEL_NAMES, "labels", "intents", "categories", "classes", "tag", "tags", "target", "topic", "type"}
)
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


def cell_words(cell: str) -> list[str]:
    """Lower-case words of a cell, split at spaces, punctuation, ``_`` and camelCase (``intentName``)."""
    return re.findall(r"[a-z0-9]+", re.sub(r"([a-z])([A-Z])", r"\1 \2", cell).lower())


def short(cell: str) -> bool:
    """Shaped like a column name: one to four words, no ``?``/``!``."""
    return 0 < len(cell_words(cell)) <= 4 and not re.search(r"[?!]", cell)


def names_column(cell: str, words: frozenset[str]) -> bool:
    """Whether ``cell`` reads like a column name: :func:`short`, and one of ``words`` among its words."""
    return short(cell) and any(w in words for w in cell_words(cell))


def header_columns(
    cells: list[str], text_names: tuple[str, ...] = (), label_names: tuple[str, ...] = ()
) -> tuple[int | None, int | None]:
    """Indices of the cells naming the text and the label column (exact names first: a format's own
    ``text_names``/``label_names``, then :data:`TEXT_NAMES`/:data:`LABEL_NAMES`), None where none does."""
    exact = [c.strip().lower() for c in cells]

    def find(names: tuple[str, ...], words: frozenset[str], taken: int | None) -> int | None:
        for name in names:
            if name in exact and exact.index(name) != taken:
                return exact.index(name)
        return next((i for i, c in enumerate(cells) if i != taken and names_column(c, words)), None)

    text = find((*text_names, *TEXT_NAMES), TEXT_WORDS, None)
    return text, find((*label_names, *LABEL_NAMES), LABEL_WORDS, text)


def is_header(table: list[tuple[int, list[str]]], label_index: int | None) -> bool:
    """Whether the first row of ``table`` is a header, by the rule in the module docstring.

    ``label_index`` is the label column when no cell names one (None: the table has no label column).
    """
    cells = table[0][1]
    text, label = header_columns(cells)
    exact = {c.strip().lower() for c in cells}
    if exact & set(TEXT_NAMES) and (label_index is None or exact & set(LABEL_NAMES)):
        return True
    index = label if label is not None else label_index
    if index is None or index >= len(cells):
        return False
    others = {row[index].strip() for _, row in table[1:] if len(row) > index}
    if cells[index].strip() in others:
        return False
    if text is not None and label is not None:
        return True
    text_index = text if text is not None else (1 if index == 0 else 0)
    if text_index >= len(cells):  # one column: no text cell beside the label, so no header to read
        return False
    text_cell = cells[text_index]
    return bool(exact & {*TEXT_NAMES, *LABEL_NAMES}) and short(text_cell) and short(cells[index])


def maybe_header(table: list[tuple[int, list[str]]], label_index: int) -> bool:
    """A first row read as data that may be a header: its label is the table's only one-example class."""
    if len(table) < 5 or len(table[0][1]) <= label_index:
        return False
    others = Counter(row[label_index].strip() for _, row in table[1:] if len(row) > label_index)
    return bool(others) and table[0][1][label_index].strip() not in others and min(others.values()) >= 2


def _show(cells: list[str]) -> str:
    return " | ".join(repr(c.strip()) for c in cells)


def table_columns(
    path: Path,
    table: list[tuple[int, list[str]]],
    text_column: str | None = None,
    label_column: str | None = None,
    *,
    has_label: bool = True,
    text_names: tuple[str, ...] = (),
    label_names: tuple[str, ...] = (),
    options: tuple[str, str] = ("text-column", "label-column"),
) -> tuple[list[str] | None, int, int | None]:
    """``(header row or None, text column, label column)`` of a non-empty table, 0-based: the one column rule
    of CSV/TSV files and of the brackets format's tables.

    Columns given by 1-based number or header name (any case) win; a column given by number moves the other
    one's default (``--label-column 1``: text in column 2); otherwise the header's names (the module
    docstring's rule), else text in column 1 and the label in column 2. ``has_label`` False: the table has no
    label column (a fixed intent), so the label is None. ``text_names``/``label_names``: a format's own
    column names (the brackets format's ``annot_utt``), read before the generic ones; a first row holding one
    exactly is a header. ``options``: the two options' names, for the one-line errors.
    """
    if not has_label:
        label_column = None
    for what, given in zip(options, (text_column, label_column), strict=True):
        if given is not None and given.isdigit() and int(given) < 1:  # 0 would index column -1, the last
            raise ConfigError(f"--{what} {given!r}: columns are numbered from 1")
    named = [c for c in (text_column, label_column) if c is not None and not c.isdigit()]
    first = table[0][1]
    cells = {x.strip().lower() for x in first}
    if named:
        header = first if all(c.strip().lower() in cells for c in named) else None
        if header is None:
            raise ConfigError(f"{path}: no header row with the columns {text_column!r}/{label_column!r}")
    else:
        given_label = int(label_column) - 1 if label_column is not None else (1 if has_label else None)
        own = cells & {n.lower() for n in (*text_names, *label_names)}
        header = first if own or is_header(table, given_label) else None
    found_text, found_label = (
        header_columns(header, text_names, label_names) if header is not None else (None, None)
    )
    if text_column is not None and text_column.isdigit():
        found_text = int(text_column) - 1
    if label_column is not None and label_column.isdigit():
        found_label = int(label_column) - 1
    if found_text is None:
        found_text = 1 if found_label == 0 else 0
    if found_label is None:
        found_label = 0 if found_text == 1 else 1
    t = column_index(header, text_column, (), found_text, options[0])
    lab = column_index(header, label_column, (), found_label, options[1]) if has_label else None
    return header, t, lab


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
    header, t, lab = table_columns(path, table, text_column, label_column)
    first = table[0][1]
    if header is not None:
        shown(notes, "header rows (not read as examples)", f"{path}:{table[0][0]}: {_show(header)}")
    elif maybe_header(table, lab):
        shown(
            notes,
            "first rows read as examples that may be headers",
            f"{path}:{table[0][0]}: {_show(first)} (its label is the only one-example class; if it is a header, "
            f"say so with --label-column {first[lab].strip()!r})",
            level="warning",
        )
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
    return records


def read(path: Path, notes: Counter, **options) -> list[Record]:
    """Records of a CSV/TSV file, or of every ``.csv``/``.tsv`` file under a folder."""
    return [r for f in files_in(path, (".csv", ".tsv")) for r in read_file(f, notes, **options)]
