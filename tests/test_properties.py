"""Property-based robustness: arbitrary Unicode through the readers, the sub-word alignment and the spans.

Words are drawn from all of Unicode (CJK, emoji, combining marks, control and format characters, line
separators such as U+2028 and U+0085), plus empty strings, very long words and thousands of words. The
properties: nothing crashes, readers give back exactly what was written (or one ``DataFormatError``), the
alignment keeps exactly one label per kept word, and slot spans always reconstruct their words.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatft.core.decoding import Decoded
from chatft.core.features import IGNORE, tokenize_examples
from chatft.core.formats import DataFormatError, Example, read_split
from chatft.core.prediction import build_prediction
from chatft.core.tags import bio_chunks
from chatft.core.text import join_words
from chatft.model.batching import collate

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Any character a UTF-8 file can hold (no lone surrogates); U+FEFF is left out because a leading one is
# read as the byte-order mark.
ANY_CHAR = st.characters(exclude_categories=("Cs",), exclude_characters="\ufeff")
# Characters that str.split() keeps inside a word (what the JointBERT and TSV layouts can carry).
WORD_CHAR = ANY_CHAR.filter(lambda c: not c.isspace())
TRICKY = st.sampled_from(
    ["東京", "🛫", "e\u0301", "\u0301", "\u200b", "\u2028", "\x85", "\x00", "", " ", "ß" * 300, "a" * 5000]
)

plain_word = st.text(WORD_CHAR, min_size=1, max_size=12)
any_word = st.one_of(st.text(ANY_CHAR, max_size=12), TRICKY)
tag_type = st.text(WORD_CHAR, min_size=1, max_size=6)
tag = st.one_of(st.just("O"), st.builds(lambda p, t: f"{p}-{t}", st.sampled_from("BI"), tag_type))
intent = st.text(WORD_CHAR.filter(lambda c: c != "\t"), min_size=1, max_size=10)


def _tagged(words_strategy):
    """(words, tags) with one tag per word."""
    return words_strategy.flatmap(
        lambda ws: st.tuples(st.just(ws), st.lists(tag, min_size=len(ws), max_size=len(ws)))
    )


examples = st.lists(
    st.builds(
        lambda wt, i: Example(tuple(wt[0]), tuple(wt[1]), i),
        _tagged(st.lists(plain_word, min_size=1, max_size=8)),
        intent,
    ),
    min_size=1,
    max_size=6,
)


@SETTINGS
@given(examples=examples, crlf=st.booleans(), bom=st.booleans())
def test_jointbert_round_trip(tmp_path_factory, examples, crlf, bom):
    folder = tmp_path_factory.mktemp("jb")
    eol = "\r\n" if crlf else "\n"
    for name, lines in (
        ("seq.in", [" ".join(ex.words) for ex in examples]),
        ("seq.out", [" ".join(ex.tags) for ex in examples]),
        ("label", [ex.intent for ex in examples]),
    ):
        (folder / "train").mkdir(exist_ok=True)
        data = ("\ufeff" if bom else "") + eol.join(lines) + eol
        (folder / "train" / name).write_bytes(data.encode("utf-8"))
    assert read_split(folder, "train") == examples


@SETTINGS
@given(examples=examples)
def test_tsv_round_trip(tmp_path_factory, examples):
    folder = tmp_path_factory.mktemp("tsv")
    text = "".join(f"{' '.join(ex.words)}\t{ex.intent}\n" for ex in examples)
    (folder / "train.tsv").write_text(text, encoding="utf-8")
    assert read_split(folder, "train") == [Example(ex.words, None, ex.intent) for ex in examples]


@SETTINGS
@given(
    rows=st.lists(
        st.tuples(_tagged(st.lists(any_word, min_size=1, max_size=8)), intent), min_size=1, max_size=5
    )
)
def test_jsonl_round_trip_keeps_any_word_exactly(tmp_path_factory, rows):
    folder = tmp_path_factory.mktemp("jsonl")
    lines = [json.dumps({"words": w, "tags": t, "intent": i}, ensure_ascii=False) for (w, t), i in rows]
    (folder / "train.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert read_split(folder, "train") == [Example(tuple(w), tuple(t), i) for (w, t), i in rows]


@settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    fmt=st.sampled_from(["jointbert", "tsv", "jsonl"]),
    blobs=st.lists(st.binary(max_size=200), min_size=3, max_size=3),
)
def test_arbitrary_bytes_are_read_or_refused_with_a_data_format_error(tmp_path_factory, fmt, blobs):
    folder = tmp_path_factory.mktemp("fuzz")
    if fmt == "jointbert":
        (folder / "train").mkdir()
        for name, blob in zip(("seq.in", "seq.out", "label"), blobs, strict=True):
            (folder / "train" / name).write_bytes(blob)
    else:
        (folder / f"train.{fmt}").write_bytes(b"\n".join(blobs))
    try:
        examples = read_split(folder, "train", fmt)
    except DataFormatError as err:
        assert str(folder) in str(err) and "\n" not in str(err)  # one line, naming the file
    else:
        assert examples and all(ex.words for ex in examples)
        assert all(ex.tags is None or len(ex.tags) == len(ex.words) for ex in examples)


def _check_alignment(tokenizer, words: list[list[str]], max_length: int) -> None:
    tag_ids = [[(7 * k + 3) % 11 + 1 for k in range(len(ws))] for ws in words]
    features = tokenize_examples(tokenizer, words, max_length, word_tag_ids=tag_ids)
    assert len(features) == len(words)
    for f, ws, tags in zip(features, words, tag_ids, strict=True):
        starts = f.word_starts
        assert len(f.input_ids) <= max_length and f.n_words == len(ws)
        # One label per kept word, on its first sub-word; kept words are a prefix of the words.
        assert len(starts) == len(ws) or (f.truncated and len(starts) < len(ws))
        assert starts == sorted(set(starts)) and all(0 < p < len(f.input_ids) - 1 for p in starts)
        assert [f.labels[p] for p in starts] == tags[: len(starts)] == f.word_tags
        assert sum(label != IGNORE for label in f.labels) == len(starts)
    batch = collate(features, tokenizer.pad_token_id)
    assert batch["word_mask"].sum(1).tolist() == [len(f.word_starts) for f in features]


@SETTINGS
@given(words=st.lists(st.lists(any_word, min_size=1, max_size=10), min_size=1, max_size=4))
def test_alignment_keeps_one_label_per_word_for_any_unicode(tiny_tokenizer, words):
    _check_alignment(tiny_tokenizer, words, max_length=512)


@settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(n=st.integers(1000, 4000), word=any_word)
def test_alignment_of_thousands_of_words_truncates_to_a_prefix(tiny_tokenizer, n, word):
    words = [[(word if k % 3 == 0 else "go") for k in range(n)]]
    _check_alignment(tiny_tokenizer, words, max_length=32)


@SETTINGS
@given(wt=_tagged(st.lists(plain_word, min_size=1, max_size=12)))
def test_slot_spans_reconstruct_their_words(wt):
    words, tags = wt
    text, spans = join_words(words)
    decoded = Decoded(0, [1.0], tags, [0.5] * len(words), truncated=False)
    pred = build_prediction(text, spans, decoded, ["i"])
    chunks = bio_chunks(tags)
    assert len(pred.slots) == len(chunks)
    for slot, (typ, i, j) in zip(pred.slots, chunks, strict=True):
        assert slot.label == typ
        assert slot.value == text[slot.start : slot.end] == " ".join(words[i:j])
    # Spans never overlap, and every B-/I- word is inside exactly one of them.
    covered = [k for _, i, j in chunks for k in range(i, j)]
    assert covered == sorted(set(covered))
    assert set(covered) == {k for k, t in enumerate(tags) if t != "O"}
