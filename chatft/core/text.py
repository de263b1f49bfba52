"""How raw text becomes words at inference time: :func:`split_words`, with character offsets.

Training data comes pre-split (``seq.in`` is space-separated words), so raw user text must be split the same
way. The rules, applied to each whitespace-separated chunk:

1. Opening quotes/brackets at the start of a chunk (``" “ « ( [ { ¿ ¡``) become words of their own.
2. Closing punctuation at the end of a chunk (``? ! , ; : " ” » ) ] }`` and ``…``) becomes words of its own,
   one character each; so does a trailing run of two or more dots (``...`` is one word).
3. A single trailing ``.`` becomes its own word, *unless* the chunk is an abbreviation: it has another ``.``
   inside (``u.s.``, ``a.m.``), it is a single letter (``j.``), or it is one of :data:`ABBREVIATIONS`
   (``st.``, ``dr.``, ``mr.``…). ATIS writes ``st. louis``.
4. Everything else stays inside the word: apostrophes (``i'd``, ``o'clock``, ``o'``), hyphens, ``$``, ``%``,
   digits with ``,`` ``:`` ``.`` inside (``1,000``, ``6:30``, ``7.5``).
5. Scripts written without spaces: a chunk that holds a Han ideograph, Hiragana or Katakana character is split
   into one word per such character (the convention of Chinese slot-filling and NER corpora, and what BERT's
   Chinese tokenizer does); inside it, a run of letters and digits of other scripts (ASCII or full-width:
   ``iPhone``, ``CA1234``, ``２０２４``, ``3.5``) is one word, and any other character (``，`` ``。`` ``？``)
   is a word of its own. Scripts that put spaces between words, Korean among them, follow rules 1-4.

Case is kept (the tokenizer lowercases when its model is uncased), so ``text[start:end] == word`` always.
ATIS-style text (lowercase, space-separated, no sentence punctuation) splits exactly as ``str.split()`` does;
the tests check this on the demo data and on ATIS when it is present.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["ABBREVIATIONS", "is_cjk", "join_words", "read_utterances", "split_words"]

_OPENERS = frozenset('"“«([{¿¡')
_CLOSERS = frozenset('?!,;:"”»)]}…')

#: Words that keep their trailing period (lowercase, without the period).
ABBREVIATIONS = frozenset(
    {"st", "mt", "ft", "dr", "mr", "mrs", "ms", "jr", "sr", "vs", "etc", "no", "ave", "blvd", "rd", "approx"}
)

_CHUNK = re.compile(r"\S+")

#: Han ideographs (unified, extensions A-F, compatibility), Hiragana, Katakana (with its phonetic extensions
#: and the half-width forms): one word per character.
_CJK = re.compile(
    "[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f\u3040-\u309f\u30a0-\u30ff"
    "\u31f0-\u31ff\uff66-\uff9f]"
)
#: Characters that stay inside a letter/digit run when they sit between two of its characters (``3.5``,
#: ``1,000``, ``6:30``, ``Wi-Fi``, ``don't``).
_JOINERS = frozenset(".,:'-")


def _is_abbreviation(core: str) -> bool:
    """``core`` is the chunk without its final period."""
    return "." in core or (len(core) == 1 and core.isalpha()) or core.lower() in ABBREVIATIONS


def _split_chunk(chunk: str, offset: int) -> list[tuple[str, int, int]]:
    lo, hi = 0, len(chunk)
    head: list[tuple[str, int, int]] = []
    tail: list[tuple[str, int, int]] = []
    while lo < hi and chunk[lo] in _OPENERS:
        head.append((chunk[lo], offset + lo, offset + lo + 1))
        lo += 1
    while lo < hi:
        if chunk[hi - 1] in _CLOSERS:
            tail.append((chunk[hi - 1], offset + hi - 1, offset + hi))
            hi -= 1
            continue
        if chunk[hi - 1] == ".":
            dots = hi
            while dots > lo and chunk[dots - 1] == ".":
                dots -= 1
            if hi - dots >= 2:  # an ellipsis "..." is one word
                tail.append((chunk[dots:hi], offset + dots, offset + hi))
                hi = dots
                continue
            if hi - 1 > lo and not _is_abbreviation(chunk[lo : hi - 1]):
                tail.append((".", offset + hi - 1, offset + hi))
                hi -= 1
                continue
        break
    middle = [(chunk[lo:hi], offset + lo, offset + hi)] if lo < hi else []
    return head + middle + tail[::-1]


def is_cjk(c: str) -> bool:
    """True for a Han ideograph, Hiragana or Katakana character: a word of its own (rule 5)."""
    return _CJK.match(c) is not None


def _is_run_char(c: str) -> bool:
    return c.isalnum() and not _CJK.match(c)


def _split_cjk_chunk(chunk: str, offset: int) -> list[tuple[str, int, int]]:
    """Rule 5: one word per Han/Kana character, per letter/digit run, per other character."""
    words, i, n = [], 0, len(chunk)
    while i < n:
        j = i + 1
        if _is_run_char(chunk[i]):
            while j < n and (
                _is_run_char(chunk[j]) or (chunk[j] in _JOINERS and j + 1 < n and _is_run_char(chunk[j + 1]))
            ):
                j += 1
        words.append((chunk[i:j], offset + i, offset + j))
        i = j
    return words


def split_words(text: str) -> list[tuple[str, int, int]]:
    """Split raw ``text`` into ``(word, start, end)`` triples with ``text[start:end] == word``.

    See the module docstring for the rules; ``"book a flight to boston"`` gives the five space-separated
    words, ``"Flights to St. Louis?"`` gives ``Flights, to, St., Louis, ?``, ``"订2张去北京的票"`` gives
    ``订, 2, 张, 去, 北, 京, 的, 票``.
    """
    words: list[tuple[str, int, int]] = []
    for m in _CHUNK.finditer(text):
        chunk = m.group()
        split = _split_cjk_chunk if _CJK.search(chunk) else _split_chunk
        words.extend(split(chunk, m.start()))
    return words


def join_words(words: list[str] | tuple[str, ...]) -> tuple[str, list[tuple[str, int, int]]]:
    """Text of pre-split ``words`` joined by single spaces, with each word's ``(word, start, end)``."""
    spans, pos = [], 0
    for w in words:
        spans.append((w, pos, pos + len(w)))
        pos += len(w) + 1
    return " ".join(words), spans


def read_utterances(path: str | Path) -> list[str]:
    """Lines of a UTF-8 text file, one raw utterance each (BOM and ``\\r\\n`` accepted; blank lines kept).

    Only ``\\n`` ends a line, so line *k* of the file is utterance *k*; a final newline adds no utterance.
    """
    from chatft.core.formats import decode_utf8

    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"{path}: input file not found (one utterance per line)")
    lines = decode_utf8(p.read_bytes(), path).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]
