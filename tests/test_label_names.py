"""Intent names as training utterances (``--data.label_name_utterances``): which are added, and that the
datamodule trains on them in one order with the words it reports."""

from __future__ import annotations

import pytest

from chatft.core.errors import ConfigError
from chatft.core.formats import Example
from chatft.core.pairs import label_name_examples
from chatft.training.datamodule import IntentSlotDataModule

from .conftest import write_jointbert


def test_one_utterance_per_intent_in_sorted_order_without_oos_or_repeats():
    train = [
        Example(("hi",), ("O",), "greet"),
        Example(("book", "flight"), ("O", "O"), "bookFlight"),  # already the name's words: nothing new
        Example(("to", "rome"), ("O", "B-city"), "pto_request"),
        Example(("blah",), ("O",), "oos"),
        Example(("x",), ("O",), "___"),
    ]
    assert label_name_examples(train, skip="oos") == [
        Example(("greet",), ("O",), "greet"),
        Example(("pto", "request"), ("O", "O"), "pto_request"),
    ]
    intents_only = [Example(("hi",), None, "greet"), Example(("no",), None, "oos")]
    assert label_name_examples(intents_only) == [
        Example(("greet",), None, "greet"),
        Example(("oos",), None, "oos"),
    ]
    assert label_name_examples([]) == []


def test_datamodule_trains_on_the_names_and_reports_the_same_words(tmp_path, tiny_encoder, capsys):
    rows = [("fly to rome", "O O B-city", "book_flight"), ("hello", "O", "greet"), ("hi", "O", "greet")]
    data = write_jointbert(tmp_path / "data", {"train": rows, "dev": rows[:1]})
    plain = IntentSlotDataModule(str(data), tokenizer=tiny_encoder, cache="off")
    plain.setup("fit")
    assert len(plain.datasets["train"]) == 3 and capsys.readouterr().out == ""
    dm = IntentSlotDataModule(str(data), tokenizer=tiny_encoder, cache="off", label_name_utterances=True)
    dm.setup("fit")
    assert capsys.readouterr().out == (
        "train: 2 intent names added as utterances, 5 in all (--data.label_name_utterances true)\n"
    )
    words = [ex.words for ex in dm.split_examples("train")]
    assert words == [("fly", "to", "rome"), ("hello",), ("hi",), ("book", "flight"), ("greet",)]
    assert len(dm.datasets["train"]) == 5
    assert [len(f.word_starts) for f in dm.datasets["train"]] == [len(w) for w in words]
    assert [f.intent for f in dm.datasets["train"]][3:] == [
        dm.intent_vocab.id("book_flight"),
        dm.intent_vocab.id("greet"),
    ]
    assert dm.intent_labels == plain.intent_labels and dm.slot_labels == plain.slot_labels
    assert len(dm.datasets["dev"]) == 1
    cached = IntentSlotDataModule(
        str(data),
        tokenizer=tiny_encoder,
        cache="on",
        cache_dir=str(tmp_path / "cache"),
        label_name_utterances=True,
    )
    with pytest.raises(ConfigError) as err:
        cached.setup("fit")
    assert (
        str(err.value) == "--data.label_name_utterances true: not with the feature cache (--data.cache off)"
    )


def test_null_adds_the_names_on_few_shot_sets_only(tmp_path, tiny_encoder, capsys):
    """At most 16 utterances per intent on average (out-of-scope ones not counted), at least 2 intents."""

    def rows(per_intent: int, intents: tuple[str, ...] = ("greet", "book_flight")) -> list:
        return [(f"w{i}", "O", intent) for intent in intents for i in range(per_intent)]

    def added(train: list, name: str) -> int:
        data = write_jointbert(tmp_path / name, {"train": train, "dev": train[:1]})
        dm = IntentSlotDataModule(str(data), tokenizer=tiny_encoder, cache="off", label_name_utterances=None)
        dm.setup("fit")
        return len(dm.datasets["train"]) - len(train)

    assert added(rows(16) + [("x", "O", "oos")] * 40, "few") == 2
    assert capsys.readouterr().out == (
        "train: 2 intent names added as utterances, 74 in all (a few-shot training set, 16.0 utterances per "
        "intent; --data.label_name_utterances false adds none)\n"
    )
    assert added(rows(17), "many") == 0
    assert added(rows(3, ("greet",)), "one") == 0
    assert capsys.readouterr().out == ""
