"""Calibrated confidence and out-of-scope (OOS) detection, in numpy (no torch).

A deployed assistant gets messages that fit none of its intents. This module holds the math that decides
"out of scope", shared by training (where it is fitted on dev), ``predict``, both predictors and chat:

* **Temperature scaling** (Guo et al. 2017): logits / T, with one scalar T fitted on dev NLL at the end of
  ``fit`` (:mod:`chatft.training.calibration`); here only applied.
* **Scores**, higher = more in-scope:
  ``msp`` the max calibrated softmax probability over in-scope intents (the usual baseline);
  ``energy`` T x logsumexp(in-scope logits / T), the negative free energy (Liu et al. 2020, "Energy-based
  out-of-distribution detection"): it follows the input density and is less saturated than the softmax;
  ``mahalanobis`` minus the smallest Mahalanobis distance of the pooled encoder feature to an intent's mean,
  under one covariance shared by all intents and fitted on train features (Lee et al. 2018; Podolskiy et al.
  2021, "Revisiting Mahalanobis Distance for Transformer-Based Out-of-Domain Detection": strongest on CLINC150).
* **Modes**, when the training data has examples of the OOS label: ``class`` (OOS is an ordinary intent:
  out of scope when it wins the argmax), ``threshold`` (the OOS logit is ignored; out of scope when the
  score is below a threshold), ``both`` (either). Without OOS training data only ``threshold`` exists.
* **Threshold selection on dev only** (:func:`choose_threshold`): the threshold that maximizes dev OOS recall
  while dev in-scope accuracy stays within ``max_acc_drop`` of its value without OOS detection.
* **The default fallback** (no OOS examples needed, as Rasa's FallbackClassifier): out of scope when the
  calibrated confidence is below a confidence threshold or the top-1 minus top-2 probability is below an
  ambiguity threshold (:attr:`OOSState.ambiguity`). Documented defaults, :data:`DEFAULT_CONFIDENCE_THRESHOLD`
  and :data:`DEFAULT_AMBIGUITY_THRESHOLD`; the confidence threshold is chosen on dev when dev holds at least
  :data:`MIN_THRESHOLD_DEV` in-scope utterances.
* **Honest sizes**: the temperature is fitted only where dev can place it (:func:`fit_temperature_on_dev`:
  at least :data:`MIN_CALIBRATION_DEV` in-scope utterances, some right and some wrong, and T bounded to
  :data:`TEMPERATURE_BOUNDS`); otherwise T = 1 and one line says why. An ECE is reported only from at least
  :data:`MIN_ECE_SAMPLES` utterances (:func:`ece_note`).

:class:`OOSState` is what a checkpoint (key ``chatft_oos``) and an ONNX export (``oos.json``) store.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "DEFAULT_AMBIGUITY_THRESHOLD",
    "DEFAULT_CONFIDENCE_THRESHOLD",
    "FALLBACK_INTENT",
    "MIN_CALIBRATION_DEV",
    "MIN_ECE_SAMPLES",
    "MIN_THRESHOLD_DEV",
    "TEMPERATURE_BOUNDS",
    "TemperatureFit",
    "METHODS",
    "MODES",
    "OOSState",
    "OperatingPoint",
    "apply_temperature",
    "auroc",
    "choose_threshold",
    "ece_note",
    "energy_score",
    "expected_calibration_error",
    "fit_shared_gaussian",
    "fit_temperature",
    "fit_temperature_on_dev",
    "fpr_at_tpr",
    "mahalanobis_distances",
    "mahalanobis_score",
    "margin_score",
    "msp_score",
    "operating_point",
    "precision_matrix",
    "reliability_bins",
]

#: Rasa's name for the intent given to an out-of-scope utterance; ``--oos.fallback_intent`` changes it.
FALLBACK_INTENT = "nlu_fallback"
METHODS = ("msp", "energy", "mahalanobis")
MODES = ("class", "threshold", "both")

#: The temperature is fitted on dev only with at least this many in-scope dev utterances (fewer: T = 1).
MIN_CALIBRATION_DEV = 50
#: A fitted temperature never leaves this interval (the dev likelihood can ask for 0.107 or 7,409,733).
TEMPERATURE_BOUNDS = (0.1, 10.0)
#: The default fallback: out of scope below this calibrated confidence ... Chosen on dev-like data, never on a
#: test split: 10-utterances-per-intent bots of three CLINC150 domains (travel, home, work; not banking, the
#: acceptance bot), read on their val + oos_val splits, by a rule fixed before looking (the largest threshold
#: whose in-scope accepted-and-right stays within 5 points of the accuracy; benchmarks/fallback_default.py).
#: 0.35 with the recipe of 2026-12-02; rerun on 2026-12-05 with today's recipe (gradients clipped, the few-shot
#: intent head at 3e-3), whose more confident models rejected only 48 % of oos_val at 0.35, the same rule gave
#: 0.70 (Rasa's FallbackClassifier default is 0.3).
DEFAULT_CONFIDENCE_THRESHOLD = 0.70
#: ... or when the top-1 minus top-2 probability is below this (Rasa's ``ambiguity_threshold`` default).
DEFAULT_AMBIGUITY_THRESHOLD = 0.1
#: The confidence threshold is chosen on dev with at least this many in-scope dev utterances (then 1 point
#: of dev accuracy, the default ``max_acc_drop``, is at least one utterance); fewer: the default.
MIN_THRESHOLD_DEV = 100
#: An ECE (15 bins) is reported only from at least this many utterances: from 12 right answers it reads 0.
MIN_ECE_SAMPLES = 100


# ---- scores ------------------------------------------------------------------------------------------
def apply_temperature(logits, temperature: float) -> np.ndarray:
    """``logits / temperature`` in float64 (T > 1 softens an over-confident softmax)."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    return np.asarray(logits, dtype=np.float64) / float(temperature)


def _masked(logits: np.ndarray, exclude: Sequence[int]) -> np.ndarray:
    x = np.array(logits, dtype=np.float64)
    if x.shape[-1] > 1:
        for i in exclude:
            if i is not None:
                x[..., i] = -np.inf
    return x


def _softmax(x: np.ndarray) -> np.ndarray:
    z = x - np.max(x, axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _logsumexp(x: np.ndarray) -> np.ndarray:
    m = np.max(x, axis=-1, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(axis=-1, keepdims=True)))[..., 0]


def msp_score(probs: np.ndarray, in_scope: Sequence[int]) -> np.ndarray:
    """Max probability over the in-scope intents ``in_scope`` (probabilities already calibrated)."""
    return np.asarray(probs, dtype=np.float64)[..., list(in_scope)].max(axis=-1)


def margin_score(probs: np.ndarray, in_scope: Sequence[int]) -> np.ndarray:
    """Top-1 minus top-2 probability over the in-scope intents (the top-1 itself when there is one intent)."""
    p = np.asarray(probs, dtype=np.float64)[..., list(in_scope)]
    if p.shape[-1] < 2:
        return p[..., 0]
    top = np.sort(p, axis=-1)[..., -2:]
    return top[..., 1] - top[..., 0]


def energy_score(logits, temperature: float, in_scope: Sequence[int]) -> np.ndarray:
    """Negative free energy ``T * logsumexp(logits[in_scope] / T)`` (higher = more in-scope)."""
    x = apply_temperature(np.asarray(logits)[..., list(in_scope)], temperature)
    return float(temperature) * _logsumexp(x)


def fit_shared_gaussian(features, labels, classes: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Class means ``[C, D]`` (rows in ``classes`` order) and the covariance ``[D, D]`` shared by all classes.

    The covariance is the maximum-likelihood one of the class-centred features (the linear discriminant
    analysis estimate), as Lee et al. and Podolskiy et al. fit it. Utterances of other classes are ignored.
    """
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels)
    means, centred = [], []
    for c in classes:
        rows = x[y == c]
        if not len(rows):
            raise ValueError(f"class {c} has no training features")
        mu = rows.mean(axis=0)
        means.append(mu)
        centred.append(rows - mu)
    z = np.concatenate(centred)
    return np.stack(means), z.T @ z / len(z)


def precision_matrix(covariance) -> np.ndarray:
    """Inverse of the shared covariance (pseudo-inverse with a tiny ridge: features can be rank-deficient)."""
    cov = np.asarray(covariance, dtype=np.float64)
    ridge = 1e-6 * float(np.trace(cov)) / max(1, cov.shape[0])
    return np.linalg.pinv(cov + ridge * np.eye(cov.shape[0]), hermitian=True)


def mahalanobis_distances(features, means, precision) -> np.ndarray:
    """Squared Mahalanobis distances ``[N, C]`` of each feature row to each class mean."""
    x = np.asarray(features, dtype=np.float64)
    mu = np.asarray(means, dtype=np.float64)
    p = np.asarray(precision, dtype=np.float64)
    xp = x @ p
    d = (xp * x).sum(-1)[:, None] - 2.0 * xp @ mu.T + ((mu @ p) * mu).sum(-1)[None, :]
    return np.maximum(d, 0.0)


def mahalanobis_score(features, means, precision) -> np.ndarray:
    """Minus the distance to the nearest class mean (higher = more in-scope)."""
    return -mahalanobis_distances(features, means, precision).min(axis=-1)


# ---- threshold ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OperatingPoint:
    """A threshold and what it gives on the data it was measured on."""

    threshold: float | None
    in_scope_acc: float
    oos_recall: float | None


def operating_point(
    threshold: float | None,
    in_scores,
    in_correct,
    oos_scores=(),
    oos_flagged=None,
) -> OperatingPoint:
    """In-scope accuracy and OOS recall when ``score < threshold`` (or a class decision) means out of scope.

    ``in_correct``: in-scope utterances whose intent is right before thresholding (False when the class
    decision already called them out of scope); ``oos_flagged``: OOS utterances already called out of scope
    by the class decision (default none).
    """
    s_in = np.asarray(in_scores, dtype=np.float64)
    ok = np.asarray(in_correct, dtype=bool)
    s_oos = np.asarray(oos_scores, dtype=np.float64)
    flagged = np.zeros(len(s_oos), bool) if oos_flagged is None else np.asarray(oos_flagged, bool)
    t = -np.inf if threshold is None else threshold
    acc = float((ok & (s_in >= t)).mean()) if len(s_in) else 0.0
    recall = float((flagged | (s_oos < t)).mean()) if len(s_oos) else None
    return OperatingPoint(threshold, acc, recall)


def choose_threshold(
    in_scores,
    in_correct,
    oos_scores=(),
    oos_flagged=None,
    max_acc_drop: float = 0.01,
    target_recall: float | None = None,
    reference_acc: float | None = None,
) -> float | None:
    """The dev threshold: utterances with ``score < threshold`` are out of scope (None: no threshold).

    * ``target_recall`` given: the threshold that keeps (at least) that share of the in-scope utterances.
    * else, without OOS utterances: None (no threshold; the model behaves as without OOS detection).
    * else: the threshold with the highest OOS recall whose in-scope accuracy is at least
      ``reference_acc - max_acc_drop`` (``reference_acc`` defaults to the accuracy without a threshold); among
      equal recalls, the lowest threshold (the best accuracy). Thresholds sit halfway between observed scores.
    """
    s_in = np.asarray(in_scores, dtype=np.float64)
    ok = np.asarray(in_correct, dtype=bool)
    s_oos = np.asarray(oos_scores, dtype=np.float64)
    flagged = np.zeros(len(s_oos), bool) if oos_flagged is None else np.asarray(oos_flagged, bool)
    if target_recall is not None:
        if not 0.0 < target_recall <= 1.0:
            raise ValueError(f"target_recall must be in (0, 1], got {target_recall}")
        s = np.sort(s_in)
        k = len(s) - math.ceil(target_recall * len(s) - 1e-9)  # how many in-scope may be rejected
        return None if k <= 0 else float((s[k - 1] + s[k]) / 2)
    if not len(s_oos) or not len(s_in):
        return None
    values = np.unique(np.concatenate([s_in, s_oos]))
    candidates = np.concatenate([[-np.inf], (values[:-1] + values[1:]) / 2])
    correct_sorted = np.sort(s_in[ok])
    acc = (len(correct_sorted) - np.searchsorted(correct_sorted, candidates, "left")) / len(s_in)
    missed = np.sort(s_oos[~flagged])
    recall = (flagged.sum() + np.searchsorted(missed, candidates, "left")) / len(s_oos)
    reference = float(ok.mean()) if reference_acc is None else reference_acc
    feasible = acc >= reference - max_acc_drop - 1e-12
    if not feasible.any():
        return None
    best = recall[feasible].max()
    i = int(np.flatnonzero(feasible & (recall == best))[0])
    return None if i == 0 else float(candidates[i])


# ---- threshold-free quality ---------------------------------------------------------------------------
def auroc(in_scores, oos_scores) -> float:
    """Area under the ROC curve with in-scope as the positive class (ties count one half)."""
    pos = np.asarray(in_scores, dtype=np.float64)
    neg = np.asarray(oos_scores, dtype=np.float64)
    if not len(pos) or not len(neg):
        return float("nan")
    allv = np.concatenate([pos, neg])
    order = np.argsort(allv, kind="mergesort")
    ranks = np.empty(len(allv))
    sorted_v = allv[order]
    # average ranks of ties (1-based)
    _, start, counts = np.unique(sorted_v, return_index=True, return_counts=True)
    avg = start + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    u = ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2.0
    return float(u / (len(pos) * len(neg)))


def fpr_at_tpr(in_scores, oos_scores, tpr: float = 0.95) -> float:
    """Share of OOS utterances accepted by the highest threshold that accepts ``tpr`` of in-scope ones."""
    pos = np.sort(np.asarray(in_scores, dtype=np.float64))
    neg = np.asarray(oos_scores, dtype=np.float64)
    if not len(pos) or not len(neg):
        return float("nan")
    k = len(pos) - math.ceil(tpr * len(pos) - 1e-9)  # in-scope utterances that may fall below
    t = pos[k]  # accept score >= t: at least tpr of in-scope accepted
    return float((neg >= t).mean())


# ---- calibration -------------------------------------------------------------------------------------
def _kept_rows(logits, labels, excluded: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Logits without the ``excluded`` columns and rows labelled with them; labels renumbered to match."""
    x = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    skip = {int(c) for c in excluded if c is not None}
    cols = [c for c in range(x.shape[-1]) if c not in skip] or list(range(x.shape[-1]))
    new_id = np.full(x.shape[-1], -1, dtype=np.int64)
    new_id[cols] = np.arange(len(cols))
    y = new_id[y] if len(y) else y
    keep = y >= 0
    return x[keep][:, cols], y[keep]


def fit_temperature(
    logits, labels, excluded: Sequence[int] = (0,), bounds: tuple[float, float] = TEMPERATURE_BOUNDS
) -> float:
    """The temperature in ``bounds`` minimizing the NLL of ``softmax(logits / T)`` (float64).

    The NLL is convex in ``b = 1 / T`` (its derivative ``mean(E_p[x] - x_gold)`` only grows with ``b``), so
    the bounded minimum is found by bisection on the derivative's sign: exact, and it cannot run off to
    T -> 0 (every utterance right) or T -> infinity (none right) as unbounded LBFGS did; it stops at the bound.
    Columns in ``excluded`` are never predicted (``<unk>``; the OOS class in threshold mode) and are dropped
    with the rows labelled with them.
    """
    x, y = _kept_rows(logits, labels, excluded)
    if not len(y):
        return 1.0
    gold = x[np.arange(len(y)), y]

    def slope(b: float) -> float:
        p = _softmax(x * b)
        return float(((p * x).sum(-1) - gold).mean())

    lo, hi = 1.0 / bounds[1], 1.0 / bounds[0]
    if slope(lo) >= 0:
        return float(bounds[1])
    if slope(hi) <= 0:
        return float(bounds[0])
    for _ in range(100):
        mid = (lo + hi) / 2
        if slope(mid) > 0:
            hi = mid
        else:
            lo = mid
        if hi - lo <= 1e-12 * hi:
            break
    return float(2.0 / (lo + hi))


@dataclass(frozen=True)
class TemperatureFit:
    """A temperature and the one line that says how it was obtained (shown by ``fit``, kept in the state)."""

    temperature: float
    note: str
    fitted: bool


def fit_temperature_on_dev(logits, labels, excluded: Sequence[int] = (0,)) -> TemperatureFit:
    """Fit the temperature on dev where dev can place it; otherwise T = 1 and a line that says why.

    The rule: at least :data:`MIN_CALIBRATION_DEV` utterances, at least one right and one wrong (all right:
    the likelihood keeps rising as T -> 0; none right: as T -> infinity), and the result bounded to
    :data:`TEMPERATURE_BOUNDS` (a fit at the bound says so).
    """
    x, y = _kept_rows(logits, labels, excluded)
    n = len(y)
    right = int((x.argmax(-1) == y).sum()) if n else 0
    if n < MIN_CALIBRATION_DEV:
        return TemperatureFit(
            1.0,
            f"temperature: not fitted, T = 1 (dev has {n} in-scope utterances; fitting needs at least "
            f"{MIN_CALIBRATION_DEV})",
            False,
        )
    if right in (0, n):
        which = "all" if right == n else "none"
        return TemperatureFit(
            1.0,
            f"temperature: not fitted, T = 1 ({which} of the {n} dev utterances are right: dev cannot "
            "place a temperature)",
            False,
        )
    t = fit_temperature(x, y, excluded=())
    lo, hi = TEMPERATURE_BOUNDS
    if t in (lo, hi):
        return TemperatureFit(
            t, f"temperature: {t:g}, the bound of [{lo:g}, {hi:g}] (fitted on {n} dev utterances)", True
        )
    return TemperatureFit(t, f"temperature: {t:.4f}, fitted on {n} dev utterances", True)


def ece_note(n: int) -> str | None:
    """The line that replaces an ECE measured on fewer than :data:`MIN_ECE_SAMPLES` utterances (else None)."""
    if n >= MIN_ECE_SAMPLES:
        return None
    return f"ece: not reported, {n} in-scope test utterances (a 15-bin ECE needs at least {MIN_ECE_SAMPLES})"


def reliability_bins(confidences, correct, n_bins: int = 15) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per equal-width confidence bin: mean confidence, accuracy and count.

    Binned as torchmetrics' ``MulticlassCalibrationError`` bins: ``[k/n, (k+1)/n)``, and a last bin of its
    own for confidence exactly 1.0 (so ``n_bins + 1`` entries), which makes the two ECEs equal.
    """
    conf = np.asarray(confidences, dtype=np.float64)
    ok = np.asarray(correct, dtype=np.float64)
    edges = np.linspace(0, 1, n_bins + 1)
    idx = np.clip(np.searchsorted(edges, conf, side="right") - 1, 0, n_bins)
    count = np.bincount(idx, minlength=n_bins + 1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.where(count > 0, np.bincount(idx, conf, n_bins + 1) / count, 0.0)
        acc = np.where(count > 0, np.bincount(idx, ok, n_bins + 1) / count, 0.0)
    return mean_conf, acc, count


def expected_calibration_error(confidences, correct, n_bins: int = 15) -> float:
    """ECE (L1): sum over bins of share x |accuracy - mean confidence|."""
    conf, acc, count = reliability_bins(confidences, correct, n_bins)
    total = count.sum()
    return float((count / total * np.abs(acc - conf)).sum()) if total else 0.0


# ---- the fitted state --------------------------------------------------------------------------------
@dataclass
class OOSState:
    """Temperature and OOS decision of a trained model (fitted at the end of ``fit``; see the module doc).

    ``oos_index``: id of the OOS label in the intent list, when the model has one; ``class_ids``: the intents
    whose means are in ``means`` (``<unk>`` and the OOS label excluded); ``dev``: the dev measurements behind
    the choices (one row per mode and method), kept for reports. ``ambiguity``: out of scope also when the
    top-1 minus top-2 calibrated probability is below it (the default fallback; None: off, as in states
    saved before it existed); ``notes``: the one-line notes of how the temperature and thresholds were set.
    """

    temperature: float = 1.0
    method: str = "msp"
    mode: str = "threshold"
    threshold: float | None = None
    oos_index: int | None = None
    fallback_intent: str = FALLBACK_INTENT
    class_ids: list[int] = field(default_factory=list)
    means: np.ndarray | None = None
    precision: np.ndarray | None = None
    dev: list[dict] = field(default_factory=list)
    ambiguity: float | None = None
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown OOS method {self.method!r}; expected one of {METHODS}")
        if self.mode not in MODES:
            raise ValueError(f"unknown OOS mode {self.mode!r}; expected one of {MODES}")

    @property
    def needs_features(self) -> bool:
        """True when deciding needs the pooled encoder feature (Mahalanobis with a threshold)."""
        return self.method == "mahalanobis" and self.threshold is not None and self.mode != "class"

    def excluded(self) -> list[int]:
        """Intent ids never predicted: ``<unk>``, and the OOS class in ``threshold`` mode."""
        return [0] + ([self.oos_index] if self.mode == "threshold" and self.oos_index is not None else [])

    def in_scope_ids(self, n_intents: int) -> list[int]:
        skip = {0, self.oos_index}
        ids = [i for i in range(n_intents) if i not in skip]
        return ids or [0]

    def probabilities(self, logits) -> np.ndarray:
        """Calibrated intent probabilities (excluded intents get 0)."""
        return _softmax(_masked(apply_temperature(logits, self.temperature), self.excluded()))

    def score(self, logits, features=None, method: str | None = None) -> np.ndarray:
        """The in-scope score of ``method`` (default: this state's), higher = more in-scope."""
        method = method or self.method
        x = np.asarray(logits, dtype=np.float64)
        ids = self.in_scope_ids(x.shape[-1])
        if method == "msp":
            return msp_score(self.probabilities(x), ids)
        if method == "energy":
            return energy_score(x, self.temperature, ids)
        if features is None or self.means is None:
            raise ValueError("the mahalanobis score needs pooled features and fitted class means")
        return mahalanobis_score(features, self.means, self.precision)

    def decide(self, logits, features=None) -> tuple[np.ndarray, np.ndarray]:
        """``(probabilities [N, I], out_of_scope [N] bool)`` for a batch of intent logits (and features)."""
        probs = self.probabilities(logits)
        out = np.zeros(probs.shape[0], dtype=bool)
        if self.oos_index is not None and self.mode in ("class", "both"):
            out |= probs.argmax(-1) == self.oos_index
        if self.threshold is not None and self.mode != "class":
            out |= self.score(logits, features) < self.threshold
        if self.ambiguity is not None and self.mode != "class":
            out |= margin_score(probs, self.in_scope_ids(probs.shape[-1])) < self.ambiguity
        return probs, out

    def describe(self) -> str:
        """The decision in one line, e.g. ``out of scope when confidence < 0.3 or top-1 minus top-2 < 0.1``."""
        parts = []
        if self.oos_index is not None and self.mode in ("class", "both"):
            parts.append("the out-of-scope intent wins")
        if self.threshold is not None and self.mode != "class":
            name = "confidence" if self.method == "msp" else f"{self.method} score"
            parts.append(f"{name} < {self.threshold:.4g}")
        if self.ambiguity is not None and self.mode != "class":
            parts.append(f"top-1 minus top-2 < {self.ambiguity:.4g}")
        return "out of scope when " + " or ".join(parts) if parts else "no out-of-scope decision"

    def to_dict(self) -> dict:
        """Plain values and numpy arrays (the checkpoint stores arrays as tensors, the export as lists)."""
        return {
            "temperature": float(self.temperature),
            "method": self.method,
            "mode": self.mode,
            "threshold": None if self.threshold is None else float(self.threshold),
            "oos_index": self.oos_index,
            "fallback_intent": self.fallback_intent,
            "class_ids": [int(i) for i in self.class_ids],
            "means": self.means,
            "precision": self.precision,
            "dev": self.dev,
            "ambiguity": None if self.ambiguity is None else float(self.ambiguity),
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, d: dict | None) -> OOSState | None:
        if not d:
            return None

        def array(v):
            return None if v is None else np.asarray(v, dtype=np.float64)

        return cls(
            temperature=float(d.get("temperature", 1.0)),
            method=d.get("method", "msp"),
            mode=d.get("mode", "threshold"),
            threshold=None if d.get("threshold") is None else float(d["threshold"]),
            oos_index=None if d.get("oos_index") is None else int(d["oos_index"]),
            fallback_intent=d.get("fallback_intent") or FALLBACK_INTENT,
            class_ids=[int(i) for i in d.get("class_ids") or []],
            means=array(d.get("means")),
            precision=array(d.get("precision")),
            dev=list(d.get("dev") or []),
            ambiguity=None if d.get("ambiguity") is None else float(d["ambiguity"]),
            notes=[str(n) for n in d.get("notes") or []],
        )
