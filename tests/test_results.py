"""The numpy decoding every predictor shares: equal to the torch decoding, marginals equal to brute force."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from chatft.core.decoding import Decoded, Decoder, SlotDecoder, intent_probabilities
from chatft.core.prediction import build_prediction, top_k_intents
from chatft.core.tags import decoding_transitions
from chatft.model.crf import CRF
from chatft.model.joint import JointModel

from .helpers import PREDICTION_KEYS
from .oracles import crf_viterbi, slot_confidences, slot_decode, slot_word_probabilities, viterbi_decode

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
    assert slot_decode(dec, em[0].numpy()) == want[0]
    assert slot_decode(SlotDecoder.from_dict(dec.to_dict()), em[0].numpy()) == want[0]


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 7))
def test_crf_decoding_equals_the_models(seed, n_words):
    torch.manual_seed(seed)
    start, trans = _constraints()
    crf = CRF(len(TAGS), start, trans)
    for p in crf.parameters():
        torch.nn.init.normal_(p, std=2.0)
    em = torch.randn(1, n_words, len(TAGS)) * 3
    want = crf_viterbi(crf, em, torch.ones(1, n_words, dtype=torch.bool))[0]
    dec = SlotDecoder.from_constraints(
        True,
        True,
        start,
        trans,
        crf.start_transitions.detach().numpy(),
        crf.transitions.detach().numpy(),
        crf.end_transitions.detach().numpy(),
    )
    assert slot_decode(dec, em[0].numpy()) == want


def test_softmax_decoding_never_predicts_unk():
    em = np.array([[9.0, 1.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 5.0, 0.0, 0.0]])
    dec = SlotDecoder("softmax")
    assert slot_decode(dec, em) == [1, 3]  # argmax without <unk>; unconstrained, so I-city after O is allowed
    probs = slot_word_probabilities(dec, em)
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
    assert np.allclose(slot_word_probabilities(dec, em), brute, atol=1e-12)
    best = max(scores, key=scores.get)
    assert slot_decode(dec, em) == list(best)
    assert slot_confidences(dec, em, list(best)) == pytest.approx([brute[i, t] for i, t in enumerate(best)])


def test_batched_crf_marginals_equal_the_log_space_ones():
    """The scaled probability-space forward-backward of a padded batch (lengths 0..W, BIO-like forbidden
    transitions) gives each utterance's log-space marginals; rows past a length stay zero."""
    from chatft.core.decoding import _crf_marginals, _crf_marginals_batch
    from chatft.core.tags import FORBIDDEN_SCORE

    rng = np.random.default_rng(0)
    batch, width, n_tags = 9, 6, 7
    em = 4 * rng.normal(size=(batch, width, n_tags))
    start, trans, end = (
        rng.normal(size=n_tags),
        3 * rng.normal(size=(n_tags, n_tags)),
        rng.normal(size=n_tags),
    )
    trans[rng.random((n_tags, n_tags)) < 0.4] = FORBIDDEN_SCORE
    trans[:, 0] = 0.0  # a tag reachable from every tag, as O is
    lengths = np.array([0, 1, 2, 3, 4, 5, 6, 6, 3])
    got = _crf_marginals_batch(em, lengths, start, trans, end)
    assert got.shape == (batch, width, n_tags)
    for b, n in enumerate(lengths.tolist()):
        assert np.allclose(got[b, :n], _crf_marginals(em[b, :n], start, trans, end), rtol=0, atol=1e-12)
        assert not got[b, n:].any()


def test_batched_crf_marginals_redo_an_underflowing_utterance_in_log_space():
    """Word 1's best tag (emission 2000) is unreachable from word 0's only tag: every reachable path is ~2000
    nats below it, so the scaled sums are 0 and that utterance is recomputed in log space (no warning)."""
    from chatft.core.decoding import _crf_marginals, _crf_marginals_batch
    from chatft.core.tags import FORBIDDEN_SCORE

    n_tags = 3
    start = np.array([0.0, FORBIDDEN_SCORE, FORBIDDEN_SCORE])
    trans = np.full((n_tags, n_tags), FORBIDDEN_SCORE)
    trans[0, 1] = trans[1, 2] = trans[2, 2] = 0.0
    end = np.zeros(n_tags)
    em = np.zeros((2, 3, n_tags))
    em[0, 1, 0] = 2000.0
    em[1] = np.random.default_rng(1).normal(size=(3, n_tags))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = _crf_marginals_batch(em, np.array([3, 2]), start, trans, end)
    want = _crf_marginals(em[0], start, trans, end)
    assert np.isfinite(want).all() and want.argmax(-1).tolist() == [0, 1, 2]
    assert np.abs(got[0] - want).max() < 1e-12
    assert np.abs(got[1, :2] - _crf_marginals(em[1, :2], start, trans, end)).max() < 1e-12


def test_slot_decoder_of_a_joint_model_matches_torch_decoding():
    from transformers import BertConfig, BertModel

    from chatft.model.decoding import slot_decoder_of

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
        if use_crf:
            want = crf_viterbi(model.crf, em, mask)
        else:
            want = viterbi_decode(
                em.log_softmax(-1), mask, allowed_start=model.allowed_start, allowed_trans=model.allowed_trans
            )
        dec = slot_decoder_of(model)
        got = [slot_decode(dec, em[b, : int(mask[b].sum())].numpy()) for b in range(3)]
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
        text, spans, Decoded(1, [0.0, 0.75, 0.25], tags, conf, False), ["<unk>", "flight", "fare"]
    )
    assert [(s.label, s.value, s.confidence) for s in pred.slots] == [
        ("city", "New York", 0.6),
        ("city", "St. Louis", 0.7),
    ]
    assert all(text[s.start : s.end] == s.value for s in pred.slots)
    d = pred.to_dict()
    assert list(d) == PREDICTION_KEYS
    assert d["intents_top_k"] == [["flight", 0.75], ["fare", 0.25]]
    assert pred.slot_values() == {"city": "St. Louis"}


def test_blank_text_gives_an_empty_prediction():
    pred = build_prediction(" \t ", [], None, ["<unk>", "flight"])
    assert pred.to_dict() == {
        "text": " \t ",
        "words": [],
        "tags": [],
        "intent": None,
        "intent_confidence": 0.0,
        "intents_top_k": [],
        "slots": [],
        "truncated": False,
        "out_of_scope": False,
        "empty": True,
    }


def test_decoder_tags_cut_words_o_and_never_predicts_unk():
    tags = ("<unk>", "O", "B-city", "I-city")
    decoder = Decoder(("<unk>", "a", "b"), tags, SlotDecoder("softmax"))
    intent_logits = np.array([[9.0, 1.0, 2.0], [0.0, 3.0, 1.0]])
    slot_logits = np.zeros((2, 3, 4))
    slot_logits[:, :, 2] = 1.0  # every kept word B-city
    slot_logits[0, 1, 0] = 50.0  # <unk> is never chosen
    got = decoder.decode(intent_logits, slot_logits, kept=[3, 1], n_words=[3, 4], confidences=False)
    assert [d.intent for d in got] == [2, 1]
    assert [d.tags for d in got] == [["B-city"] * 3, ["B-city", "O", "O", "O"]]
    assert [d.truncated for d in got] == [False, True]
    assert [d.tag_confidences for d in got] == [[], []]
    assert len(decoder.decode(intent_logits, slot_logits, [3, 1], [3, 4])[1].tag_confidences) == 1
    intent_only = Decoder(("<unk>", "a", "b")).decode(intent_logits, None, [3, 1], [3, 4])
    assert [(d.intent, d.tags) for d in intent_only] == [(2, []), (1, [])]


def test_decoder_applies_the_oos_decision_and_build_prediction_names_the_fallback():
    """Temperature-scaled probabilities, the out-of-scope call per row, the best-ranked intent kept."""
    from chatft.core.oos import OOSState

    labels = ("<unk>", "a", "b", "oos")
    # threshold mode: the OOS class is never predicted; out of scope when the top in-scope probability < 0.6
    state = OOSState(
        temperature=2.0, mode="threshold", threshold=0.6, oos_index=3, fallback_intent="fallback"
    )
    logits = np.array([[0.0, 4.0, 0.0, 9.0], [0.0, 1.0, 0.8, 0.0]])
    got = Decoder(labels, oos=state).decode(logits, None, [1, 2], [1, 2])
    p0 = 1 / (1 + np.exp(-2.0))  # softmax([4, 0] / 2)[0]
    assert [d.intent for d in got] == [1, 1]
    assert [d.out_of_scope for d in got] == [False, True]
    assert got[0].intent_probs == pytest.approx([0.0, p0, 1 - p0, 0.0], abs=1e-15)
    spans = [("x", 0, 1), ("y", 2, 3)]
    pred = build_prediction("x y", spans, got[1], labels, 2, "fallback")
    assert (pred.intent, pred.out_of_scope) == ("fallback", True)
    assert [n for n, _ in pred.intents_top_k] == ["a", "b"]
    assert pred.intent_confidence == pred.intents_top_k[0][1]
    assert build_prediction("x y", spans, got[1], labels).intent == "nlu_fallback"
    assert build_prediction("x", spans[:1], got[0], labels).intent == "a"


def test_base_predictor_batches_by_length_keeps_order_and_skips_blank_texts(tiny_tokenizer):
    """The shared serving loop, with a fake model: intent = number of words, every word B-city."""
    from chatft.serving.base import BasePredictor

    class Fake(BasePredictor):
        seen: list[tuple[int, ...]] = []

        def logits(self, arrays):
            self.seen.append(arrays["input_ids"].shape)
            n_words = arrays["word_index"].astype(bool).sum(1)
            intent = np.zeros((len(n_words), 12))
            intent[np.arange(len(n_words)), np.minimum(n_words, 11)] = 5.0
            slots = np.zeros((*arrays["word_index"].shape, len(TAGS)))
            slots[..., 2] = 5.0
            return intent, slots, None

    intents = ("<unk>", *(f"n{k}" for k in range(1, 12)))
    p = Fake(tiny_tokenizer, Decoder(intents, tuple(TAGS), SlotDecoder("softmax")), 8, 0)
    texts = ["a b c", "", "a", "  ", "a b c d e f g h i j", "a b"]
    preds = p.batch(texts, batch_size=2)
    assert [q.empty for q in preds] == [False, True, False, True, False, False]
    assert [q.intent for q in preds] == ["n3", None, "n1", None, "n6", "n2"]  # 6 words fit in 8 tokens
    assert [q.truncated for q in preds] == [False, False, False, False, True, False]
    assert preds[4].tags == ["B-city"] * 6 + ["O"] * 4
    assert [len(s) for s in p.seen] == [2, 2] and [s[1] for s in p.seen] == [4, 8]  # 2 batches, by length
    assert [q.to_dict() for q in p.batch(texts, batch_size=1)] == [q.to_dict() for q in preds]
    assert p("   ").empty and len(p.seen) == 2 + 4
