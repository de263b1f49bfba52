"""The Arrow feature cache of IntentSlotDataModule: identical rows, keys, damaged entries, data errors."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from chatft.core.errors import DataFormatError
from chatft.training.datamodule import AUTO_CACHE_BYTES, IntentSlotDataModule

from .conftest import ATIS, DEMO, demo_subset, write_jointbert


def entries(cache_dir: Path) -> list[str]:
    """The finished cache entries (kind and key), without locks or temporary folders."""
    return sorted(p.name for p in cache_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def module(data, cache_dir, tokenizer, **options) -> IntentSlotDataModule:
    dm = IntentSlotDataModule(
        str(data), tokenizer=str(tokenizer), cache="on", cache_dir=str(cache_dir), **options
    )
    dm.setup("fit")
    return dm


def assert_same_features(data: Path, tmp_path: Path, tokenizer: str, splits, max_length: int = 64) -> None:
    memory = IntentSlotDataModule(str(data), tokenizer=tokenizer, cache="off", max_length=max_length)
    arrow = IntentSlotDataModule(
        str(data), tokenizer=tokenizer, cache="on", cache_dir=str(tmp_path / "cache"), max_length=max_length
    )
    assert (arrow.intent_labels, arrow.slot_labels) == (memory.intent_labels, memory.slot_labels)
    for split in splits:
        expected = memory.encode(memory._read(split))
        arrow.setup("test" if split == "test" else "fit")
        rows = arrow.datasets[split]
        assert len(rows) == len(expected)
        assert list(rows) == expected  # every field of every utterance, index and gold tag strings included
        assert rows.lengths == [len(f.input_ids) for f in expected]


@pytest.mark.slow  # about 15 s: the real tokenizer over the whole demo, and datasets' first import
def test_arrow_rows_equal_the_in_memory_features_on_the_demo(tmp_path):
    """The shipped demo (all three splits) with the default encoder's tokenizer, max_length 64 (demo.yaml)."""
    from chatft.model.encoders import DEFAULT_ENCODER

    assert_same_features(DEMO, tmp_path, DEFAULT_ENCODER, ("train", "dev", "test"))


@pytest.mark.skipif(not ATIS.is_dir(), reason=f"ATIS not found at {ATIS}")
def test_arrow_rows_equal_the_in_memory_features_on_atis_dev(tmp_path):
    from chatft.model.encoders import DEFAULT_ENCODER

    assert_same_features(ATIS, tmp_path, DEFAULT_ENCODER, ("dev",))


def test_truncation_and_intent_only_data_keep_their_features(tmp_path, tiny_encoder):
    """Truncated utterances (max_length 6) and tsv data without tags (gold_tags None) round-trip exactly."""
    assert_same_features(demo_subset(tmp_path / "demo"), tmp_path / "a", tiny_encoder, ("train",), 6)
    tsv = tmp_path / "tsv"
    tsv.mkdir()
    (tsv / "train.tsv").write_text(
        "play some jazz\tplay\nstop it\tstop\nplay rock now\tplay\n", encoding="utf-8"
    )
    assert_same_features(tsv, tmp_path / "b", tiny_encoder, ("train",))


def test_second_run_hits_and_every_key_part_misses(tmp_path, tiny_encoder):
    data = demo_subset(tmp_path / "data")
    cache = tmp_path / "cache"
    module(data, cache, tiny_encoder)
    first = entries(cache)
    assert [e.split("-")[0] for e in first] == ["dev", "labels", "train"]
    module(data, cache, tiny_encoder)
    assert entries(cache) == first  # a hit: nothing new built

    def new_entries(**options) -> list[str]:
        before = set(entries(cache))
        module(options.pop("data", data), cache, options.pop("tokenizer", tiny_encoder), **options)
        return sorted(e.split("-")[0] for e in set(entries(cache)) - before)

    # Options that change the features: only the feature entries are new (the labels do not depend on them).
    assert new_entries(max_length=8) == ["dev", "train"]
    # A tokenizer with one more token (its serialized state changed) misses too.
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_encoder)
    tok.add_tokens(["zzzq"])
    grown = tmp_path / "grown-tokenizer"
    tok.save_pretrained(grown)
    # The labels entry misses as well: it also holds the units added to the vocabulary (--data.extend_vocab),
    # which the tokenizer decides.
    assert new_entries(tokenizer=grown) == ["dev", "labels", "train"]
    # The same tokenizer and options again: every entry is a hit.
    assert new_entries(tokenizer=grown) == []
    # A changed train file: new labels and new train features; dev's files and labels are the same (a hit).
    seq_in = data / "train" / "seq.in"
    text = seq_in.read_text(encoding="utf-8")
    seq_in.write_text(text.replace(text.split()[0], text.split()[0].upper(), 1), encoding="utf-8")
    assert new_entries() == ["labels", "train"]
    # The label vocabulary: an out-of-scope label that only dev has becomes an intent of every split.
    rows = (data / "dev" / "label").read_text(encoding="utf-8").splitlines()
    (data / "dev" / "label").write_text("\n".join(["away", *rows[1:]]) + "\n", encoding="utf-8")
    assert new_entries(oos_label="away") == ["dev", "labels", "train"]


def test_damaged_or_half_written_entries_are_built_again(tmp_path, tiny_encoder, caplog):
    data = demo_subset(tmp_path / "data")
    cache = tmp_path / "cache"
    expected = list(module(data, cache, tiny_encoder).datasets["train"])
    train = cache / next(e for e in entries(cache) if e.startswith("train-"))
    arrow = next(train.glob("*.arrow"))
    arrow.write_bytes(arrow.read_bytes()[:100])  # a truncated file (a crash, a full disk)
    with caplog.at_level(logging.WARNING):
        again = module(data, cache, tiny_encoder)
    assert f"{train}: incomplete or damaged cache entry, building it again" in caplog.text
    assert list(again.datasets["train"]) == expected
    # An entry without its marker (killed before it was finished) is not read either.
    (train / "chatft-cache.json").unlink()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert list(module(data, cache, tiny_encoder).datasets["train"]) == expected
    assert "incomplete or damaged cache entry" in caplog.text


def test_a_data_error_still_names_file_and_line_and_caches_nothing(tmp_path, tiny_encoder):
    data = write_jointbert(
        tmp_path / "data",
        {"train": [("play jazz", "O B-genre", "play"), ("stop it", "O X-bad", "stop")]},
    )
    with pytest.raises(DataFormatError) as off:
        IntentSlotDataModule(str(data), tokenizer=tiny_encoder, cache="off")
    with pytest.raises(DataFormatError) as on:
        module(data, tmp_path / "cache", tiny_encoder)
    assert str(on.value) == str(off.value)
    assert str(on.value).startswith(f"{data / 'train' / 'seq.out'}:2: malformed tag 'X-bad'")
    assert entries(tmp_path / "cache") == []


def test_auto_caches_large_training_files_only(tmp_path, tiny_encoder):
    data = demo_subset(tmp_path / "data")
    cache = tmp_path / "cache"
    small = IntentSlotDataModule(str(data), tokenizer=tiny_encoder, cache_dir=str(cache))
    assert small.use_cache is False and not cache.exists()
    seq_in = data / "train" / "seq.in"
    lines = seq_in.read_text(encoding="utf-8")
    copies = AUTO_CACHE_BYTES // (len(lines.encode()) + 1) + 1
    for name in ("seq.in", "seq.out", "label"):
        path = data / "train" / name
        path.write_text(path.read_text(encoding="utf-8") * copies, encoding="utf-8")
    large = IntentSlotDataModule(str(data), tokenizer=tiny_encoder, cache_dir=str(cache))
    assert large.use_cache is True and [e.split("-")[0] for e in entries(cache)] == ["labels"]
    shutil.rmtree(cache)


def test_a_word_without_sub_words_takes_the_per_utterance_rule(tmp_path, tiny_encoder):
    """A zero-width space is a word to the reader and no token to the tokenizer: its chunk is made by
    tokenize_examples' fix-up (the word becomes [UNK]), not by the columnar path, and the rows still match."""
    data = write_jointbert(
        tmp_path / "data",
        {
            "train": [
                ("play \u200b jazz", "O O B-genre", "play"),
                ("stop it", "O O", "stop"),
                ("play rock", "O B-genre", "play"),
            ]
        },
    )
    assert_same_features(data, tmp_path, tiny_encoder, ("train",))
