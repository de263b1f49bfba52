"""The learned tracker's torch-free parts: value matching, label derivation, state update rules, decoding, scores."""

from __future__ import annotations

import numpy as np
import pytest

from chatft.dialogue.dialogues import Dialogue, Turn
from chatft.dialogue.dst_scores import DSTCounts, turn_score
from chatft.dialogue.state_labels import GATES, LabelStats, SlotLabel, dialogue_labels, slot_label
from chatft.dialogue.state_update import Decision, TrackerSchema, apply_decisions, best_span, decode_turn
from chatft.dialogue.turn_input import OTHER, SYSTEM, USER, state_text, system_start, turn_pair
from chatft.dialogue.values import find_value, normalise_value, words_match, words_of

SLOTS = ("food", "price range", "area")
SCHEMA = TrackerSchema(
    SLOTS,
    {
        "food": ("chinese", "thai", "asian oriental"),
        "price range": ("cheap", "moderate", "expensive"),
        "area": ("centre", "north"),
    },
    ("phone", "address"),
    {"price range": {"moderately": "moderate"}},
)


def test_words_match_loosely_only_long_words():
    assert words_match("cheap", "cheaply")
    assert words_match("centre", "center")  # an adjacent swap
    assert words_match("moderate", "moderately")
    assert not words_match("thai", "that")  # short words match only exactly
    assert not words_match("expensive", "inexpensive")


def test_find_value_exact_loose_part_and_last_mention():
    text = "not chinese, make it chinese food in the center"
    words = words_of(text)
    assert find_value("chinese", words) == (21, 28, "exact")  # the last mention
    assert find_value("centre", words) == (41, 47, "loose")
    assert find_value("asian oriental", words_of("some asian food")) == (5, 10, "part")
    assert find_value("thai", words) is None


def test_normalise_value_list_variants_loose_and_open():
    values = SCHEMA.values["price range"]
    assert normalise_value("Cheap", values) == "cheap"
    assert normalise_value("moderately", values, {"moderately": "moderate"}) == "moderate"
    assert normalise_value("cheaply", values) == "cheap"  # loose match with the list
    assert normalise_value("high end", values) == "high end"  # no value: kept as said
    assert normalise_value("The Golden Curry", None) == "the golden curry"  # open slot


@pytest.mark.parametrize(
    ("previous", "new", "user", "system", "expected"),
    [
        ("chinese", "chinese", "what is the phone number?", "", SlotLabel("carry")),
        (None, None, "hello", "", SlotLabel("carry")),
        ("chinese", "thai", "no, not chinese, make it thai", "", SlotLabel("user", (25, 29), "exact")),
        (None, "dontcare", "any area is fine", "", SlotLabel("dontcare")),
        ("chinese", None, "forget the food type", "", SlotLabel("remove")),
        (None, "chinese", "yes please", "Do you want Chinese food?", SlotLabel("system", (12, 19), "exact")),
        (None, "moderate", "moderately priced", "", SlotLabel("user", (0, 10), "loose")),
        (None, "expensive", "a high end place", "", SlotLabel("user")),  # found nowhere: no span
    ],
)
def test_slot_label(previous, new, user, system, expected):
    assert slot_label(previous, new, user, system) == expected


def test_dialogue_labels_use_the_gold_previous_state_and_count():
    dialogue = Dialogue(
        "d",
        (
            Turn("", "cheap chinese food please", {"food": "chinese", "price range": "cheap"}),
            Turn(
                "Golden Wok is a nice place.",
                "moderately priced instead",
                {"food": "chinese", "price range": "moderate"},
            ),
            Turn(
                "Do you want the north?",
                "yes",
                {"food": "chinese", "price range": "moderate", "area": "north"},
            ),
            Turn(
                "Ok.", "something high end", {"food": "chinese", "price range": "expensive", "area": "north"}
            ),
        ),
    )
    stats = LabelStats()
    labels = dialogue_labels([dialogue], SLOTS, stats)
    gates = [[labels[0][i][s].gate for s in SLOTS] for i in range(4)]
    assert gates == [
        ["user", "user", "carry"],
        ["carry", "user", "carry"],
        ["carry", "carry", "system"],
        ["carry", "user", "carry"],
    ]
    assert stats.gates == {"carry": 7, "user": 4, "system": 1}
    assert dict(stats.not_found) == {"price range": 1}
    assert stats.variants() == {"price range": {"moderately": "moderate"}}


def test_state_update_rules():
    previous = {"food": "chinese", "price range": "cheap", "area": "centre"}
    decisions = {
        "food": Decision("user", "thai"),  # overwrite
        "price range": Decision("remove"),  # removal
        "area": Decision("dontcare"),
    }
    assert apply_decisions(previous, decisions) == {"food": "thai", "area": "dontcare"}
    assert apply_decisions(previous, {s: Decision("carry") for s in SLOTS}) == previous
    # a confirmed offer: the value the system said, accepted by the user
    assert apply_decisions({}, {"area": Decision("system", "north")}) == {"area": "north"}
    with pytest.raises(ValueError, match="unknown gate 'maybe'"):
        apply_decisions({}, {"area": Decision("maybe")})


def test_best_span_stays_in_the_segment_and_in_order():
    start = np.array([0.0, 5.0, 1.0, 0.0, 9.0])
    end = np.array([0.0, 0.0, 4.0, 0.0, 0.0])
    allowed = np.array([False, True, True, True, False])
    assert best_span(start, end, allowed) == (1, 2)
    assert best_span(start, end, np.zeros(5, dtype=bool)) is None


def _logits(gate_per_slot: list[str], spans: dict[int, tuple[int, int]], t: int):
    g = np.full((3, len(GATES)), -5.0)
    s = np.full((3, t), -5.0)
    e = np.full((3, t), -5.0)
    for k, gate in enumerate(gate_per_slot):
        g[k, GATES.index(gate)] = 5.0
    for k, (i, j) in spans.items():
        s[k, i] = e[k, j] = 5.0
    return g, s, e


def test_decode_turn_user_span_system_confirmation_and_value_fallback():
    user, system = "cheap thai please", "Do you want the north?"
    # tokens: [CLS] cheap thai please [SEP] (state) [SEP] do you want the north ? [SEP]
    segments = [OTHER, USER, USER, USER, OTHER, OTHER, SYSTEM, SYSTEM, SYSTEM, SYSTEM, SYSTEM, SYSTEM, OTHER]
    second = "food = none ; price range = none ; area = none [SEP] " + system
    base = system_start(second, system)
    offsets = [
        (0, 0),
        (0, 5),
        (6, 10),
        (11, 17),
        (0, 0),
        (0, 4),
        *[(base + a, base + b) for a, b in [(0, 2), (3, 6), (7, 11), (12, 15), (16, 21), (21, 22)]],
        (0, 0),
    ]
    g, s, e = _logits(["user", "user", "system"], {0: (2, 2), 1: (1, 1), 2: (10, 10)}, len(segments))
    values = np.zeros((3, 3))
    requests = np.array([2.0, -1.0])
    update = decode_turn(
        SCHEMA, {}, g, s, e, values, requests, segments, offsets, {USER: user, SYSTEM: second}
    )
    assert update.state == {"food": "thai", "price range": "cheap", "area": "north"}
    assert update.changed == {"food": "thai", "price range": "cheap", "area": "north"}
    assert update.requests == ("phone",)
    # a span that matches no listed value ("please"): the slot's value classifier decides
    g, s, e = _logits(["carry", "user", "carry"], {1: (3, 3)}, len(segments))
    values = np.array([[0, 0, 0], [0, 0, 3.0], [0, 0, 0]])
    update = decode_turn(
        SCHEMA, {"food": "thai"}, g, s, e, values, requests, segments, offsets, {USER: user, SYSTEM: second}
    )
    assert update.state == {"food": "thai", "price range": "expensive"}
    assert update.changed == {"price range": "expensive"}


def test_turn_input_text():
    assert state_text({"food": "chinese", "area": "dontcare"}, SLOTS) == (
        "food = chinese ; price range = none ; area = dontcare"
    )
    first, second = turn_pair("yes", "Thai food?", {}, ["food"], "[SEP]")
    assert (first, second) == ("yes", "food = none [SEP] Thai food?")
    assert second[system_start(second, "Thai food?") :] == "Thai food?"


def test_joint_goal_accuracy_on_a_hand_computed_example():
    # 4 turns; turn 2 gets area wrong, turn 3 misses food and has the wrong requests.
    gold = [
        ({"food": "thai"}, ()),
        ({"food": "thai", "area": "north"}, ("phone",)),
        ({"food": "thai", "area": "north"}, ()),
        ({"food": "thai", "area": "north", "price range": "cheap"}, ()),
    ]
    predicted = [
        ({"food": "thai"}, ()),
        ({"food": "thai", "area": "centre"}, ("phone",)),
        ({"area": "north"}, ("address",)),
        ({"food": "thai", "area": "north", "price range": "cheap", "name": "x"}, ()),  # name: not scored
    ]
    counts = DSTCounts(SLOTS)
    for (gs, gr), (ps, pr) in zip(gold, predicted, strict=True):
        counts.add(turn_score(gs, ps, SLOTS, gr, pr))
    assert counts.turns == 4 and counts.joint == 2 and counts.request == 3
    assert counts.per_slot == [3, 4, 3]  # food, price range, area
    assert counts.scores() == {"joint_goal_acc": 0.5, "slot_acc": 10 / 12, "request_acc": 0.75}
