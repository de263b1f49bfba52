"""Column (CoNLL-style) files: one token and its tag per line, the tag in the last column, a blank line between
utterances.

Tags are BIO or BIOES (``S-x`` a one-token slot, ``E-x`` its last token; a file holding any ``S-``/``E-`` tag
is read as BIOES), and become character spans of the utterance's text, so the words are the ones
:func:`chatft.core.text.split_words` makes at prediction time. A tag sequence the scheme forbids (``I-x``
after ``O``, a BIOES ``B-x`` not closed by ``E-x``) is a one-line error naming the file and line.

The token is the first column, or the second when there are three or more columns and the first is a row
number (CoNLL-U, xSID). The intent of each utterance comes from, in this order: a comment line before it
(``# intent: X`` or ``# intent = X``, as xSID writes it; other ``#`` lines are skipped), the parallel file
``<file>.intent`` (one intent per line, in utterance order: CAIS's ``ch.train`` + ``ch.train.intent``), or
``--intent``.

Scripts written without spaces (Chinese, Japanese) are annotated one character per row, Latin letters and
digits too (``t B-singer``, ``f I-singer``, ..., ``s E-singer`` for "tfboys"). Such a run of one-character
rows is rejoined into the word ``split_words`` makes of the text (``tfboys``), which keeps the run's slot;
the summary counts the rejoined words.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from chatft.core.errors import DataFormatError
from chatft.core.tags import split_tag
from chatft.core.text import is_cjk
from chatft.data_tools.notes import shown
from chatft.data_tools.records import Record, Span
from chatft.data_tools.sources import read_text

#: The parallel intent file of ``FILE`` is ``FILE`` + this suffix.
INTENT_SUFFIX = ".intent"
_INTENT_COMMENT = re.compile(r"#\s*intent\s*[:=]\s*(.*\S)\s*$")
_REJOINED = "words rejoined from one-character Latin/digit rows"


@dataclass(frozen=True)
class Row:
    """One token row: the token, its tag and the file line it came from."""

    token: str
    tag: str
    line: int


def files_of(path: Path) -> list[Path]:
    """``path``, or the column files of the folder ``path`` (every file but the ``.intent`` ones), by name."""
    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix != INTENT_SUFFIX)
        if not found:
            raise DataFormatError(f"{path}: folder has no column files")
        return found
    if not path.exists():
        raise DataFormatError(f"{path}: file not found")
    return [path]


def parse_rows(path: Path, text: str) -> list[tuple[int, str | None, list[Row]]]:
    """``(first line, comment intent or None, rows)`` per utterance of the file's ``text``."""
    out: list[tuple[int, str | None, list[Row]]] = []
    rows: list[Row] = []
    intent: str | None = None
    start = 0
    for n, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip()
        if not line or line.startswith("-DOCSTART-"):
            if rows:
                out.append((start, intent, rows))
            rows, intent = [], None
            continue
        if line.startswith("#") and not rows:
            m = _INTENT_COMMENT.match(line)
            if m:
                intent, start = m.group(1), n
            continue
        cols = line.split()
        if len(cols) == 1 and raw[:1].isspace():
            cols = [" ", cols[0]]  # a space written as a row (CAIS: "love story" letter by letter)
        if len(cols) < 2:
            raise DataFormatError(f"{path}:{n}: expected a token and a tag, got {line!r}")
        token = cols[1] if len(cols) >= 3 and cols[0].isdigit() else cols[0]
        if not rows and intent is None:
            start = n
        rows.append(Row(token, cols[-1], n))
    if rows:
        out.append((start, intent, rows))
    return out


def is_bioes(tags: list[str]) -> bool:
    """True when the tags use BIOES (any ``S-``/``E-`` tag)."""
    return any(t[:2] in ("S-", "E-") for t in tags)


def to_bio(rows: list[Row], bioes: bool, path: Path) -> list[str]:
    """The rows' tags in BIO (BIOES ``S-x`` -> ``B-x``, ``E-x`` -> ``I-x``); a sequence the scheme forbids is a
    one-line error at its line."""
    out: list[str] = []
    prev_prefix, prev_type = "O", ""
    allowed = "BIESO" if bioes else "BIO"
    for i, row in enumerate(rows):
        tag = row.tag
        prefix, typ = ("O", "") if tag == "O" else split_tag(tag)
        if prefix not in allowed or (prefix != "O" and not typ):
            raise DataFormatError(
                f"{path}:{row.line}: tag {tag!r} is not {'BIOES' if bioes else 'BIO'} "
                f"({'/'.join(allowed)}-type or O)"
            )
        inside = prefix in ("I", "E")
        if inside and not (prev_prefix in ("B", "I") and prev_type == typ):
            before = rows[i - 1].tag if i else "the utterance start"
            raise DataFormatError(
                f"{path}:{row.line}: tag {tag!r} after {before!r}: a slot must start with B-{typ}"
            )
        if bioes and prev_prefix in ("B", "I") and not (inside and prev_type == typ):
            raise DataFormatError(
                f"{path}:{row.line}: tag {tag!r} after {rows[i - 1].tag!r}: in BIOES a slot ends with "
                f"E-{prev_type} (S-{prev_type} for one token)"
            )
        out.append({"S": "B", "E": "I"}.get(prefix, prefix) + (f"-{typ}" if typ else ""))
        prev_prefix, prev_type = prefix, typ
    if bioes and prev_prefix in ("B", "I"):
        raise DataFormatError(
            f"{path}:{rows[-1].line}: the utterance ends inside a slot ({rows[-1].tag!r}): in BIOES a slot "
            f"ends with E-{prev_type}"
        )
    return out


def _runs_letter(token: str) -> bool:
    return len(token) == 1 and token.isalnum() and not is_cjk(token)


def layout(tokens: list[str]) -> tuple[str, list[tuple[int, int]], list[str]]:
    """The utterance's text, each token's ``(start, end)`` in it, and the words rejoined from one-character rows.

    Tokens are joined by a space, except in an utterance with Han/Kana characters: there no space goes next to
    such a character (the script has none) nor inside a run of two or more one-character letter/digit rows,
    which ``split_words`` then reads as one word.
    """
    cjk = any(is_cjk(c) for t in tokens for c in t)
    single = [cjk and _runs_letter(t) for t in tokens]
    parts: list[str] = []
    offsets: list[tuple[int, int]] = []
    pos, run = 0, 0
    rejoined: list[str] = []
    for i, tok in enumerate(tokens):
        if i:
            glued = (
                tok.isspace()
                or tokens[i - 1].isspace()
                or cjk
                and (is_cjk(tok[0]) or is_cjk(tokens[i - 1][-1]) or (single[i] and single[i - 1]))
            )
            if not glued:
                parts.append(" ")
                pos += 1
        offsets.append((pos, pos + len(tok)))
        parts.append(tok)
        pos += len(tok)
        run = run + 1 if single[i] else 0
        if run >= 2 and not (i + 1 < len(tokens) and single[i + 1]):
            rejoined.append(" ".join(tokens[i - run + 1 : i + 1]))
    return "".join(parts), offsets, rejoined


def spans_of(tags: list[str], offsets: list[tuple[int, int]]) -> tuple[Span, ...]:
    """Character spans of the BIO ``tags`` over tokens at ``offsets``."""
    spans, open_ = [], None
    for i, tag in enumerate([*tags, "O"]):
        if open_ is not None and not tag.startswith("I-"):
            spans.append(Span(offsets[open_[0]][0], offsets[i - 1][1], open_[1]))
            open_ = None
        if tag.startswith("B-"):
            open_ = (i, tag[2:])
    return tuple(spans)


def _parallel_intents(path: Path) -> list[str] | None:
    side = path.with_name(path.name + INTENT_SUFFIX)
    if not side.is_file():
        return None
    lines = read_text(side).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.strip() for line in lines]


def read(path: Path, notes: Counter, intent: str | None = None) -> list[Record]:
    """The utterances of the column file(s) at ``path`` as records (``file:line`` of their first row)."""
    records: list[Record] = []
    for f in files_of(path):
        utterances = parse_rows(f, read_text(f))
        bioes = is_bioes([r.tag for _, _, rows in utterances for r in rows])
        side = _parallel_intents(f)
        if side is not None and len(side) != len(utterances):
            raise DataFormatError(
                f"{f}{INTENT_SUFFIX}: {len(side)} intents for {len(utterances)} utterances in {f} "
                "(one intent per line, in utterance order)"
            )
        for k, (line, comment, rows) in enumerate(utterances):
            where = f"{f}:{line}"
            label = comment or (side[k] if side is not None else None) or intent
            if not label:
                raise DataFormatError(
                    f"{where}: no intent for this utterance (add '# intent: X' before it, a parallel file "
                    f"{f.name}{INTENT_SUFFIX} with one intent per line, or --intent X)"
                )
            tags = to_bio(rows, bioes, f)
            text, offsets, rejoined = layout([r.token for r in rows])
            for letters in rejoined:
                shown(notes, _REJOINED, f"{where}: {letters!r} -> {letters.replace(' ', '')!r}")
            records.append(Record(text, label, spans_of(tags, offsets), where))
        if bioes:
            notes["files with BIOES tags (converted to BIO)"] += 1
    return records
