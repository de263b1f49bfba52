"""``data convert --from columns`` (CoNLL-style rows, BIO or BIOES) and nested spans kept-longer by default."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chatft.core.errors import DataFormatError
from chatft.data_tools.convert import convert

from .test_data_convert import one_line_error, write

# CAIS's layout: one character and its BIOES tag per row, a blank line between utterances, a parallel .intent
# file; "t f b o y s" and "love story" (its space is a row of its own) are spelled one letter per row.
BIOES = """我 O
要 O
听 O
t B-singer
f I-singer
b I-singer
o I-singer
y I-singer
s E-singer
的 O
歌 O

放 O
l B-song
o I-song
v I-song
e I-song
  I-song
s I-song
t I-song
o I-song
r I-song
y E-song

听 O
雨 S-song
"""

# BIO with xSID's comments (# intent, # text) and a row number in the first column.
BIO = """# text: book a flight to new york
# intent: book_flight
1\tbook\tbook_flight\tO
2\ta\tbook_flight\tO
3\tflight\tbook_flight\tO
4\tto\tbook_flight\tO
5\tnew\tbook_flight\tB-city
6\tyork\tbook_flight\tI-city

# intent: greet
1\thi\tgreet\tO
"""


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_bioes_with_parallel_intents_and_one_letter_rows(tmp_path, capsys):
    data = write(tmp_path / "ch.train", BIOES)
    write(tmp_path / "ch.train.intent", "PlayMusic\nPlayMusic\nPlayMusic\n")
    result = convert("columns", str(tmp_path / "out"), train=[str(data)], dev=[str(data)], test=[str(data)])
    assert jsonl(result.files["train"]) == [
        {
            "words": ["我", "要", "听", "tfboys", "的", "歌"],
            "tags": ["O", "O", "O", "B-singer", "O", "O"],
            "intent": "PlayMusic",
        },
        {"words": ["放", "love", "story"], "tags": ["O", "B-song", "I-song"], "intent": "PlayMusic"},
        {"words": ["听", "雨"], "tags": ["O", "B-song"], "intent": "PlayMusic"},
    ]
    out = capsys.readouterr().out
    assert "note: files with BIOES tags (converted to BIO): 3\n" in out
    assert (
        f"note: 9 words rejoined from one-character Latin/digit rows: {data}:1: 't f b o y s' -> 'tfboys'; "
        f"{data}:13: 'l o v e' -> 'love'; {data}:13: 's t o r y' -> 'story'"
    ) in out


def test_bio_with_intent_comments_and_row_numbers(tmp_path):
    data = write(tmp_path / "en.conll", BIO)
    result = convert("columns", str(tmp_path / "out"), train=[str(data)], dev=[str(data)], test=[str(data)])
    assert jsonl(result.files["train"]) == [
        {
            "words": ["book", "a", "flight", "to", "new", "york"],
            "tags": ["O", "O", "O", "O", "B-city", "I-city"],
            "intent": "book_flight",
        },
        {"words": ["hi"], "tags": ["O"], "intent": "greet"},
    ]


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        ("a O\nb I-x\n", 2, "tag 'I-x' after 'O': a slot must start with B-x"),
        ("a B-x\nb I-y\n", 2, "tag 'I-y' after 'B-x': a slot must start with B-y"),
        ("a S-x\nb I-x\n", 2, "tag 'I-x' after 'S-x': a slot must start with B-x"),
        ("a B-x\nb O\nc S-y\n", 2, "tag 'O' after 'B-x': in BIOES a slot ends with E-x (S-x for one token)"),
        (
            "a B-x\nb I-x\n\nc S-x\n",
            2,
            "the utterance ends inside a slot ('I-x'): in BIOES a slot ends with E-x",
        ),
        ("a X-x\n", 1, "tag 'X-x' is not BIO (B/I/O-type or O)"),
        ("a\n", 1, "expected a token and a tag, got 'a'"),
    ],
)
def test_impossible_sequences_are_one_line_errors(tmp_path, text, line, what):
    data = write(tmp_path / "bad.txt", text)
    with pytest.raises(DataFormatError) as err:
        convert("columns", str(tmp_path / "out"), input=[str(data)], intent="i", quiet=True)
    assert one_line_error(err, f"{data}:{line}: ") == f"{data}:{line}: {what}"


def test_intent_file_length_and_missing_intent(tmp_path):
    data = write(tmp_path / "ch.train", "a O\n\nb O\n")
    write(tmp_path / "ch.train.intent", "x\n")
    with pytest.raises(DataFormatError) as err:
        convert("columns", str(tmp_path / "out"), input=[str(data)], quiet=True)
    assert str(err.value) == (
        f"{data}.intent: 1 intents for 2 utterances in {data} (one intent per line, in utterance order)"
    )
    alone = write(tmp_path / "other.txt", "a O\n")
    with pytest.raises(DataFormatError) as err:
        convert("columns", str(tmp_path / "out"), input=[str(alone)], quiet=True)
    assert str(err.value) == (
        f"{alone}:1: no intent for this utterance (add '# intent: X' before it, a parallel file "
        "other.txt.intent with one intent per line, or --intent X)"
    )


NESTED = (
    '{"text": "play the beatles songs", "entities": [[5, 16, "artist"], [9, 16, "band"]], "cats": ["play"]}\n'
    '{"text": "play abba", "entities": [[5, 9, "artist"]], "cats": ["play"]}\n'
    '{"text": "play new york song", "entities": [[5, 13, "city"], [9, 18, "song"]], "cats": ["play"]}\n'
)


def test_nested_spans_keep_the_longer_one_unless_strict(tmp_path, capsys):
    path = write(tmp_path / "d.jsonl", NESTED)
    result = convert(
        "spans-jsonl", str(tmp_path / "out"), train=[str(path)], dev=[str(path)], test=[str(path)]
    )
    assert jsonl(result.files["train"]) == [
        {
            "words": ["play", "the", "beatles", "songs"],
            "tags": ["O", "B-artist", "I-artist", "O"],
            "intent": "play",
        },
        {"words": ["play", "abba"], "tags": ["O", "B-artist"], "intent": "play"},
        {"words": ["play", "new", "york", "song"], "tags": ["O", "O", "B-song", "I-song"], "intent": "play"},
    ]
    out = capsys.readouterr().out
    assert (
        "warning: 6 spans skipped (nested or overlapping: the longer span kept) (--strict-spans makes this an "
        f"error); first: {path}:1: 'beatles' (band); {path}:3: 'new york' (city); {path}:1: 'beatles' (band)"
    ) in out
    with pytest.raises(DataFormatError) as err:
        convert("spans-jsonl", str(tmp_path / "out2"), input=[str(path)], strict_spans=True, quiet=True)
    assert str(err.value) == (
        f"{path}:1: spans overlap: 5-16 'the beatles' (artist) and 9-16 'beatles' (band) (one slot per word: "
        "remove one of them, or drop --strict-spans to keep the longer one)"
    )
