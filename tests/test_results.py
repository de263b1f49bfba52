"""The numpy decoding every predictor shares: equal to the torch decoding, marginals equal to brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from chatft.core.decoding import SlotDecoder, intent_probabilities
from chatft.core.prediction import build_prediction, top_k_intents
from chatft.core.tags import decoding_transitions
from chatft.training.crf import CRF, viterbi_decode
from chatft.training.model import JointModel

TAGS = ["<unk>", "O", "B-city", "I-city", "B-date", "I-date"]


def _constraints():
    return decoding_transitions(TAGS)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 7))
def test_softmax_bio_decoding_equals_the_models(seed, n_words):
    g = torch.Generator().manual_seed(seed)
    em = torch.randn(1, n_words, len(TAGS), generator=g) * 3
    start, trans = _constraints()
    want = viterbi_decode(
        em.log_softmax(-1), torch.ones(1, n_words, dtype=torch.bool), None, None, None, start, trans
    )
    dec = SlotDecoder.from_constraints(False, True, start, trans)
    assert dec.decode(em[0].numpy()) == want[0]
    assert SlotDecoder.from_dict(dec.to_dict()).decode(em[0].numpy()) == want[0]


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 7))
def test_crf_decoding_equals_the_models(seed, n_words):
    torch.manual_seed(seed)
    start, trans = _constraints()
    crf = CRF(len(TAGS), start, trans)
    for p in crf.parameters():
        torch.nn.init.normal_(p, std=2.0)
    em = torch.randn(1, n_words, len(TAGS)) * 3
    want = crf.decode(em, torch.ones(1, n_words, dtype=torch.bool))[0]
    dec = SlotDecoder.from_constraints(
        True,
        True,
        start,
        trans,
        crf.start_transitions.detach().numpy(),
        crf.transitions.detach().numpy(),
        crf.end_transitions.detach().numpy(),
    )
    assert dec.decode(em[0].numpy()) == want


def test_softmax_decoding_never_predicts_unk():
    em = np.array([[9.0, 1.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 5.0, 0.0, 0.0]])
    dec = SlotDecoder("softmax")
    assert dec.decode(em) == [1, 3]  # argmax without <unk>; unconstrained, so I-city after O is allowed
    probs = dec.word_probabilities(em)
    assert probs[:, 0].tolist() == [0.0, 0.0] and np.allclose(probs.sum(1), 1.0)


def test_crf_marginals_equal_brute_force():
    rng = np.random.default_rng(0)
    n_words, n_tags = 4, 4
    em, start, trans, end = (
        rng.normal(size=s) for s in ((n_words, n_tags), n_tags, (n_tags, n_tags), n_tags)
    )
    dec = SlotDecoder("crf", start, trans, end)
    scores = {}
    for path in itertools.product(range(n_tags), repeat=n_words):
        s = start[path[0]] + end[path[-1]] + sum(em[i, t] for i, t in enumerate(path))
        s += sum(trans[a, b] for a, b in itertools.pairwise(path))
        scores[path] = s
    z = np.logaddexp.reduce(list(scores.values()))
    brute = np.zeros((n_words, n_tags))
    for path, s in scores.items():
        for i, t in enumerate(path):
            brute[i, t] += np.exp(s - z)
    assert np.allclose(dec.word_probabilities(em), brute, atol=1e-12)
    best = max(scores, key=scores.get)
    assert dec.decode(em) == list(best)
    assert dec.confidences(em, list(best)) == pytest.approx([brute[i, t] for i, t in enumerate(best)])


def test_slot_decoder_of_a_joint_model_matches_its_decode():
    from transformers import BertConfig, BertModel

    from chatft.training.artifacts import slot_decoder_of

    torch.manual_seed(0)
    encoder = BertModel(
        BertConfig(
            vocab_size=30, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16
        ),
        add_pooling_layer=False,
    )
    for use_crf in (False, True):
        model = JointModel(encoder, 3, TAGS, use_crf=use_crf).eval()
        if use_crf:
            for p in model.crf.parameters():
                torch.nn.init.normal_(p, std=2.0)
        em = torch.randn(3, 5, len(TAGS)) * 3
        mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)
        _, _, want = model.decode(torch.zeros(3, 3), em, mask)
        dec = slot_decoder_of(model)
        got = [dec.decode(em[b, : int(mask[b].sum())].numpy()) for b in range(3)]
        assert got == want


def test_intent_probabilities_exclude_unk_and_top_k_is_sorted():
    probs = intent_probabilities(np.array([[5.0, 1.0, 3.0, 2.0]]))[0]
    assert probs[0] == 0.0 and probs.sum() == pytest.approx(1.0)
    assert [label for label, _ in top_k_intents(probs, ["<unk>", "a", "b", "c"], 2)] == ["b", "c"]


def test_build_prediction_slots_have_character_offsets_and_min_confidence():
    text = "Flights from New York to St. Louis?"
    from chatft.core.text import split_words

    spans = split_words(text)
    tags = ["O", "O", "B-city", "I-city", "O", "B-city", "I-city", "O"]
    conf = [0.9, 0.9, 0.8, 0.6, 0.9, 0.7, 0.95, 0.99]
    pred = build_prediction(
        text, spans, "flight", [0.0, 0.75, 0.25], ["<unk>", "flight", "fare"], tags, conf, False
    )
    assert [(s.label, s.value, s.confidence) for s in pred.slots] == [
        ("city", "New York", 0.6),
        ("city", "St. Louis", 0.7),
    ]
    assert all(text[s.start : s.end] == s.value for s in pred.slots)
    d = pred.to_dict()
    assert list(d) == [
        "text",
        "words",
        "tags",
        "intent",
        "intent_confidence",
        "intents_top_k",
        "slots",
        "truncated",
        "out_of_scope",
        "empty",
    ]
    assert d["intents_top_k"] == [["flight", 0.75], ["fare", 0.25]]
    assert pred.slot_values() == {"city": "St. Louis"}
