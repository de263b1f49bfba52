"""data augment: new utterances by slot-value substitution within train (exact outputs on hand-written data)."""

from __future__ import annotations

import json

import pytest

from chatft.cli import main
from chatft.core.errors import ConfigError
from chatft.core.formats import Example, read_jointbert
from chatft.core.substitution import Variant, slot_values, substitute_slot_values
from chatft.data_tools.augment import augment

from .test_data_cli import chatft


def ex(text: str, tags: str, intent: str) -> Example:
    return Example(tuple(text.split()), tuple(tags.split()), intent)


TRAIN = [
    ex("fly from boston to denver", "O O B-from O B-to", "flight"),
    ex("fly from new york to boston", "O O B-from I-from O B-to", "flight"),
    ex("hello there", "O O", "greet"),
    ex("book united from denver", "O B-airline O B-from", "book"),
    ex("dates monday tuesday please", "O B-day B-day O", "dates"),
    ex("flights on friday", "O O I-day", "flight"),
]
#: Values only dev and test hold: none may reach train.
DEV = [ex("fly from paris to rome", "O O B-from O B-to", "flight"), ex("hi", "O", "greet")]
TEST = [ex("fly from oslo to lima", "O O B-from O B-to", "flight"), ex("dates sunday", "O B-day", "dates")]

#: seed 0, two per utterance. Source 0 makes one only: its other text ("fly from new york to boston") is
#: train's line 2; source 1's "boston ... denver" is line 1. "hello there" has no slots; "united" is the
#: only airline; "B-day B-day" is two values; the orphan "I-day" is a span, retagged "B-day".
EXPECTED = [
    Variant(0, ex("fly from denver to boston", "O O B-from O B-to", "flight")),
    Variant(1, ex("fly from denver to denver", "O O B-from O B-to", "flight")),
    Variant(3, ex("book united from boston", "O B-airline O B-from", "book")),
    Variant(3, ex("book united from new york", "O B-airline O B-from I-from", "book")),
    Variant(4, ex("dates friday friday please", "O B-day B-day O", "dates")),
    Variant(4, ex("dates tuesday friday please", "O B-day B-day O", "dates")),
    Variant(5, ex("flights on tuesday", "O O B-day", "flight")),
    Variant(5, ex("flights on monday", "O O B-day", "flight")),
]


def test_slot_values_are_seqeval_spans_in_first_seen_order():
    assert slot_values(TRAIN) == {
        "from": [("boston",), ("new", "york"), ("denver",)],
        "to": [("denver",), ("boston",)],
        "airline": [("united",)],
        "day": [("monday",), ("tuesday",), ("friday",)],
    }


def test_exact_variants_for_seed_0():
    assert substitute_slot_values(TRAIN, per_utterance=2, seed=0) == EXPECTED


def test_same_seed_same_variants_other_seed_other_draws():
    assert substitute_slot_values(TRAIN, 2, 0) == substitute_slot_values(TRAIN, 2, 0)
    other = substitute_slot_values(TRAIN, 2, 1)
    assert [v.example.words for v in other if v.source == 4] == [
        ("dates", "tuesday", "monday", "please"),
        ("dates", "tuesday", "friday", "please"),
    ]
    assert [v for v in other if v.source != 4] == [v for v in EXPECTED if v.source != 4]


def test_never_repeats_a_train_text_or_a_variant():
    # Each utterance's only other text is the other's: nothing new can be made.
    pair = [ex("to boston", "O B-to", "flight"), ex("to denver", "O B-to", "flight")]
    assert substitute_slot_values(pair, 5, 0) == []
    many = substitute_slot_values(TRAIN, 50, 0)
    texts = [v.example.words for v in many]
    assert len(texts) == len(set(texts))
    assert not set(texts) & {e.words for e in TRAIN}
    # Source 5 has exactly two other values, so two variants however many are asked for.
    assert [v.example.words[-1] for v in many if v.source == 5] == ["tuesday", "monday"]


def test_words_outside_spans_intent_and_unvaried_utterances():
    variants = substitute_slot_values(TRAIN, 3, 7)
    assert 2 not in {v.source for v in variants}  # "hello there": no slots
    for source, new in variants:
        old = TRAIN[source]
        assert new.intent == old.intent
        assert [w for w, t in zip(new.words, new.tags, strict=True) if t == "O"] == [
            w for w, t in zip(old.words, old.tags, strict=True) if t == "O"
        ]
    # A type with one value keeps it; an utterance whose types all have one value gives nothing.
    assert all(v.example.words[1] == "united" for v in variants if v.source == 3)
    single = [ex("book united", "O B-airline", "book"), ex("fly united now", "O B-airline O", "book")]
    assert substitute_slot_values(single, 3, 0) == []


def test_per_utterance_below_one_is_refused():
    with pytest.raises(ValueError, match="^per_utterance must be at least 1, got 0$"):
        substitute_slot_values(TRAIN, 0, 0)


def write_jointbert(folder, examples):
    folder.mkdir(parents=True)
    (folder / "seq.in").write_text("".join(" ".join(e.words) + "\n" for e in examples), encoding="utf-8")
    (folder / "seq.out").write_text("".join(" ".join(e.tags) + "\n" for e in examples), encoding="utf-8")
    (folder / "label").write_text("".join(e.intent + "\n" for e in examples), encoding="utf-8")


@pytest.fixture
def atis_like(tmp_path):
    root = tmp_path / "data"
    write_jointbert(root / "train", TRAIN)
    write_jointbert(root / "dev", DEV)
    write_jointbert(root / "test", TEST)
    # CRLF endings and a license file: copied byte for byte.
    (root / "test" / "label").write_bytes(b"flight\r\ndates\r\n")
    (root / "LICENSE-source").write_text("terms\n", encoding="utf-8")
    return root


def files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_folder_written_train_extended_rest_byte_identical(atis_like, tmp_path, capsys):
    out = tmp_path / "aug"
    variants = augment(str(atis_like), str(out), per_utterance=2, seed=0)
    assert variants == EXPECTED
    assert capsys.readouterr().out == (
        f"8 new utterances from 5 of 6 train utterances (--per-utterance 2, --seed 0): train 6 -> 14 in {out}\n"
    )
    assert read_jointbert(out / "train") == [*TRAIN, *(v.example for v in EXPECTED)]
    written, source = files(out), files(atis_like)
    assert sorted(written) == sorted(source)
    assert {k: v for k, v in written.items() if not k.startswith("train/")} == {
        k: v for k, v in source.items() if not k.startswith("train/")
    }
    new_words = {w for v in variants for w in v.example.words}
    assert not new_words & {"paris", "rome", "oslo", "lima", "sunday"}
    # Same seed: the same files.
    again = tmp_path / "again"
    augment(str(atis_like), str(again), per_utterance=2, seed=0, quiet=True)
    assert files(again) == written


def test_jsonl_folder_keeps_its_layout(tmp_path):
    src = tmp_path / "data"
    src.mkdir()
    rows = [{"words": list(e.words), "tags": list(e.tags), "intent": e.intent} for e in TRAIN]
    (src / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (src / "dev.jsonl").write_text('{"words": ["hi"], "tags": ["O"], "intent": "greet"}\n', encoding="utf-8")
    augment(str(src), str(tmp_path / "out"), per_utterance=2, seed=0, quiet=True)
    lines = (tmp_path / "out" / "train.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 14
    assert json.loads(lines[6]) == {
        "words": ["fly", "from", "denver", "to", "boston"],
        "tags": ["O", "O", "B-from", "O", "B-to"],
        "intent": "flight",
    }
    assert (tmp_path / "out" / "dev.jsonl").read_bytes() == (src / "dev.jsonl").read_bytes()


def test_errors_are_one_line(atis_like, tmp_path, capsys):
    out = tmp_path / "aug"
    out.mkdir()
    (out / "x").write_text("")
    cases = [
        (
            ["--per-utterance", "0"],
            "chatft: error: --per-utterance 0: must be at least 1 (new utterances per source)",
        ),
        ([], f"chatft: error: {out}: exists and is not an empty folder; choose a new one (or --force)"),
    ]
    for extra, error in cases:
        with pytest.raises(SystemExit) as stop:
            main(["data", "augment", "--input", str(atis_like), "--out", str(out), *extra])
        assert stop.value.code == 2
        assert capsys.readouterr().err == error + "\n"
    main(["data", "augment", "--input", str(atis_like), "--out", str(out), "--force"])
    assert len(read_jointbert(out / "train")) == 11  # --per-utterance defaults to 1
    capsys.readouterr()
    (atis_like / "dev" / "seq.out").write_text("O O B-from O\nO\n", encoding="utf-8")
    inside = atis_like / "aug"
    intent_only = tmp_path / "tsv"
    intent_only.mkdir()
    (intent_only / "train.tsv").write_text("hi there\tgreet\n", encoding="utf-8")
    for args, error in [
        (
            ["--input", str(atis_like), "--out", str(tmp_path / "new")],
            f"{atis_like / 'dev' / 'seq.out'}:1: 5 words but 4 tags (give exactly one BIO tag per word)",
        ),
        (
            ["--input", str(intent_only), "--out", str(tmp_path / "new")],
            f"{intent_only}: train has no slot tags, so there are no slot values to substitute",
        ),
    ]:
        with pytest.raises(SystemExit):
            main(["data", "augment", *args])
        assert capsys.readouterr().err == f"chatft: error: {error}\n"
    (atis_like / "dev" / "seq.out").write_text("O O B-from O B-to\nO\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="^" + str(inside) + ": the output folder must be outside"):
        augment(str(atis_like), str(inside))


def test_cli_end_to_end_then_data_check(atis_like, tmp_path):
    out = tmp_path / "aug"
    done = chatft(
        "data", "augment", "--input", str(atis_like), "--out", str(out), "--per-utterance", "1", "--seed", "0"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        f"5 new utterances from 5 of 6 train utterances (--per-utterance 1, --seed 0): train 6 -> 11 in {out}\n"
    )
    checked = chatft("data", "check", str(out))
    assert checked.returncode == 0, checked.stderr
    assert (
        checked.stdout
        == f"ok: {out} (jointbert): train 11, dev 2, test 2 examples; 4 intents, 4 slot types in train\n"
    )


def test_a_substitution_equal_to_a_dev_or_test_text_is_drawn_again():
    # Seed 0 makes "fly from denver to boston" first (EXPECTED[0]); as a held-out text it may not reach train.
    held_out = [EXPECTED[0].example.words]
    got = substitute_slot_values(TRAIN, per_utterance=2, seed=0, avoid=held_out)
    # Source 0's only other text is train's own line 2, so it gives none; the others are unchanged here.
    assert got == EXPECTED[1:]


def test_the_folder_command_avoids_dev_and_test_texts(atis_like, tmp_path):
    # A dev utterance that a substitution rebuilds from train's values: the command must not write it.
    dev = [*DEV, EXPECTED[0].example]
    (atis_like / "dev").rename(tmp_path / "old-dev")
    write_jointbert(atis_like / "dev", dev)
    variants = augment(str(atis_like), str(tmp_path / "aug"), per_utterance=2, seed=0, quiet=True)
    assert variants == EXPECTED[1:]
