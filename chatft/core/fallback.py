"""The default fallback: every bot rejects what it is unsure of, without out-of-scope examples (no torch).

Rasa gives every assistant a FallbackClassifier: the fallback intent when the top confidence is below
``threshold`` (0.3) or the top two are closer than ``ambiguity_threshold`` (0.1). chatft does the same on its
calibrated probabilities (:class:`chatft.core.oos.OOSState`, fields ``threshold`` with the ``msp`` score and
``ambiguity``), so ``test``, ``predict``, both predictors, ``serve`` and ``chat`` apply one decision.

How the two thresholds are set (:func:`default_fallback`), when dev has no out-of-scope examples (with them,
the dev-chosen modes of :mod:`chatft.training.calibration` apply instead):

* the ambiguity threshold: the documented default :data:`~chatft.core.oos.DEFAULT_AMBIGUITY_THRESHOLD`, or
  the value given;
* the confidence threshold: the value given; else, when dev holds at least
  :data:`~chatft.core.oos.MIN_THRESHOLD_DEV` in-scope utterances, the highest threshold that costs at most
  ``max_acc_drop`` of dev in-scope accuracy on top of what the ambiguity threshold costs (rejecting a wrong
  answer costs nothing); else the documented default :data:`~chatft.core.oos.DEFAULT_CONFIDENCE_THRESHOLD`.

Each choice comes with the one line ``fit`` prints.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chatft.core.oos import DEFAULT_AMBIGUITY_THRESHOLD, DEFAULT_CONFIDENCE_THRESHOLD, MIN_THRESHOLD_DEV

__all__ = ["Fallback", "default_fallback"]


@dataclass(frozen=True)
class Fallback:
    """The two thresholds and the line that says where they came from."""

    confidence: float
    ambiguity: float
    note: str


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def default_fallback(
    confidences,
    margins,
    correct,
    max_acc_drop: float = 0.01,
    confidence_threshold: float | None = None,
    ambiguity_threshold: float | None = None,
) -> Fallback:
    """The fallback thresholds from dev's in-scope utterances (see the module docstring).

    ``confidences``: calibrated top-1 probabilities; ``margins``: top-1 minus top-2; ``correct``: argmax right.
    """
    conf = np.asarray(confidences, dtype=np.float64)
    margin = np.asarray(margins, dtype=np.float64)
    ok = np.asarray(correct, dtype=bool)
    n = len(conf)
    amb = DEFAULT_AMBIGUITY_THRESHOLD if ambiguity_threshold is None else float(ambiguity_threshold)
    amb_src = "the default" if ambiguity_threshold is None else "given"
    if confidence_threshold is not None:
        t = float(confidence_threshold)
        why = f"confidence threshold given, ambiguity threshold {amb_src}"
    elif n < MIN_THRESHOLD_DEV:
        t = DEFAULT_CONFIDENCE_THRESHOLD
        why = (
            f"the default thresholds: dev has {n} in-scope utterances, choosing on dev needs at least "
            f"{MIN_THRESHOLD_DEV}"
        )
        if ambiguity_threshold is not None:
            why = (
                f"the default confidence threshold and the given ambiguity threshold: dev has {n} in-scope "
                f"utterances, choosing on dev needs at least {MIN_THRESHOLD_DEV}"
            )
    else:
        kept = ok & (margin >= amb)  # right answers the ambiguity threshold leaves
        budget = int(np.floor(max_acc_drop * n + 1e-9))  # right answers the confidence threshold may reject
        right = np.sort(conf[kept])
        if budget >= len(right):
            t = float(right[-1]) if len(right) else DEFAULT_CONFIDENCE_THRESHOLD
        else:
            # Reject the `budget` least confident right answers, never the next one: halfway between.
            below = right[budget - 1] if budget else -np.inf
            t = float((below + right[budget]) / 2) if budget else float(right[0])
            t = max(t, 0.0)
        why = (
            f"confidence threshold chosen on {n} dev utterances, rejecting at most {budget} right answers; "
            f"ambiguity threshold {amb_src}"
        )
    return Fallback(t, amb, f"fallback: confidence < {_fmt(t)} or top-1 minus top-2 < {_fmt(amb)} ({why})")
