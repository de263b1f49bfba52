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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "我想订一张去北京的机票",
            [
                ("我", 0, 1),
                ("想", 1, 2),
                ("订", 2, 3),
                ("一", 3, 4),
                ("张", 4, 5),
                ("去", 5, 6),
                ("北", 6, 7),
                ("京", 7, 8),
                ("的", 8, 9),
                ("机", 9, 10),
                ("票", 10, 11),
            ],
        ),
        (
            "帮我订2张明天的票，谢谢！",
            [
                ("帮", 0, 1),
                ("我", 1, 2),
                ("订", 2, 3),
                ("2", 3, 4),
                ("张", 4, 5),
                ("明", 5, 6),
                ("天", 6, 7),
                ("的", 7, 8),
                ("票", 8, 9),
                ("，", 9, 10),
                ("谢", 10, 11),
                ("谢", 11, 12),
                ("！", 12, 13),
            ],
        ),
        (
            "iPhone12多少钱? 连接Wi-Fi要3.5秒",
            [
                ("iPhone12", 0, 8),
                ("多", 8, 9),
                ("少", 9, 10),
                ("钱", 10, 11),
                ("?", 11, 12),
                ("连", 13, 14),
                ("接", 14, 15),
                ("Wi-Fi", 15, 20),
                ("要", 20, 21),
                ("3.5", 21, 24),
                ("秒", 24, 25),
            ],
        ),
        (
            "東京から大阪までの新幹線",
            [
                ("東", 0, 1),
                ("京", 1, 2),
                ("か", 2, 3),
                ("ら", 3, 4),
                ("大", 4, 5),
                ("阪", 5, 6),
                ("ま", 6, 7),
                ("で", 7, 8),
                ("の", 8, 9),
                ("新", 9, 10),
                ("幹", 10, 11),
                ("線", 11, 12),
            ],
        ),
        (
            "２０２４年に ＡＮＡ便でコーヒー",
            [
                ("２０２４", 0, 4),
                ("年", 4, 5),
                ("に", 5, 6),
                ("ＡＮＡ", 7, 10),
                ("便", 10, 11),
                ("で", 11, 12),
                ("コ", 12, 13),
                ("ー", 13, 14),
                ("ヒ", 14, 15),
                ("ー", 15, 16),
            ],
        ),
        (
            "서울에서 부산까지 가는 기차",
            [("서울에서", 0, 4), ("부산까지", 5, 9), ("가는", 10, 12), ("기차", 13, 15)],
        ),
        (
            "book 北京 flights.",
            [("book", 0, 4), ("北", 5, 6), ("京", 6, 7), ("flights", 8, 15), (".", 15, 16)],
        ),
    ],
)
def test_scripts_without_spaces_split_per_character(text, expected):
    """Han and Kana one word per character; letter/digit runs one word; Korean keeps its spaces."""
    assert split_words(text) == expected
    assert all(text[s:e] == w for w, s, e in expected)


def test_split_words_is_exported_from_the_package():
    import chatft

    assert chatft.split_words("去北京") == [("去", 0, 1), ("北", 1, 2), ("京", 2, 3)]


@given(st.text(alphabet=st.sampled_from(list("ab1 .,?北京のカ２Ｚ，。-'")), max_size=40))
def test_offsets_are_exact_with_scripts_without_spaces(text):
    spans = split_words(text)
    assert all(text[s:e] == w and w and not any(c.isspace() for c in w) for w, s, e in spans)
    assert all(e1 <= s2 for (_, _, e1), (_, s2, _) in itertools.pairwise(spans))
    assert "".join(w for w, _, _ in spans) == "".join(text.split())
    assert all(len(w) == 1 for w, _, _ in spans if any(c in "北京のカ" for c in w))


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
