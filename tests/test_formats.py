"""Readers for the three formats, format detection and label vocabularies."""

from __future__ import annotations

import json

import pytest

from chatft.core.formats import DataFormatError, Example, detect_format, orphan_inside, read_split
from chatft.core.labels import UNK, LabelVocab, slot_tag_vocab

from .conftest import ATIS, DEMO, write_jointbert


def test_jointbert_reader(tmp_path):
    write_jointbert(
        tmp_path, {"train": [("fly to new york", "O O B-city I-city", "atis_airfare#atis_flight")]}
    )
    assert detect_format(tmp_path) == "jointbert"
    assert read_split(tmp_path, "train") == [
        Example(("fly", "to", "new", "york"), ("O", "O", "B-city", "I-city"), "atis_airfare#atis_flight")
    ]


def test_tsv_reader_is_intent_only(tmp_path):
    (tmp_path / "train.tsv").write_text("I love this movie.\t1\nterrible  acting\t0\n", encoding="utf-8")
    assert detect_format(tmp_path) == "tsv"
    assert read_split(tmp_path, "train") == [
        Example(("I", "love", "this", "movie."), None, "1"),
        Example(("terrible", "acting"), None, "0"),
    ]


def test_jsonl_reader(tmp_path):
    rows = [{"words": ["play", "abba"], "tags": ["O", "B-artist"], "intent": "play_music"}]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert detect_format(tmp_path) == "jsonl"
    assert read_split(tmp_path, "train") == [Example(("play", "abba"), ("O", "B-artist"), "play_music")]


def test_bom_and_crlf_are_accepted(tmp_path):
    (tmp_path / "train.tsv").write_bytes("\ufeffhello there\tgreet\r\nbye\tbye\r\n".encode())
    assert [ex.intent for ex in read_split(tmp_path, "train")] == ["greet", "bye"]
    assert read_split(tmp_path, "train")[0].words == ("hello", "there")


def test_unknown_layout_lists_what_was_looked_for(tmp_path):
    with pytest.raises(DataFormatError, match="train/seq.in .*train.jsonl .*train.tsv"):
        detect_format(tmp_path)


def test_word_tag_mismatch_names_file_and_line(tmp_path):
    write_jointbert(tmp_path, {"train": [("a b", "O O", "x"), ("a b c", "O O", "x")]})
    with pytest.raises(DataFormatError, match=r"train/seq.out:2: 3 words but 2 tags"):
        read_split(tmp_path, "train")


def test_orphan_inside_tags_are_counted():
    exs = [Example(("a", "b", "c"), ("O", "I-x", "I-x"), "i"), Example(("a", "b"), ("B-x", "I-y"), "i")]
    assert orphan_inside(exs) == [(0, 1), (1, 1)]


def test_label_vocab_unknown_maps_to_zero_and_round_trips(tmp_path):
    vocab = slot_tag_vocab(["B-b", "O", "B-a", "I-a"])
    assert vocab.labels == (UNK, "O", "B-a", "B-b", "I-a")
    assert vocab.id("B-zzz") == 0 and vocab.id("B-b") == 3
    vocab.save(tmp_path / "v.json")
    assert LabelVocab.load(tmp_path / "v.json") == vocab
    assert LabelVocab.from_list(["x", "y"]).labels == (UNK, "x", "y")


def test_demo_data_shape():
    for split, n in (("train", 1200), ("dev", 200), ("test", 300)):
        examples = read_split(DEMO, split)
        assert len(examples) == n
        assert all(ex.tags is not None and len(ex.tags) == len(ex.words) for ex in examples)


def test_atis_reads_as_published():
    if not ATIS.is_dir():
        pytest.skip(f"ATIS not found at {ATIS}: real-data checks need ../shared/data/atis")
    sizes = {split: len(read_split(ATIS, split)) for split in ("train", "dev", "test")}
    assert sizes == {"train": 4478, "dev": 500, "test": 893}
    train = read_split(ATIS, "train")
    assert len({ex.intent for ex in train}) == 21
    assert len(slot_tag_vocab(t for ex in train for t in ex.tags)) == 2 + 119
