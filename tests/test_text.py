"""split_words: documented punctuation rules, exact offsets, and ATIS-style text left exactly as str.split."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatft.core.text import join_words, read_utterances, split_words

from .conftest import ATIS, DEMO


def words(text: str) -> list[str]:
    return [w for w, _, _ in split_words(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "book a flight from boston to denver tomorrow",
            "book a flight from boston to denver tomorrow".split(),
        ),
        ("Flights to St. Louis?", ["Flights", "to", "St.", "Louis", "?"]),
        ("I want to go to Boston.", ["I", "want", "to", "go", "to", "Boston", "."]),
        ('Play "Hey Jude", please!', ["Play", '"', "Hey", "Jude", '"', ",", "please", "!"]),
        ("(from denver) wait...", ["(", "from", "denver", ")", "wait", "..."]),
        ("u.s. air at 6:30 a.m. for $1,000", ["u.s.", "air", "at", "6:30", "a.m.", "for", "$1,000"]),
        ("i'd like o'hare, what's up", ["i'd", "like", "o'hare", ",", "what's", "up"]),
        ("sweet child o' mine", ["sweet", "child", "o'", "mine"]),
        ("j. smith; dr. who: mt. hood", ["j.", "smith", ";", "dr.", "who", ":", "mt.", "hood"]),
        ("¿qué tal?", ["¿", "qué", "tal", "?"]),
        ("", []),
        ("   \t ", []),
        ("?!", ["?", "!"]),
        (".", ["."]),
    ],
)
def test_split_rules(text, expected):
    assert words(text) == expected


def test_offsets_point_into_the_original_text():
    text = "  Flights\tto St. Louis?  "
    assert split_words(text) == [
        ("Flights", 2, 9),
        ("to", 10, 12),
        ("St.", 13, 16),
        ("Louis", 17, 22),
        ("?", 22, 23),
    ]


@given(st.text(alphabet=st.sampled_from(list("ab .,?!'\"()\t:-$…")), max_size=40))
def test_offsets_are_exact_ordered_and_cover_all_non_space(text):
    spans = split_words(text)
    assert all(text[s:e] == w and w and not any(c.isspace() for c in w) for w, s, e in spans)
    assert all(e1 <= s2 for (_, _, e1), (_, s2, _) in itertools.pairwise(spans))
    assert "".join(w for w, _, _ in spans) == "".join(text.split())


def _lines(folder):
    for split in ("train", "dev", "test"):
        yield from (folder / split / "seq.in").read_text(encoding="utf-8").splitlines()


def test_demo_text_splits_exactly_on_whitespace():
    assert all(words(line) == line.split() for line in _lines(DEMO))


@pytest.mark.skipif(not (ATIS / "train" / "seq.in").is_file(), reason=f"ATIS not found at {ATIS}")
def test_atis_text_splits_exactly_on_whitespace():
    bad = [line for line in _lines(ATIS) if words(line) != line.split()]
    assert bad == []


def test_join_words_spans():
    text, spans = join_words(("list", "flights", "to", "st.", "louis"))
    assert text == "list flights to st. louis"
    assert all(text[s:e] == w for w, s, e in spans)


def test_read_utterances_keeps_blank_lines_and_line_numbers(tmp_path):
    path = tmp_path / "in.txt"
    path.write_bytes("\ufeffhello there\r\n\r\nbook a flight\n  \nlast".encode())
    assert read_utterances(path) == ["hello there", "", "book a flight", "  ", "last"]
    path.write_text("one\ntwo\n", encoding="utf-8")
    assert read_utterances(path) == ["one", "two"]
