"""Decoding a padded batch at once (:meth:`chatft.core.decoding.Decoder.decode`) gives exactly what decoding
each utterance alone gives: same intents, tags, confidences and word probabilities, bit for bit.

The reference below is the per-utterance loop ``Decoder.decode`` ran before it was vectorised (with the
per-utterance slot decoders of ``tests/oracles.py``); the inputs
cover every slot decoder mode, ragged and truncated utterances, tied scores (integer logits) and a batch
whose best allowed path lies 10^4 below a forbidden one (the batched Viterbi's dense fallback). Torch-free.
"""

from __future__ import annotations

import numpy as np
import pytest

from chatft.core.decoding import Decoded, Decoder, SlotDecoder, intent_probabilities
from chatft.core.tags import OUTSIDE, decoding_transitions

from .oracles import slot_confidences, slot_decode, slot_word_probabilities

TAGS = ("<unk>", "O", "B-city", "I-city", "B-date", "I-date", "B-time", "I-time", "B-code")
INTENTS = ("<unk>", "flight", "fare", "airline")


def _slot_decoder(mode: str, rng: np.random.Generator) -> SlotDecoder:
    if mode == "softmax":
        return SlotDecoder("softmax")
    allowed_start, allowed_trans = decoding_transitions(TAGS)
    n = len(TAGS)
    if mode == "softmax_bio":
        return SlotDecoder.from_constraints(False, True, allowed_start, allowed_trans)
    if mode == "crf":  # learned scores, forbidden entries penalised
        return SlotDecoder.from_constraints(
            True, True, allowed_start, allowed_trans, *(rng.normal(size=s) for s in (n, (n, n), n))
        )
    # unconstrained CRF: every column dense
    return SlotDecoder("crf", *(rng.normal(size=s) for s in (n, (n, n), n)))


def _one_by_one(decoder: Decoder, intent_logits, slot_logits, kept, n_words) -> list[Decoded]:
    """The per-utterance loop of ``Decoder.decode`` before batching (confidences and word probabilities on)."""
    probs, out_of_scope = decoder.intents(intent_logits)
    out = []
    for b, (n_kept, n) in enumerate(zip(kept, n_words, strict=True)):
        emissions = np.asarray(slot_logits[b, :n_kept], dtype=np.float64)
        path = slot_decode(decoder.slots, emissions)
        out.append(
            Decoded(
                int(probs[b].argmax()),
                probs[b].tolist(),
                [decoder.slot_labels[t] for t in path] + [OUTSIDE] * (n - n_kept),
                slot_confidences(decoder.slots, emissions, path),
                n_kept < n,
                out_of_scope=bool(out_of_scope[b]),
                tag_probs=slot_word_probabilities(decoder.slots, emissions),
            )
        )
    return out


def _assert_same(got: list[Decoded], want: list[Decoded]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert (g.intent, g.intent_probs, g.tags, g.truncated, g.out_of_scope) == (
            w.intent,
            w.intent_probs,
            w.tags,
            w.truncated,
            w.out_of_scope,
        )
        assert g.tag_confidences == w.tag_confidences
        assert g.tag_probs.shape == w.tag_probs.shape and np.array_equal(g.tag_probs, w.tag_probs)


@pytest.mark.parametrize("mode", ["softmax", "softmax_bio", "crf", "crf_dense"])
@pytest.mark.parametrize("ties", [False, True])
def test_batch_decoding_equals_decoding_each_utterance(mode, ties):
    rng = np.random.default_rng(len(mode) + 10 * ties)
    decoder = Decoder(INTENTS, TAGS, _slot_decoder(mode, rng))
    batch, width = 7, 9
    kept = [9, 1, 4, 9, 6, 3, 2]  # ragged; row 1 has a single word
    n_words = [9, 1, 6, 12, 6, 3, 2]  # rows 2 and 3 were truncated
    slot_logits = rng.normal(scale=3.0, size=(batch, width, len(TAGS))).astype(np.float32)
    intent_logits = rng.normal(size=(batch, len(INTENTS))).astype(np.float32)
    if ties:  # many equal scores: the first index must win, as in the per-utterance argmax
        slot_logits = np.round(slot_logits / 3).astype(np.float32)
        intent_logits = np.round(intent_logits).astype(np.float32)
    got = decoder.decode(intent_logits, slot_logits, kept, n_words, word_probabilities=True)
    _assert_same(got, _one_by_one(decoder, intent_logits, slot_logits, kept, n_words))
    assert [len(d.tags) for d in got] == n_words


def test_forbidden_path_far_ahead_takes_the_dense_step():
    """An ``I-city`` whose only allowed predecessors score 10^4 below the rest: the sparse maximization is not
    provably exact there, so the step runs dense, and the result still equals the per-utterance one."""
    rng = np.random.default_rng(3)
    decoder = Decoder(INTENTS, TAGS, _slot_decoder("crf", rng))
    slot_logits = np.zeros((2, 3, len(TAGS)))
    slot_logits[0, 0, :] = 2e4  # every tag but B-city and I-city far ahead at word 0
    slot_logits[0, 0, [2, 3]] = 0.0
    slot_logits[0, 1, 3] = 3e4  # and I-city hugely preferred at word 1
    slot_logits[1] = rng.normal(size=(3, len(TAGS)))
    intent_logits = np.zeros((2, len(INTENTS)))
    got = decoder.decode(intent_logits, slot_logits, [3, 2], [3, 2], word_probabilities=True)
    _assert_same(got, _one_by_one(decoder, intent_logits, slot_logits, [3, 2], [3, 2]))


def test_batch_without_confidences_or_slots():
    rng = np.random.default_rng(1)
    decoder = Decoder(INTENTS, TAGS, _slot_decoder("softmax_bio", rng))
    slot_logits = rng.normal(size=(2, 4, len(TAGS)))
    intent_logits = rng.normal(size=(2, len(INTENTS)))
    got = decoder.decode(intent_logits, slot_logits, [4, 2], [5, 2], confidences=False)
    want = _one_by_one(decoder, intent_logits, slot_logits, [4, 2], [5, 2])
    assert [(d.tags, d.tag_confidences, d.tag_probs) for d in got] == [(w.tags, [], None) for w in want]
    intent_only = Decoder(INTENTS).decode(intent_logits, None, [4, 2], [5, 2])
    assert [(d.intent, d.tags, d.tag_confidences) for d in intent_only] == [
        (int(p.argmax()), [], []) for p in intent_probabilities(intent_logits)
    ]


@pytest.mark.parametrize("batch_size", [0, -1])
def test_a_batch_size_below_one_is_a_one_line_error(tiny_tokenizer, batch_size):
    # Before: 0 raised range()'s "arg 3 must not be zero"; -1 returned [None] for every utterance, silently.
    from chatft.core.errors import ConfigError
    from chatft.core.inference_loop import decode_words

    def never(arrays):
        raise AssertionError("no batch should run")

    with pytest.raises(ConfigError) as err:
        decode_words(
            [["hi"], ["book", "a", "flight"]], tiny_tokenizer, never, None, 16, 0, batch_size=batch_size
        )
    assert str(err.value) == f"batch_size must be >= 1 (utterances per forward pass), got {batch_size}"
