"""Sentence pairs for a contrastive stage (SetFit's recipe): a same-intent and an other-intent partner per utterance.

SetFit (Tunstall et al. 2022, ``sentence_pairs_generation`` in huggingface/setfit before v1.0) fine-tunes a
sentence-transformers encoder on pairs before fitting a classifier head: in each of ``iterations`` rounds,
every training utterance gets one *positive* pair (a random utterance of its own intent, itself included,
target cosine 1) and one *negative* pair (a random utterance of another intent, target 0). With k
utterances an intent that gives far more pairs than utterances (``2 x iterations x N``), which is what
lets a few examples move an encoder. :mod:`chatft.training.contrastive` trains on these pairs.

Pairs are index pairs into the training split, not texts, so they can be built and tested without a
tokenizer; torch-free, seeded with a numpy ``Generator`` (no global random state).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from chatft.core.formats import Example

#: Target cosine similarity of a pair of the same intent, and of two different intents (SetFit's labels).
POSITIVE, NEGATIVE = 1.0, 0.0


def sentence_pairs(labels: Sequence[int | str], iterations: int, seed: int) -> list[tuple[int, int, float]]:
    """``(i, j, target)`` pairs over ``labels`` (one label per training utterance), shuffled.

    Round by round, for each utterance ``i`` in order: ``(i, random same-label j, 1.0)`` then
    ``(i, random other-label j, 0.0)``; an utterance whose label is the only one present gets no negative
    (there is none to draw). The whole list is then shuffled with the same generator, as SetFit's data loader
    does, so a truncated list (a step cap) is still a random sample of every round.
    """
    if iterations < 0:
        raise ValueError(f"iterations must be >= 0, got {iterations}")
    labels = list(labels)
    if not labels or iterations == 0:
        return []
    rng = np.random.default_rng(seed)
    values = np.array([str(x) for x in labels])
    same = {value: np.flatnonzero(values == value) for value in dict.fromkeys(values)}
    other = {value: np.flatnonzero(values != value) for value in same}
    pairs: list[tuple[int, int, float]] = []
    for _ in range(iterations):
        for i, value in enumerate(values):
            pairs.append((i, int(rng.choice(same[value])), POSITIVE))
            if other[value].size:
                pairs.append((i, int(rng.choice(other[value])), NEGATIVE))
    order = rng.permutation(len(pairs))
    return [pairs[k] for k in order]


#: Training utterances per intent (on average) up to which a training set counts as few-shot: the bound of
#: ``fit``'s few-shot encoder advice, intent pooling, intent head rate and intent-name utterances, and the
#: contrastive stage's default ``max_per_intent``.
FEW_SHOT_PER_INTENT = 16.0


def is_few_shot(n_utterances: int, n_intents: int, per_intent: float = FEW_SHOT_PER_INTENT) -> bool:
    """A few-shot training set: at least 2 intents and at most ``per_intent`` utterances per intent on average
    (the rule of ``fit``'s few-shot encoder advice, pooling, intent head rate, intent-name utterances and
    contrastive stage; the counts are :func:`in_scope_shape`'s, out-of-scope utterances left out)."""
    return n_intents >= 2 and n_utterances / n_intents <= per_intent


def in_scope_shape(intents: Sequence[int | str], skip: int | str | None = None) -> tuple[int, int]:
    """(utterances, distinct intents) of a training set's intent labels, ``skip`` (the out-of-scope label) left
    out: what :func:`is_few_shot` is asked about. Out-of-scope utterances are no intent's examples, so a bot's
    100 of them make its 10-shot intents no less few-shot, and their label is not one more intent."""
    kept = [x for x in intents if x != skip] if skip is not None else list(intents)
    return len(kept), len(set(kept))


def mean_per_label(labels: Sequence[int | str]) -> float:
    """Training utterances per label, on average (0.0 for no labels): how few-shot a training set is."""
    return len(labels) / len(set(labels)) if len(labels) else 0.0


def label_name_words(label: str) -> list[str]:
    """A label's name as lowercase words (``pto_request`` -> ``["pto", "request"]``; ``bookFlight`` ->
    ``["book", "flight"]``; ``atis_flight#atis_airfare`` -> ``["atis", "flight", "atis", "airfare"]``), so the
    name can stand in the pairs as one more utterance of its intent. Empty for a name with no letters or digits.
    """
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", label)
    return [w.lower() for w in re.split(r"[^0-9A-Za-z']+", spaced) if w]


def label_name_examples(train: Sequence[Example], skip: str | None = None) -> list[Example]:
    """One more training utterance per intent of ``train``: its name as words (:func:`label_name_words`),
    every word tagged ``O`` when ``train`` has slot tags, in sorted intent order.

    On a few-shot set the name is a good share of what is known about an intent (``pto_request`` is one of
    ten utterances, not one of a thousand). ``skip`` (the out-of-scope label) is left out: its name
    describes no request. Names without a letter or digit are left out too; a name that is already a
    training utterance of its intent gives nothing new and is left out.
    """
    has_tags = bool(train) and train[0].tags is not None
    seen = {(ex.words, ex.intent) for ex in train}
    out = []
    for intent in sorted({ex.intent for ex in train} - {skip}):
        words = tuple(label_name_words(intent))
        if words and (words, intent) not in seen:
            out.append(Example(words, ("O",) * len(words) if has_tags else None, intent))
    return out
