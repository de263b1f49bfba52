"""Word attributions without torch: occlusion (erasure), the explanation object, and ERASER's faithfulness.

Why did the model say ``atis_airfare``? Every function here works on a **score function**: words of many
utterances in, one :class:`~chatft.core.decoding.Decoded` per utterance out (intent probabilities and, for
slot models, each kept word's probabilities over the tags). Both predictors give one
(:meth:`chatft.serving.base.BasePredictor.decode_words` with ``word_probabilities=True``), and so does the
``predict`` writer, so occlusion is the same code on PyTorch and onnxruntime and never imports torch.

**Occlusion** (:func:`occlusion`): the utterance and every copy of it with one word erased (removed, not
masked: what ERASER's metrics remove too) go through the model in one batch. A word's intent score is
``p(intent | utterance) - p(intent | utterance without the word)``: positive when the word pushed the model
towards that intent. A slot's support is the mean, over its words, of the probability of the tag each
word got (``B-x`` then ``I-x``); an erased slot word counts 0 (the slot is gone with it), so a slot's own
words score highest. A word's slot score is the support lost when it is erased.

**The explanation object** (:func:`explanation_dict`): ``method``, ``words``, ``intent``: ``{"name",
"probability", "scores"}`` (one score per word, in order), ``slots``: one ``{"label", "start", "end",
"text", "words", "scores"}`` per predicted slot (``words``: its word indices). Integrated Gradients on the
PyTorch path (:mod:`chatft.model.attribution`) fills the same object.

**Faithfulness** (:func:`eraser_scores`): ERASER's comprehensiveness (the probability drop when the top-k %
words are removed; higher is better) and sufficiency (the drop when only they are kept; lower is better),
averaged over k = 10, 20, 30, 40, 50 % (DeYoung et al., 2020, "ERASER: A Benchmark to Evaluate Rationalized
NLP Models"). ``benchmarks/faithfulness.py`` measures every method with it against random attributions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from chatft.core.decoding import Decoded
from chatft.core.errors import ConfigError
from chatft.core.tags import bio_chunks
from chatft.core.text import split_words

if TYPE_CHECKING:
    from chatft.core.prediction import Prediction

__all__ = [
    "DEFAULT_METHOD",
    "ERASER_BINS",
    "METHODS",
    "ScoreFunction",
    "SlotTarget",
    "check_request",
    "eraser_scores",
    "explain_prediction",
    "explanation_dict",
    "occlusion",
    "random_scores",
    "slot_targets",
    "top_k_count",
]

#: Words of many utterances -> one decoded utterance each, with ``tag_probs`` for slot models.
ScoreFunction = Callable[[Sequence[Sequence[str]]], list[Decoded]]

#: Every method's name: occlusion runs on both predictors, integrated_gradients on the PyTorch one.
METHODS = ("occlusion", "integrated_gradients")
#: The method used when none is named, chosen on ERASER faithfulness and cost (docs/results.md).
DEFAULT_METHOD = "occlusion"
#: The k of ERASER's top-k % rationales that :func:`eraser_scores` averages over.
ERASER_BINS = (0.1, 0.2, 0.3, 0.4, 0.5)


class SlotTarget:
    """One predicted slot to explain: its type, its words ``[start, end)`` and the tag index of each word."""

    __slots__ = ("label", "start", "end", "tag_ids")

    def __init__(self, label: str, start: int, end: int, tag_ids: Sequence[int]) -> None:
        self.label, self.start, self.end, self.tag_ids = label, start, end, tuple(tag_ids)

    def support(self, tag_probs: np.ndarray | None, kept: Sequence[int | None]) -> float:
        """Mean probability of the slot's tags over its words; ``kept[k]`` is where slot word ``start + k``
        sits in the scored utterance (None: erased, or cut by truncation, counts 0)."""
        total = 0.0
        for k, tag in enumerate(self.tag_ids):
            pos = kept[self.start + k]
            if pos is not None and tag_probs is not None and pos < len(tag_probs):
                total += float(tag_probs[pos][tag])
        return total / len(self.tag_ids)


def slot_targets(tags: Sequence[str], slot_labels: Sequence[str]) -> list[SlotTarget]:
    """The predicted slots of a tag sequence (conlleval's chunks, as predictions list them) as targets."""
    index = {label: i for i, label in enumerate(slot_labels)}
    return [
        SlotTarget(typ, i, j, [index[tags[k]] for k in range(i, j)]) for typ, i, j in bio_chunks(list(tags))
    ]


def occlusion(
    words: Sequence[str], score: ScoreFunction, intent: int, slots: Sequence[SlotTarget] = ()
) -> tuple[list[float], list[list[float]]]:
    """(intent scores, one score list per slot): one number per word, what erasing it costs (see the module
    docstring). One batch: the utterance and its ``len(words)`` one-word-erased copies."""
    n = len(words)
    variants = [list(words)] + [list(words[:i]) + list(words[i + 1 :]) for i in range(n)]
    decoded = score(variants)
    full = decoded[0]
    base = full.intent_probs[intent]
    intent_scores = [float(base - d.intent_probs[intent]) for d in decoded[1:]]
    identity = list(range(n))
    slot_scores = []
    for slot in slots:
        full_support = slot.support(full.tag_probs, identity)
        row = []
        for i, d in enumerate(decoded[1:]):
            kept = [None if k == i else (k if k < i else k - 1) for k in range(n)]
            row.append(full_support - slot.support(d.tag_probs, kept))
        slot_scores.append(row)
    return intent_scores, slot_scores


def explanation_dict(
    method: str,
    words: Sequence[str],
    spans: Sequence[tuple[str, int, int]],
    intent_name: str,
    intent_probability: float,
    intent_scores: Sequence[float],
    slots: Sequence[SlotTarget] = (),
    slot_scores: Sequence[Sequence[float]] = (),
    text: str = "",
) -> dict:
    """The JSON-ready explanation object (the module docstring lists its keys). ``spans`` are the words with
    their character offsets in ``text`` (:func:`chatft.core.text.split_words`)."""
    out_slots = []
    for slot, row in zip(slots, slot_scores, strict=True):
        start, end = spans[slot.start][1], spans[slot.end - 1][2]
        out_slots.append(
            {
                "label": slot.label,
                "start": start,
                "end": end,
                "text": text[start:end],
                "words": list(range(slot.start, slot.end)),
                "scores": [float(s) for s in row],
            }
        )
    return {
        "method": method,
        "words": list(words),
        "intent": {
            "name": intent_name,
            "probability": float(intent_probability),
            "scores": [float(s) for s in intent_scores],
        },
        "slots": out_slots,
    }


#: ``(words, method, intent index, slot targets) -> (intent scores, slot scores)``: a backend's attribution.
Attribute = Callable[[Sequence[str], str, int, Sequence[SlotTarget]], tuple[list[float], list[list[float]]]]


def check_request(
    method: str | None, intent: str | None, available: Sequence[str], intent_labels: Sequence[str]
) -> str:
    """``method`` (None: :data:`DEFAULT_METHOD`) when the backend runs it (``available``) and ``intent`` is
    None or one the model predicts; else a one-line :class:`~chatft.core.errors.ConfigError`."""
    method = method or DEFAULT_METHOD
    if method not in METHODS:
        raise ConfigError(f"unknown explanation method {method!r} (choose from {', '.join(METHODS)})")
    if method not in available:
        raise ConfigError(
            f"{method} needs the PyTorch model (a checkpoint); this model explains with {', '.join(available)}"
        )
    if intent is not None and (intent not in intent_labels or intent == intent_labels[0]):
        shown = ", ".join(intent_labels[1:21]) + (" ..." if len(intent_labels) > 21 else "")
        raise ConfigError(f"unknown intent {intent!r} to explain: the model predicts {shown}")
    return method


def explain_prediction(
    pred: Prediction,
    method: str,
    attribute: Attribute,
    score: ScoreFunction,
    intent_labels: Sequence[str],
    slot_labels: Sequence[str],
    intent: str | None = None,
) -> dict:
    """The explanation object of a prediction (``method`` already checked by :func:`check_request`).

    The explained intent is ``intent``, else the predicted one; an out-of-scope prediction explains its
    best-ranked intent (the one the fallback replaced). An empty prediction gets no scores.
    """
    if pred.empty:
        return explanation_dict(method, [], [], intent, 0.0, [])
    name = intent or (pred.intents_top_k[0][0] if pred.out_of_scope else pred.intent)
    index = list(intent_labels).index(name)
    targets = slot_targets(pred.tags, slot_labels) if pred.tags else []
    scores, slot_scores = attribute(pred.words, method, index, targets)
    probability = dict(pred.intents_top_k).get(name)
    if probability is None:  # not among the listed top k: ask the model
        probability = score([pred.words])[0].intent_probs[index]
    return explanation_dict(
        method, pred.words, split_words(pred.text), name, probability, scores, targets, slot_scores, pred.text
    )


def random_scores(n_words: int, seed: int) -> list[float]:
    """Random attributions (the faithfulness baseline): ``n_words`` uniform numbers from ``seed``."""
    return np.random.default_rng(seed).random(n_words).tolist()


def top_k_count(n_words: int, fraction: float) -> int:
    """How many words the top ``fraction`` of ``n_words`` is: rounded up, at least one."""
    return max(1, math.ceil(fraction * n_words - 1e-9))


def eraser_scores(
    words_list: Sequence[Sequence[str]],
    scores_list: Sequence[Sequence[float]],
    intents: Sequence[int],
    score: ScoreFunction,
    bins: Sequence[float] = ERASER_BINS,
) -> tuple[list[float], list[float]]:
    """(comprehensiveness, sufficiency) of each utterance, averaged over ``bins``, for the intent ``intents[u]``.

    For each bin the top-k words (ties: the earlier word first) are the rationale; comprehensiveness is
    ``p(full) - p(without the rationale)``, sufficiency ``p(full) - p(rationale only)``, words kept in their
    order. An utterance with every word in the rationale gets an empty complement (what the model says with
    no words). All variants of all utterances go through ``score`` in one call.
    """
    variants: list[list[str]] = []
    for words, scores in zip(words_list, scores_list, strict=True):
        order = sorted(range(len(words)), key=lambda i: (-scores[i], i))
        variants.append(list(words))
        for fraction in bins:
            top = set(order[: top_k_count(len(words), fraction)])
            variants.append([w for i, w in enumerate(words) if i not in top])
            variants.append([w for i, w in enumerate(words) if i in top])
    decoded = score(variants)
    width = 1 + 2 * len(bins)
    comp, suff = [], []
    for u, intent in enumerate(intents):
        rows = decoded[u * width : (u + 1) * width]
        full = rows[0].intent_probs[intent]
        comp.append(float(np.mean([full - rows[1 + 2 * b].intent_probs[intent] for b in range(len(bins))])))
        suff.append(float(np.mean([full - rows[2 + 2 * b].intent_probs[intent] for b in range(len(bins))])))
    return comp, suff
