"""Readers for the three input formats, each turning a split into a list of :class:`Example`.

Formats are detected from what is in ``data_dir``:

* ``jointbert``: ``{train,dev,test}/{seq.in,seq.out,label}`` (ATIS/SNIPS as JointBERT ships them);
* ``tsv``: ``{train,dev,test}.tsv`` with ``text<TAB>label`` lines (intent only, no slots);
* ``jsonl``: ``{train,dev,test}.jsonl`` with ``{"words": [...], "tags": [...], "intent": "..."}`` lines.

Every problem is reported as ``file:line: what is wrong (hint)`` so a user can fix the data without
reading a traceback.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

SPLITS = ("train", "dev", "test")
FORMATS = ("jointbert", "tsv", "jsonl")
MAX_REPORTED = 5


class DataFormatError(ValueError):
    """Bad input data; the message names the file and line."""


@dataclass(frozen=True)
class Example:
    """One utterance: its words, one BIO tag per word (``None`` for intent-only data) and its intent."""

    words: tuple[str, ...]
    tags: tuple[str, ...] | None
    intent: str


def detect_format(data_dir: str | Path) -> str:
    """Which format ``data_dir`` holds, judged by its training split."""
    root = Path(data_dir)
    if not root.is_dir():
        raise DataFormatError(
            f"{root}: data directory not found (set --data.data_dir to a folder with the data)"
        )
    if (root / "train" / "seq.in").is_file():
        return "jointbert"
    if (root / "train.jsonl").is_file():
        return "jsonl"
    if (root / "train.tsv").is_file():
        return "tsv"
    raise DataFormatError(
        f"{root}: no known data format found; looked for train/seq.in (+ seq.out, label) [jointbert], "
        "train.jsonl [jsonl] and train.tsv [tsv]"
    )


def split_path(data_dir: str | Path, split: str, fmt: str) -> Path:
    """The file (jsonl/tsv) or folder (jointbert) that holds ``split``."""
    root = Path(data_dir)
    return root / split if fmt == "jointbert" else root / f"{split}.{fmt}"


def has_split(data_dir: str | Path, split: str, fmt: str) -> bool:
    return split_path(data_dir, split, fmt).exists()


def read_split(data_dir: str | Path, split: str, fmt: str | None = None) -> list[Example]:
    """Read one split of ``data_dir`` (format detected when ``fmt`` is None)."""
    fmt = fmt or detect_format(data_dir)
    path = split_path(data_dir, split, fmt)
    if fmt == "jointbert":
        return read_jointbert(path)
    if fmt == "jsonl":
        return read_jsonl(path)
    if fmt == "tsv":
        return read_tsv(path)
    raise DataFormatError(f"unknown data format {fmt!r}; expected one of {FORMATS}")


def _read_lines(path: Path) -> list[str]:
    """Lines of a UTF-8 text file; a BOM and Windows line endings are accepted."""
    if not path.is_file():
        raise DataFormatError(f"{path}: file not found")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DataFormatError(
            f"{path}:{line}: bytes that are not UTF-8 (re-save the file as UTF-8)"
        ) from None
    lines = text.splitlines()
    if not lines or all(not line.strip() for line in lines):
        raise DataFormatError(f"{path}: file is empty")
    # A trailing blank line is common; blank lines in the middle are reported by the readers.
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def _check_tag(tag: str) -> bool:
    return tag == "O" or (len(tag) > 2 and tag[1] == "-" and tag[0] in "BI")


class _Problems:
    """Collects up to a few problems, then raises one error that reports the first few and the total."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.count = 0

    def add(self, message: str) -> None:
        self.count += 1
        if len(self.items) < MAX_REPORTED:
            self.items.append(message)

    def raise_if_any(self) -> None:
        if self.count:
            more = f" (and {self.count - len(self.items)} more)" if self.count > len(self.items) else ""
            head = (
                self.items[0]
                if self.count == 1
                else f"{self.count} problems; first: " + "; ".join(self.items)
            )
            raise DataFormatError(head + more)


def _check_example(words: list[str], tags: list[str] | None, where: str, problems: _Problems) -> None:
    if not words:
        problems.add(f"{where}: empty utterance (remove the line or give it words)")
        return
    if tags is None:
        return
    if len(words) != len(tags):
        problems.add(f"{where}: {len(words)} words but {len(tags)} tags (give exactly one BIO tag per word)")
        return
    for tag in tags:
        if not _check_tag(tag):
            problems.add(f"{where}: malformed tag {tag!r} (tags are O, B-type or I-type)")
            return


def read_jointbert(folder: Path) -> list[Example]:
    """``seq.in`` (words), ``seq.out`` (tags) and ``label`` (intent), line by line."""
    if not folder.is_dir():
        raise DataFormatError(f"{folder}: split folder not found (expected seq.in, seq.out and label inside)")
    words_l = _read_lines(folder / "seq.in")
    tags_l = _read_lines(folder / "seq.out")
    intents = _read_lines(folder / "label")
    if not (len(words_l) == len(tags_l) == len(intents)):
        raise DataFormatError(
            f"{folder}: line counts differ: seq.in {len(words_l)}, seq.out {len(tags_l)}, label {len(intents)} "
            "(each line of the three files is one utterance)"
        )
    problems = _Problems()
    examples = []
    for i, (w, t, intent) in enumerate(zip(words_l, tags_l, intents, strict=True), start=1):
        words, tags = w.split(), t.split()
        _check_example(
            words, tags, f"{folder / 'seq.out'}:{i}" if words else f"{folder / 'seq.in'}:{i}", problems
        )
        if not intent.strip():
            problems.add(f"{folder / 'label'}:{i}: empty intent label")
        examples.append(Example(tuple(words), tuple(tags), intent.strip()))
    problems.raise_if_any()
    return examples


def read_tsv(path: Path) -> list[Example]:
    """``text<TAB>label`` lines; words are the whitespace-separated tokens of ``text``."""
    problems = _Problems()
    examples = []
    for i, line in enumerate(_read_lines(path), start=1):
        parts = line.split("\t")
        if len(parts) != 2:
            problems.add(f"{path}:{i}: expected exactly one tab (text<TAB>label), found {len(parts) - 1}")
            continue
        words = parts[0].split()
        _check_example(words, None, f"{path}:{i}", problems)
        if not parts[1].strip():
            problems.add(f"{path}:{i}: empty intent label")
        examples.append(Example(tuple(words), None, parts[1].strip()))
    problems.raise_if_any()
    return examples


def read_jsonl(path: Path) -> list[Example]:
    """One JSON object per line with ``words`` (list), ``intent`` (str) and optionally ``tags`` (list)."""
    problems = _Problems()
    examples = []
    for i, line in enumerate(_read_lines(path), start=1):
        where = f"{path}:{i}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            problems.add(f"{where}: invalid JSON ({err.msg})")
            continue
        if not isinstance(obj, dict) or "words" not in obj or "intent" not in obj:
            problems.add(f'{where}: expected an object with "words" and "intent" (and "tags")')
            continue
        words, tags, intent = obj["words"], obj.get("tags"), obj["intent"]
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            problems.add(f'{where}: "words" must be a list of strings')
            continue
        if tags is not None and (not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)):
            problems.add(f'{where}: "tags" must be a list of strings')
            continue
        if not isinstance(intent, str) or not intent.strip():
            problems.add(f'{where}: "intent" must be a non-empty string')
            continue
        _check_example(words, tags, where, problems)
        examples.append(Example(tuple(words), None if tags is None else tuple(tags), intent.strip()))
    problems.raise_if_any()
    if examples and len({ex.tags is None for ex in examples}) > 1:
        raise DataFormatError(
            f'{path}: some lines have "tags" and some do not (give tags on every line or none)'
        )
    return examples


def count_orphan_inside(examples: list[Example]) -> int:
    """How many ``I-x`` tags do not follow ``B-x``/``I-x``: accepted (real data has them) but worth reporting."""
    n = 0
    for ex in examples:
        prev = "O"
        for tag in ex.tags or ():
            if tag.startswith("I-") and prev[2:] != tag[2:]:
                n += 1
            prev = tag
    return n
