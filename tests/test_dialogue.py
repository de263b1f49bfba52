"""Dialogue state tracking and the chat command's file mode, on scripted predictions.

A stand-in predictor returns fixed predictions per utterance, so these tests check the state rules exactly
(carried-over slots, replaced slots, follow-up intents, fragments, new frames), independent of any model.
"""

from __future__ import annotations

import json
import re

import pytest
import yaml

from chatft.cli import main
from chatft.core.prediction import Prediction, Slot
from chatft.core.text import split_words
from chatft.dialogue.tracker import SHIPPED, DialoguePolicy, DialogueTracker

from .conftest import ATIS, DEMO

POLICY = DialoguePolicy.from_dict(
    {
        "min_intent_confidence": 0.5,
        "slot_names": {"fromloc.city_name": "departure city"},
        "intents": {
            "book_flight": {
                "required": ["fromloc.city_name", "toloc.city_name", "depart_date"],
                "ask": {"toloc.city_name": "Where to?"},
                "confirm": "Flying {fromloc.city_name} -> {toloc.city_name} on {depart_date}.",
                "follow_ups": ["airfare"],
            },
            "greet": {"confirm": "Hello!"},
        },
    }
)


def pred(text: str, intent: str, confidence: float, slots: dict[str, str]) -> Prediction:
    """A Prediction whose slots are the given values, located in ``text``."""
    found = []
    for label, value in slots.items():
        start = text.index(value)
        found.append(Slot(label, value, start, start + len(value), 0.9))
    words = [w for w, _, _ in split_words(text)]
    return Prediction(text, words, ["O"] * len(words), intent, confidence, [(intent, confidence)], found)


SCRIPT = [
    pred("i want to fly to denver", "book_flight", 0.95, {"toloc.city_name": "denver"}),
    pred("from boston", "get_weather", 0.30, {"fromloc.city_name": "boston"}),  # unsure fragment: carried on
    pred(
        "actually to dallas on friday",
        "book_flight",
        0.90,
        {"toloc.city_name": "dallas", "depart_date": "friday"},
    ),
    pred("how much is it", "airfare", 0.80, {}),  # follow-up intent: keeps the frame
    pred("hello there", "greet", 0.99, {}),  # another intent: new frame
]


def test_tracker_carries_replaces_and_starts_new_frames():
    tracker = DialogueTracker(POLICY)
    out = [tracker.update(p) for p in SCRIPT]
    assert [o["new_frame"] for o in out] == [True, False, False, False, True]
    assert [o["state"]["intent"] for o in out] == [
        "book_flight",
        "book_flight",
        "book_flight",
        "airfare",
        "greet",
    ]
    assert out[0]["state"]["frame"] == {"toloc.city_name": "denver"}
    assert out[1]["state"]["frame"] == {"toloc.city_name": "denver", "fromloc.city_name": "boston"}
    assert out[2]["state"]["frame"] == {
        "toloc.city_name": "dallas",
        "fromloc.city_name": "boston",
        "depart_date": "friday",
    }
    assert out[3]["state"]["frame"] == out[2]["state"]["frame"]
    assert out[4]["state"]["frame"] == {}
    assert [o["missing"] for o in out[:3]] == [["fromloc.city_name", "depart_date"], ["depart_date"], []]
    assert [o["response"] for o in out] == [
        "What is the departure city?",  # no `ask` for it: the generic question with the readable name
        "What is the depart_date?",
        "Flying boston -> dallas on friday.",
        "OK: airfare with toloc.city_name dallas, departure city boston, depart_date friday.",
        "Hello!",
    ]


def test_first_unsure_turn_still_starts_a_frame_and_reset_clears_it():
    tracker = DialogueTracker(POLICY)
    out = tracker.update(pred("denver", "book_flight", 0.2, {"toloc.city_name": "denver"}))
    assert out["new_frame"] and out["state"] == {
        "intent": "book_flight",
        "frame": {"toloc.city_name": "denver"},
    }
    tracker.reset()
    assert tracker.state.intent is None and tracker.state.frame == {}


def test_chat_file_mode_multi_turn_script(monkeypatch, tmp_path, capsys):
    """Acceptance: `chat --input` writes one JSON object per turn with the state after it."""
    import chatft.serving.predictor

    by_text = {p.text: p for p in SCRIPT}

    class Scripted:
        intent_labels = ("<unk>", "book_flight", "airfare", "greet", "get_weather")
        slot_labels = ("<unk>", "O", "B-toloc.city_name", "B-fromloc.city_name", "B-depart_date")

        def __call__(self, text: str) -> Prediction:
            return by_text[text]

    monkeypatch.setattr(
        chatft.serving.predictor.Predictor, "from_checkpoint", classmethod(lambda cls, *a, **k: Scripted())
    )
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump({"intents": {"book_flight": {"required": ["fromloc.city_name"]}}}))
    turns = tmp_path / "turns.txt"
    lines = [p.text for p in SCRIPT[:3]] + ["", SCRIPT[0].text]
    turns.write_text("\n".join(lines) + "\n", encoding="utf-8")
    main(["chat", "--ckpt_path", "unused.ckpt", "--requirements", str(policy), "--input", str(turns)])
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["turn"] for r in records] == [1, 2, 3, 4]
    assert records[0] == {
        "turn": 1,
        "text": "i want to fly to denver",
        "intent": "book_flight",
        "intent_confidence": 0.95,
        "out_of_scope": False,
        "slots": [
            {
                "label": "toloc.city_name",
                "value": "denver",
                "start": 17,
                "end": 23,
                "confidence": 0.9,
                "text": "denver",
                "typed": None,
                "extractor": "chatft",
                "processors": [],
            }
        ],
        "new_frame": True,
        "state": {"intent": "book_flight", "frame": {"toloc.city_name": "denver"}},
        "missing": ["fromloc.city_name"],
        "response": "What is the fromloc.city_name?",
    }
    assert records[1]["state"]["frame"] == {"toloc.city_name": "denver", "fromloc.city_name": "boston"}
    assert records[1]["response"] == "OK: book_flight with toloc.city_name denver, fromloc.city_name boston."
    assert records[2]["state"]["frame"] == {
        "toloc.city_name": "dallas",
        "fromloc.city_name": "boston",
        "depart_date": "friday",
    }
    assert records[3]["new_frame"] and records[3]["state"]["frame"] == {
        "toloc.city_name": "denver"
    }  # blank line


def test_bad_policy_is_a_one_line_error(tmp_path, capsys):
    policy = tmp_path / "p.yaml"
    policy.write_text("intents:\n  book_flight:\n    requires: [x]\n")
    with pytest.raises(SystemExit) as exc:
        main(["chat", "--ckpt_path", "x.ckpt", "--requirements", str(policy), "--input", str(policy)])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("chatft: error:") and "requires" in err and "\n" not in err


def _labels(folder):
    intents = set((folder / "train/label").read_text().split())
    tags = set((folder / "train/seq.out").read_text().split())
    return ["<unk>", *intents], ["<unk>", "O", *tags]


def test_shipped_demo_policy_names_only_demo_labels():
    policy = DialoguePolicy.load("demo")
    assert policy.unknown_labels(*_labels(DEMO)) == []
    assert set(policy.intents) == set((DEMO / "train/label").read_text().split())


@pytest.mark.skipif(not (ATIS / "train" / "label").is_file(), reason=f"ATIS not found at {ATIS}")
def test_shipped_atis_policy_names_only_atis_labels():
    assert DialoguePolicy.load("atis").unknown_labels(*_labels(ATIS)) == []


def test_every_shipped_policy_parses():
    files = sorted(SHIPPED.glob("*.yaml"))
    assert [f.stem for f in files] == ["atis", "demo"]
    for f in files:
        assert DialoguePolicy.load(f).intents


def test_aliases_rename_slot_types_for_the_frames_intent():
    policy = DialoguePolicy.from_dict(
        {"intents": {"book_flight": {"required": ["depart_date"], "aliases": {"date": "depart_date"}}}}
    )
    tracker = DialogueTracker(policy)
    tracker.update(pred("fly to denver", "book_flight", 0.9, {"toloc.city_name": "denver"}))
    out = tracker.update(pred("next friday please", "greet", 0.3, {"date": "next friday"}))
    assert out["state"]["frame"] == {"toloc.city_name": "denver", "depart_date": "next friday"}
    assert out["missing"] == []
    other = DialogueTracker(policy)
    assert other.update(pred("next friday please", "set_alarm", 0.9, {"date": "next friday"}))["state"][
        "frame"
    ] == {"date": "next friday"}


PIZZA_YAML = """\
slots:
  topping:
    multiple: true
  drink:
    synonyms:
      coca-cola: [coke, coca cola]
intents:
  order_pizza:
    required: [size]
    ask:
      size: What size[ for your {topping} pizza]?
    confirm:
      - A {size} pizza[ with {topping}][ and a {drink}].
  order_drink:
    confirm:
      - Adding {drink} to your {size} pizza.
      - Adding {drink}.
"""


def slots_pred(text: str, intent: str, slots: list[tuple[str, str]]) -> Prediction:
    """A confident Prediction with possibly several slots of one type, located in ``text`` in order."""
    found, at = [], 0
    for label, value in slots:
        start = text.index(value, at)
        at = start + len(value)
        found.append(Slot(label, value, start, at, 0.9))
    words = [w for w, _, _ in split_words(text)]
    return Prediction(text, words, ["O"] * len(words), intent, 0.95, [(intent, 0.95)], found)


def test_pizza_policy_lists_synonyms_and_optional_template_parts(monkeypatch, tmp_path, capsys):
    """Acceptance (chat --input): "ham and pineapple" keeps both, Coke is coca-cola, no blank placeholders."""
    import chatft.serving.predictor

    turns = [
        slots_pred(
            "a pizza with ham and pineapple", "order_pizza", [("topping", "ham"), ("topping", "pineapple")]
        ),
        slots_pred(
            "large please and add ham and olives",
            "order_pizza",
            [("size", "large"), ("topping", "ham"), ("topping", "olives")],
        ),
        slots_pred("and a Coke", "order_pizza", [("drink", "Coke")]),
        slots_pred("a coca  cola", "order_drink", [("drink", "coca  cola")]),
        slots_pred("a small pizza", "order_pizza", [("size", "small")]),
    ]
    by_text = {p.text: p for p in turns}

    class Scripted:
        intent_labels = ("<unk>", "order_pizza", "order_drink")
        slot_labels = ("<unk>", "O", "B-topping", "B-size", "B-drink")

        def __call__(self, text: str) -> Prediction:
            return by_text[text]

    monkeypatch.setattr(
        chatft.serving.predictor.Predictor, "from_checkpoint", classmethod(lambda cls, *a, **k: Scripted())
    )
    policy = tmp_path / "pizza.yaml"
    policy.write_text(PIZZA_YAML, encoding="utf-8")
    script = tmp_path / "turns.txt"
    script.write_text("\n".join(p.text for p in turns[:4]) + "\n\n" + turns[4].text + "\n", encoding="utf-8")
    main(["chat", "--ckpt_path", "unused.ckpt", "--requirements", str(policy), "--input", str(script)])
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["state"]["frame"] for r in records] == [
        {"topping": ["ham", "pineapple"]},
        {"topping": ["ham", "pineapple", "olives"], "size": "large"},
        {"topping": ["ham", "pineapple", "olives"], "size": "large", "drink": "coca-cola"},
        {"drink": "coca-cola"},
        {"size": "small"},
    ]
    assert [r["response"] for r in records] == [
        "What size for your ham and pineapple pizza?",
        "A large pizza with ham, pineapple and olives.",
        "A large pizza with ham, pineapple and olives and a coca-cola.",
        "Adding coca-cola.",
        "A small pizza.",
    ]


def test_template_with_no_fitting_alternative_falls_back_to_the_generic_sentence():
    policy = DialoguePolicy.from_dict({"intents": {"order": {"confirm": "Adding {food} and {drink}."}}})
    tracker = DialogueTracker(policy)
    out = tracker.update(slots_pred("some coke", "order", [("drink", "coke")]))
    assert out["response"] == "OK: order with drink coke."


def test_policy_yaml_error_keeps_line_and_column(tmp_path, capsys):
    policy = tmp_path / "p.yaml"
    policy.write_text("intents:\n  order:\n    confirm: Adding {food}\n     ask: [x\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exc:
        main(["chat", "--ckpt_path", "x.ckpt", "--requirements", str(policy), "--input", str(policy)])
    assert exc.value.code == 2
    assert capsys.readouterr().err == (
        f"chatft: error: {policy}:4:9: not valid YAML: mapping values are not allowed here\n"
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"slots": {"drink": {"many": True}}}, "slot 'drink': unknown keys ['many'] (multiple, synonyms)"),
        ({"slots": {"drink": {"synonyms": ["coke"]}}}, "slot 'drink': synonyms must map a canonical value"),
        ({"intents": {"o": {"confirm": "Adding [{food}."}}}, "intent 'o': confirm: unbalanced or nested [ ]"),
        ({"intents": {"o": {"confirm": [1]}}}, "intent 'o': confirm: expected a template string or a list"),
    ],
)
def test_bad_slot_and_template_specs_are_one_line_errors(spec, message):
    from chatft.core.errors import ConfigError

    with pytest.raises(ConfigError, match=re.escape(f"policy: {message}")):
        DialoguePolicy.from_dict(spec)
