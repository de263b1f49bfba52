"""Word attributions: occlusion and ERASER's metrics on a score function whose answers are known exactly, the
explanation object, and the request checks (no model: :mod:`chatft.core.attribution` is torch-free)."""

from __future__ import annotations

import numpy as np
import pytest

from chatft.core.attribution import (
    check_request,
    eraser_scores,
    explain_prediction,
    explanation_dict,
    occlusion,
    random_scores,
    slot_targets,
    top_k_count,
)
from chatft.core.decoding import Decoded
from chatft.core.errors import ConfigError
from chatft.core.prediction import build_prediction
from chatft.core.text import split_words

INTENTS = ("<unk>", "airfare", "flight")
TAGS = ("<unk>", "O", "B-city", "I-city")


def toy_score(variants):
    """p(airfare) = 0.9 with "fare" in the words, else 0.2 (+0.05 with "cheapest"); a word is tagged city
    with probability 0.8 when it is "new" or "york", and "york" is I-city only after "new" (else 0.5)."""
    out = []
    for words in variants:
        p = (0.9 if "fare" in words else 0.2) + (0.05 if "cheapest" in words and "fare" not in words else 0.0)
        probs = np.zeros((len(words), len(TAGS)))
        for k, w in enumerate(words):
            if w == "new":
                probs[k] = [0, 0.2, 0.8, 0]
            elif w == "york":
                city = 0.8 if k and words[k - 1] == "new" else 0.5
                probs[k] = [0, 1 - city, 0, city]
            else:
                probs[k] = [0, 1, 0, 0]
        out.append(Decoded(1, [0.0, p, 1 - p], [], [], False, tag_probs=probs))
    return out


WORDS = ["cheapest", "fare", "to", "new", "york"]


def test_occlusion_scores_each_word_by_what_erasing_it_costs():
    slots = slot_targets(["O", "O", "O", "B-city", "I-city"], TAGS)
    intent, slot_scores = occlusion(WORDS, toy_score, 1, slots)
    assert intent == pytest.approx([0.0, 0.9 - 0.25, 0.0, 0.0, 0.0])
    # Support 0.8; without "new": york alone (0.5), new counts 0 -> 0.25; without "york": 0.4.
    assert [s.label for s in slots] == ["city"] and (slots[0].start, slots[0].end, slots[0].tag_ids) == (
        3,
        5,
        (2, 3),
    )
    assert slot_scores == [pytest.approx([0.0, 0.0, 0.0, 0.8 - 0.25, 0.8 - 0.4])]


def test_occlusion_of_a_one_word_utterance_scores_the_empty_copy():
    intent, slots = occlusion(["fare"], toy_score, 2, [])
    assert intent == pytest.approx([0.1 - 0.8]) and slots == []


def test_eraser_top_k_words_and_the_bins():
    assert [top_k_count(5, f) for f in (0.1, 0.2, 0.3, 0.4, 0.5)] == [1, 1, 2, 2, 3]
    assert top_k_count(10, 0.3) == 3
    comp, suff = eraser_scores([WORDS], [[0.1, 0.9, 0.0, 0.0, 0.0]], [1], toy_score)
    # Top 1 and 2 (counts 1, 1, 2, 2, 3): fare, then cheapest (ties: the earlier word). Without fare: 0.25
    # (cheapest stays), without both or all three: 0.2; fare alone, or with the others: 0.9.
    assert comp == pytest.approx([np.mean([0.65, 0.65, 0.7, 0.7, 0.7])])
    assert suff == pytest.approx([0.0])
    # york first, then cheapest, fare: fare is in the rationale from k = 3 words on.
    comp, suff = eraser_scores([WORDS], [[0.0, 0.0, 0.0, 0.0, 1.0]], [1], toy_score)
    assert comp == pytest.approx([np.mean([0.0, 0.0, 0.0, 0.0, 0.7])])
    assert suff == pytest.approx([np.mean([0.7, 0.7, 0.65, 0.65, 0.0])])


def test_random_scores_are_seeded():
    assert random_scores(4, 3) == random_scores(4, 3)
    assert random_scores(4, 3) != random_scores(4, 4)
    assert len(random_scores(7, 0)) == 7


def test_explanation_object_keys_and_offsets():
    text = "cheapest fare to New York"
    spans = split_words(text)
    slots = slot_targets(["O", "O", "O", "B-city", "I-city"], TAGS)
    out = explanation_dict(
        "occlusion", WORDS, spans, "airfare", 0.9, [0, 1, 0, 0, 0], slots, [[0, 0, 0, 2, 3]], text
    )
    assert out == {
        "method": "occlusion",
        "words": WORDS,
        "intent": {"name": "airfare", "probability": 0.9, "scores": [0.0, 1.0, 0.0, 0.0, 0.0]},
        "slots": [
            {
                "label": "city",
                "start": 17,
                "end": 25,
                "text": "New York",
                "words": [3, 4],
                "scores": [0.0, 0.0, 0.0, 2.0, 3.0],
            }
        ],
    }


def test_explain_prediction_explains_the_best_ranked_intent_when_out_of_scope_and_a_named_one_on_request():
    text = "cheapest fare"
    decoded = Decoded(1, [0.0, 0.6, 0.4], ["O", "O"], [1.0, 1.0], False, out_of_scope=True)
    pred = build_prediction(text, split_words(text), decoded, INTENTS, top_k=1)
    assert pred.intent == "nlu_fallback"
    seen = []

    def attribute(words, method, intent, targets):
        seen.append((list(words), method, intent, targets))
        return [0.5, 0.5], []

    out = explain_prediction(pred, "occlusion", attribute, toy_score, INTENTS, TAGS)
    assert out["intent"] == {"name": "airfare", "probability": 0.6, "scores": [0.5, 0.5]}
    assert seen[-1][:3] == (["cheapest", "fare"], "occlusion", 1)
    # flight is not in the top 1: its probability comes from the score function (1 - 0.9).
    out = explain_prediction(pred, "occlusion", attribute, toy_score, INTENTS, TAGS, intent="flight")
    assert out["intent"]["name"] == "flight" and out["intent"]["probability"] == pytest.approx(0.1)
    empty = build_prediction("  ", [], None, INTENTS)
    assert explain_prediction(empty, "occlusion", attribute, toy_score, INTENTS, TAGS) == {
        "method": "occlusion",
        "words": [],
        "intent": {"name": None, "probability": 0.0, "scores": []},
        "slots": [],
    }


def test_check_request_messages():
    assert check_request(None, None, ("occlusion",), INTENTS) == "occlusion"
    with pytest.raises(ConfigError) as err:
        check_request("lime", None, ("occlusion",), INTENTS)
    assert str(err.value) == "unknown explanation method 'lime' (choose from occlusion, integrated_gradients)"
    with pytest.raises(ConfigError) as err:
        check_request("integrated_gradients", None, ("occlusion",), INTENTS)
    assert str(err.value) == (
        "integrated_gradients needs the PyTorch model (a checkpoint); this model explains with occlusion"
    )
    with pytest.raises(ConfigError) as err:
        check_request(None, "<unk>", ("occlusion",), INTENTS)
    assert str(err.value) == "unknown intent '<unk>' to explain: the model predicts airfare, flight"
