"""Readers for the three input formats, each turning a split into a list of :class:`Example`.

Formats are detected from what is in ``data_dir``:

* ``jointbert``: ``{train,dev,test}/{seq.in,seq.out,label}`` (ATIS/SNIPS as JointBERT ships them);
* ``tsv``: ``{train,dev,test}.tsv`` with ``text<TAB>label`` lines (intent only, no slots);
* ``jsonl``: ``{train,dev,test}.jsonl`` with ``{"words": [...], "tags": [...], "intent": "..."}`` lines.

Every problem is reported as ``file:line: what is wrong (hint)`` so a user can fix the data without
reading a traceback; when several lines are bad, the first few are shown with the total. Accepted on
purpose: a UTF-8 byte-order mark, Windows (CRLF) or old Mac (CR) line endings, trailing blank lines, and
``I-x`` tags that follow neither ``B-x`` nor ``I-x`` (real data has them; :func:`orphan_inside` finds them
so they can be reported).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from chatft.core.errors import DataFormatError
from chatft.core.tags import is_bio_tag, orphan_positions

SPLITS = ("train", "dev", "test")
FORMATS = ("jointbert", "tsv", "jsonl")
MAX_REPORTED = 5
#: Below this many utterances a split is too small to judge its label column (tiny test and demo data).
MIN_FOR_LABEL_CHECK = 20
#: Words a header row puts in the label column or the text column.
HEADER_LABELS = frozenset(
    {"label", "labels", "intent", "intents", "class", "category", "target", "y", "sentiment"}
)
HEADER_TEXTS = frozenset(
    {"text", "texts", "sentence", "utterance", "query", "input", "x", "review", "question"}
)


@dataclass(frozen=True)
class Example:
    """One utterance: its words, one BIO tag per word (``None`` for intent-only data) and its intent."""

    words: tuple[str, ...]
    tags: tuple[str, ...] | None
    intent: str


def not_a_folder_message(path: Path) -> str:
    """The one line for a data file where a data folder was expected: the ``data convert`` command that makes
    the folder, with the file's own path (every command that takes a folder says this same line)."""
    suffix = path.suffix.lower()
    fmt = "csv" if suffix in (".csv", ".tsv") else "FORMAT"
    hint = "" if fmt == "csv" else " (FORMAT: brackets, spans-jsonl, csv or clinc; see data convert --help)"
    # The folder is named after the file; a file without a suffix would name the file itself.
    output = path.parent / (path.stem if path.suffix else f"{path.name}-data")
    return (
        f"{path}: a file, not a data folder; convert it first: python -m chatft data convert --from {fmt} "
        f"--input {path} --output {output}{hint}"
    )


def detect_format(data_dir: str | Path, option: str = "--data.data_dir") -> str:
    """Which format ``data_dir`` holds, judged by its training split.

    ``option`` is how the caller's user gave the folder (``fit``'s ``--data.data_dir``, ``data augment``'s
    ``--input``, the ``data_dir`` argument of ``data stats``), so that the error tells them what to change.
    """
    root = Path(data_dir)
    if root.is_file():
        raise DataFormatError(not_a_folder_message(root))
    if not root.is_dir():
        raise DataFormatError(f"{root}: data directory not found (set {option} to a folder with the data)")
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


def missing_split_error(data_dir: str | Path, split: str, fmt: str, why: str = "") -> DataFormatError:
    """The error for a split that is needed but absent: it says what was looked for (and ``why``)."""
    path = split_path(data_dir, split, fmt)
    wanted = f"{path}/{{seq.in,seq.out,label}}" if fmt == "jointbert" else str(path)
    return DataFormatError(f"{path}: split {split!r} not found (looked for {wanted}, format {fmt}){why}")


def read_split(data_dir: str | Path, split: str, fmt: str | None = None) -> list[Example]:
    """Read one split of ``data_dir`` (format detected when ``fmt`` is None)."""
    fmt = fmt or detect_format(data_dir)
    path = split_path(data_dir, split, fmt)
    if fmt == "jointbert":
        examples = read_jointbert(path)
    elif fmt == "jsonl":
        examples = read_jsonl(path)
    elif fmt == "tsv":
        examples = read_tsv(path)
    else:
        raise DataFormatError(f"unknown data format {fmt!r}; expected one of {FORMATS}")
    check_intent_column(examples, path / "label" if fmt == "jointbert" else path, fmt, split)
    return examples


def check_intent_column(examples: list[Example], path: str | Path, fmt: str, split: str = "train") -> None:
    """Refuse a label column that cannot be one: a header row, or labels that are nearly all unique.

    Both read without any format error and then train nonsense silently: a header ``text<TAB>label`` adds a
    class named ``label``; swapped TSV columns (``1<TAB>I love this movie.``) make every sentence a class,
    and the run ends with a sentence accuracy of 0. The uniqueness check needs
    :data:`MIN_FOR_LABEL_CHECK` utterances, so tiny hand-written data (tests, a first try) never trips it;
    with more classes than half the utterances, most classes have one example and nothing can be learnt.
    A dev or test split may legitimately hold one utterance per intent, so there the labels must also be
    nearly all unique (90 %) and mostly several words long, as sentences are and intent names are not.
    """
    if fmt == "tsv" and len(examples) > 1:
        first = examples[0]
        text = " ".join(first.words)
        looks_like_header = first.intent.lower() in HEADER_LABELS or text.lower() in HEADER_TEXTS
        if looks_like_header and all(ex.intent != first.intent for ex in examples[1:]):
            raise DataFormatError(
                f"{path}:1: looks like a header row ({text!r}, label {first.intent!r} never occurs again): "
                "remove it (every line is text<TAB>label, no header)"
            )
    n = len(examples)
    classes = len({ex.intent for ex in examples})
    if split == "train":
        suspicious = classes > n / 2
    else:
        wordy = sum(len(ex.intent.split()) > 1 for ex in examples)
        suspicious = classes >= 0.9 * n and wordy > n / 2
    if n >= MIN_FOR_LABEL_CHECK and suspicious:
        what = (
            "are the columns swapped? expected text<TAB>label"
            if fmt == "tsv"
            else "is the intent column holding the text? every class needs several examples"
        )
        raise DataFormatError(
            f"{path}: labels are nearly all unique ({classes} classes in {n} utterances): {what}"
        )


def decode_utf8(raw: bytes, path: str | Path) -> str:
    """UTF-8 text of a file's bytes (a BOM is dropped); bad bytes raise ``file:line`` with the byte."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DataFormatError(
            f"{path}:{line}: bytes that are not UTF-8 (byte 0x{raw[err.start]:02x}; re-save the file as UTF-8)"
        ) from None


def _read_lines(path: Path) -> list[str]:
    """Lines of a UTF-8 text file; a BOM and CRLF/CR line endings are accepted.

    Lines are split on line endings only, not with ``str.splitlines``, which also splits on U+0085,
    U+2028 and other characters that can occur inside a word and would shift every later line.
    """
    if not path.is_file():
        what = "is a folder, expected a file" if path.is_dir() else "file not found"
        raise DataFormatError(f"{path}: {what} (layouts: docs/guides/your-data.md)")
    text = decode_utf8(path.read_bytes(), path)
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if all(not line.strip() for line in lines):
        raise DataFormatError(f"{path}: file is empty (expected one utterance per line)")
    # A trailing blank line is common; blank lines in the middle are reported by the readers.
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


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
    for k, tag in enumerate(tags, start=1):
        if not is_bio_tag(tag):
            problems.add(
                f"{where}: malformed tag {tag!r} (word {k}; tags are O, B-type or I-type: convert IOBES to BIO)"
            )
            return


def read_jointbert(folder: Path) -> list[Example]:
    """``seq.in`` (words), ``seq.out`` (tags) and ``label`` (intent), line by line."""
    if not folder.is_dir():
        raise DataFormatError(f"{folder}: split folder not found (expected seq.in, seq.out and label inside)")
    words_l = _read_lines(folder / "seq.in")
    tags_l = _read_lines(folder / "seq.out")
    intents = _read_lines(folder / "label")
    counts = {"seq.in": len(words_l), "seq.out": len(tags_l), "label": len(intents)}
    if len(set(counts.values())) > 1:
        short = min(counts, key=counts.__getitem__)
        raise DataFormatError(
            f"{folder / short}:{counts[short] + 1}: line counts differ: seq.in {counts['seq.in']}, "
            f"seq.out {counts['seq.out']}, label {counts['label']} lines; {short} ends first "
            "(line k of the three files is utterance k: add the missing lines or remove the extra ones)"
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
        if not line.strip():
            problems.add(f"{path}:{i}: blank line (remove it: every line is text<TAB>label)")
            continue
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
        if not line.strip():
            problems.add(f"{where}: blank line (remove it: every line is one JSON object)")
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            problems.add(f"{where}: invalid JSON ({err.msg} at column {err.colno})")
            continue
        if not isinstance(obj, dict):
            problems.add(
                f'{where}: expected a JSON object like {{"words": [...], "tags": [...], "intent": "..."}}'
            )
            continue
        missing = [f'"{key}"' for key in ("words", "intent") if key not in obj]
        if missing:
            problems.add(f'{where}: missing key {" and ".join(missing)} ("tags" is optional)')
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
        first = next(i for i, ex in enumerate(examples) if (ex.tags is None) != (examples[0].tags is None))
        has = "has no" if examples[first].tags is None else "has"
        raise DataFormatError(
            f'{path}:{first + 1}: this line {has} "tags" but line 1 does not agree '
            "(give tags on every line or on none)"
        )
    return examples


def orphan_inside(examples: list[Example]) -> list[tuple[int, int]]:
    """``(example, word)`` positions of ``I-x`` tags that follow neither ``B-x`` nor ``I-x``.

    Accepted but reported (see :func:`chatft.core.tags.orphan_positions`).
    """
    return [(e, w) for e, ex in enumerate(examples) for w in orphan_positions(ex.tags or ())]


def check_same_kind(
    data_dir: str | Path, split: str, fmt: str, examples: list[Example], has_slots: bool
) -> None:
    """Slot tags in every split or in none (a model trained with slots needs gold tags to score)."""
    for i, ex in enumerate(examples):
        if (ex.tags is not None) != has_slots:
            where = example_location(data_dir, split, fmt, i)
            train_has = "has" if has_slots else "has no"
            raise DataFormatError(
                f"{where}: this split {'has no' if has_slots else 'has'} slot tags but train {train_has} "
                "(give tags in every split or in none)"
            )


def orphan_warning(data_dir: str | Path, split: str, fmt: str, examples: list[Example]) -> str | None:
    """The warning for ``I-x`` tags that follow neither ``B-x`` nor ``I-x`` in a split, or None."""
    orphans = orphan_inside(examples)
    if not orphans:
        return None
    e, w = orphans[0]
    return (
        f"{split}: {len(orphans)} I- tags follow neither B- nor I- of their type (first: "
        f"{example_location(data_dir, split, fmt, e)}, word {w + 1}); accepted and scored as seqeval does "
        "(as the start of an entity)"
    )


def example_location(data_dir: str | Path, split: str, fmt: str, example: int) -> str:
    """``file:line`` of the ``example``-th utterance (0-based) of a split that read without errors."""
    path = split_path(data_dir, split, fmt)
    return f"{path / 'seq.out' if fmt == 'jointbert' else path}:{example + 1}"
