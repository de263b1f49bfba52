"""What every reader returns (:class:`Record`: text, character spans, intent) and how it becomes an Example.

Annotation tools and Rasa mark slots as character spans; chatft trains on words with BIO tags. The words
come from :func:`chatft.core.text.split_words`, the splitter ``predict`` applies to raw text, so training
and inference see the same words. A span that does not start and end on word boundaries (``tomorrow``
inside ``tomorrow's``) is *snapped* to the words it overlaps, unless ``strict`` makes that an error.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from chatft.core.errors import DataFormatError
from chatft.core.formats import Example
from chatft.core.text import split_words

#: How many snapped or skipped spans a warning shows (with file and record) before it only counts.
SHOWN = 3


@dataclass(frozen=True)
class Span:
    """Characters ``text[start:end]`` are a slot of ``type``; ``value``: a synonym's value (Rasa's
    ``[text](type:value)``), kept in ``entities.json``, None when the text is the value."""

    start: int
    end: int
    type: str
    value: str | None = None


@dataclass(frozen=True)
class Record:
    """One utterance as a reader found it.

    ``spans`` is None for intent-only formats (csv, clinc); ``where`` is ``file:line`` or ``file: record N``
    for messages; ``split`` is set by formats that carry their own splits (clinc), else None.
    """

    text: str
    intent: str
    spans: tuple[Span, ...] | None
    where: str
    split: str | None = None


@dataclass
class SpanReport:
    """Counts of what happened to spans and texts during conversion, with the first few cases shown."""

    kept: int = 0
    snapped: int = 0
    skipped: Counter = field(default_factory=Counter)
    empty_texts: int = 0
    examples: dict[str, list[str]] = field(default_factory=dict)

    def note(self, kind: str, message: str) -> None:
        shown = self.examples.setdefault(kind, [])
        if len(shown) < SHOWN:
            shown.append(message)


def _trim(text: str, span: Span) -> Span:
    """The span without leading/trailing whitespace (annotators often select a space with the word)."""
    start, end = span.start, span.end
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return Span(start, end, span.type)


#: The report kind of a span dropped because a longer one covers or overlaps it.
NESTED = "nested or overlapping: the longer span kept"


def check_spans(record: Record, report: SpanReport | None = None, strict: bool = True) -> list[Span]:
    """The record's spans sorted by start; spans outside the text raise one-line errors.

    Nested or overlapping spans (a ``name`` that contains a ``category``) raise one line when ``strict``;
    otherwise the longer of two is kept (the earlier one on a tie) and the other is dropped and counted in
    ``report`` with its place.
    """
    spans = sorted(record.spans or (), key=lambda s: (s.start, s.end))
    n = len(record.text)
    for s in spans:
        if not (isinstance(s.start, int) and isinstance(s.end, int)) or not 0 <= s.start < s.end <= n:
            raise DataFormatError(
                f"{record.where}: span {s.start}-{s.end} ({s.type}) is outside the text "
                f"(length {n}; start must be < end and end <= length)"
            )
        if not s.type:
            raise DataFormatError(f"{record.where}: span {s.start}-{s.end} has an empty slot type")
    kept: list[Span] = []
    for b in sorted(spans, key=lambda s: (-(s.end - s.start), s.start)):
        a = next((k for k in kept if b.start < k.end and k.start < b.end), None)
        if a is None:
            kept.append(b)
            continue
        a, b = sorted((a, b), key=lambda s: (s.start, s.end))
        if strict or report is None:
            raise DataFormatError(
                f"{record.where}: spans overlap: {a.start}-{a.end} {record.text[a.start : a.end]!r} ({a.type}) "
                f"and {b.start}-{b.end} {record.text[b.start : b.end]!r} ({b.type}) (one slot per word: "
                "remove one of them, or drop --strict-spans to keep the longer one)"
            )
        dropped = b if a in kept else a
        report.skipped[NESTED] += 1
        report.note(NESTED, f"{record.where}: {record.text[dropped.start : dropped.end]!r} ({dropped.type})")
    return sorted(kept, key=lambda s: (s.start, s.end))


def to_example(record: Record, report: SpanReport, strict: bool = False) -> Example | None:
    """The record as words with BIO tags (None when its text is empty after stripping: counted, dropped)."""
    if not record.text.strip():
        report.empty_texts += 1
        return None
    if not record.intent.strip():
        raise DataFormatError(f"{record.where}: empty intent label")
    words = split_words(record.text)
    if record.spans is None:
        return Example(tuple(w for w, _, _ in words), None, record.intent.strip())
    tags = ["O"] * len(words)
    for span in check_spans(record, report, strict):
        trimmed = _trim(record.text, span)
        if trimmed.start == trimmed.end:
            report.skipped["only whitespace"] += 1
            report.note("only whitespace", f"{record.where}: {span.start}-{span.end} ({span.type})")
            continue
        hit = [i for i, (_, s, e) in enumerate(words) if s < trimmed.end and e > trimmed.start]
        first, last = hit[0], hit[-1]
        value = record.text[trimmed.start : trimmed.end]
        exact = words[first][1] == trimmed.start and words[last][2] == trimmed.end
        covered = record.text[words[first][1] : words[last][2]]
        if not exact and strict:
            raise DataFormatError(
                f"{record.where}: span {span.start}-{span.end} {value!r} ({span.type}) does not fall on "
                f"word boundaries (the words are {covered!r}); fix the span, or drop --strict-spans to "
                "snap it to the words it overlaps"
            )
        if any(tags[i] != "O" for i in hit):
            report.skipped["shares a word with another span"] += 1
            report.note("shares a word with another span", f"{record.where}: {value!r} ({span.type})")
            continue
        if not exact:
            report.snapped += 1
            report.note("snapped", f"{record.where}: {value!r} -> {covered!r} ({span.type})")
        tags[first] = f"B-{span.type}"
        for i in hit[1:]:
            tags[i] = f"I-{span.type}"
        report.kept += 1
    return Example(tuple(w for w, _, _ in words), tuple(tags), record.intent.strip())
