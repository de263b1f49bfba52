"""Carve missing splits out of train, stratified by intent, reproducibly, keeping the input order.

Written here rather than taken from scikit-learn (not a dependency): ``train_test_split(stratify=...)``
refuses classes with a single example, and chatbot data has them. Rule: each carved split gets
``round(N * fraction)`` examples in all, each intent contributes in proportion to its size (largest
remainders first, ties to the intent seen first), and every intent keeps at least one example in train.
Which examples of an intent go where is drawn with ``random.Random(seed)``; each split then lists its
examples in input order.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from chatft.core.errors import ConfigError

#: Fewer dev utterances than this make checkpoint choice, early stopping and calibration noisy: one
#: utterance is then worth more than 2 points of dev accuracy, and the 95% interval of a 90% accuracy
#: is about +-8 points (normal approximation, 1.96 * sqrt(0.9 * 0.1 / 50)). ``data convert`` warns below it.
MIN_DEV_UTTERANCES = 50


def parse_fractions(text: str, names: Sequence[str]) -> list[float]:
    """``"0.8,0.1,0.1"`` -> floats, one per name in ``names`` (train first), summing to 1."""
    try:
        values = [float(x) for x in text.split(",")]
    except ValueError:
        raise ConfigError(f"--split {text!r}: expected comma-separated fractions like 0.8,0.1,0.1") from None
    if len(values) != len(names):
        raise ConfigError(
            f"--split {text!r}: expected {len(names)} fractions ({','.join(names)}) for the splits to carve"
        )
    if any(v < 0 for v in values) or values[0] <= 0 or not math.isclose(sum(values), 1.0, abs_tol=1e-6):
        raise ConfigError(f"--split {text!r}: fractions must be >= 0, train > 0, and sum to 1")
    return values


def carve(intents: Sequence[str], fractions: Sequence[float], seed: int = 0) -> list[list[int]]:
    """Indices (ascending) of each split; ``fractions[0]`` is train, the others the splits carved from it."""
    n = len(intents)
    classes: dict[str, list[int]] = {}
    for i, intent in enumerate(intents):
        classes.setdefault(intent, []).append(i)
    counts = {c: [0] * len(fractions) for c in classes}
    for s in range(1, len(fractions)):
        target = round(n * fractions[s])
        remainders = []
        for order, (c, idx) in enumerate(classes.items()):
            quota = len(idx) * fractions[s]
            room = len(idx) - 1 - sum(counts[c][1:])  # keep one example of every intent in train
            base = min(math.floor(quota), room)
            counts[c][s] = base
            remainders.append((-(quota - base), order, c))
        missing = target - sum(counts[c][s] for c in classes)
        for _, _, c in sorted(remainders):
            if missing <= 0:
                break
            if len(classes[c]) - 1 - sum(counts[c][1:]) > 0:
                counts[c][s] += 1
                missing -= 1
    rng = random.Random(seed)
    splits: list[list[int]] = [[] for _ in fractions]
    for c, idx in classes.items():
        order = list(idx)
        rng.shuffle(order)
        pos = 0
        for s in range(1, len(fractions)):
            splits[s].extend(order[pos : pos + counts[c][s]])
            pos += counts[c][s]
        splits[0].extend(order[pos:])
    return [sorted(split) for split in splits]
