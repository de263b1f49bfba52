"""Calibration and out-of-scope detection: the numpy math, temperature fitting, threshold choice, metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from chatft.core.oos import (
    OOSState,
    auroc,
    choose_threshold,
    energy_score,
    expected_calibration_error,
    fit_shared_gaussian,
    fpr_at_tpr,
    mahalanobis_distances,
    mahalanobis_score,
    operating_point,
    precision_matrix,
    reliability_bins,
)


# ---- scores ------------------------------------------------------------------------------------------
def test_energy_score_is_temperature_times_logsumexp():
    logits = np.array([[0.0, 1.0, 2.0, 3.0]])
    got = energy_score(logits, 2.0, [1, 2])
    assert got[0] == pytest.approx(2.0 * math.log(math.exp(0.5) + math.exp(1.0)), abs=1e-12)


def test_mahalanobis_equals_the_definition_and_flags_far_points():
    rng = np.random.default_rng(0)
    cov = np.array([[1.0, 0.6], [0.6, 0.5]])
    centres = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
    x = np.concatenate([rng.multivariate_normal(c, cov, 400) for c in centres])
    y = np.repeat([1, 2, 3], 400)
    means, shared = fit_shared_gaussian(x, y, [1, 2, 3])
    assert np.abs(means - centres).max() < 0.15 and np.abs(shared - cov).max() < 0.1
    p = precision_matrix(shared)
    q = np.array([[0.5, 0.2], [20.0, -20.0]])
    d = mahalanobis_distances(q, means, p)
    want = [[(v - m) @ np.linalg.inv(shared) @ (v - m) for m in means] for v in q]
    assert d == pytest.approx(np.array(want), rel=1e-5)
    # Every training point scores above a point far from all clusters; the far point is the only one
    # rejected by a threshold that keeps 99 % of the training points.
    s_train = mahalanobis_score(x, means, p)
    s_far = mahalanobis_score(q[1:], means, p)
    assert s_far[0] < s_train.min()
    t = choose_threshold(s_train, np.ones(len(x), bool), target_recall=0.99)
    assert (s_train < t).sum() == 12 and s_far[0] < t


def test_mahalanobis_score_uses_the_covariance_not_euclid():
    # A point along the direction of large variance is nearer (in-scope) than one across it at equal Euclid.
    means = np.zeros((1, 2))
    p = precision_matrix(np.diag([4.0, 0.25]))
    along, across = mahalanobis_score(np.array([[2.0, 0.0], [0.0, 2.0]]), means, p)
    assert along == pytest.approx(-1.0, rel=1e-5) and across == pytest.approx(-16.0, rel=1e-5)


# ---- threshold ---------------------------------------------------------------------------------------
def test_threshold_maximizes_recall_within_the_accuracy_drop():
    # 10 in-scope (all right), 4 OOS. Rejecting the lowest in-scope one costs 0.1 accuracy.
    s_in = [0.30, 0.50, 0.60, 0.70, 0.80, 0.85, 0.90, 0.95, 0.97, 0.99]
    s_oos = [0.10, 0.20, 0.40, 0.65]
    ok = [True] * 10
    assert choose_threshold(s_in, ok, s_oos, max_acc_drop=0.0) == pytest.approx(0.25)
    assert choose_threshold(s_in, ok, s_oos, max_acc_drop=0.1) == pytest.approx(0.45)
    # Two rejected in-scope utterances buy no more recall: the lower threshold is kept.
    assert choose_threshold(s_in, ok, s_oos, max_acc_drop=0.2) == pytest.approx(0.45)
    assert choose_threshold(s_in, ok, s_oos, max_acc_drop=0.3) == pytest.approx(0.675)
    op = operating_point(0.45, s_in, ok, s_oos)
    assert (op.in_scope_acc, op.oos_recall) == (0.9, 0.75)


def test_wrong_in_scope_predictions_are_free_to_reject():
    # Rejecting an utterance whose intent was wrong anyway costs no accuracy.
    s_in, ok = [0.3, 0.5, 0.9], [False, True, True]
    assert choose_threshold(s_in, ok, [0.4], max_acc_drop=0.0) == pytest.approx(0.45)


def test_no_oos_in_dev_means_no_threshold_unless_a_target_recall():
    s_in = np.linspace(0, 1, 100)
    assert choose_threshold(s_in, np.ones(100, bool)) is None
    t = choose_threshold(s_in, np.ones(100, bool), target_recall=0.97)
    assert (s_in >= t).sum() == 97


def test_class_decision_counts_as_recall_already():
    t = choose_threshold([0.9, 0.8], [True, True], [0.1, 0.95], oos_flagged=[False, True], max_acc_drop=0.0)
    assert t == pytest.approx(0.45)
    assert operating_point(t, [0.9, 0.8], [True, True], [0.1, 0.95], [False, True]).oos_recall == 1.0


def test_auroc_and_fpr95_by_hand():
    s_in = [0.9, 0.8, 0.7, 0.4]
    s_oos = [0.5, 0.3, 0.8]
    # pairs (in > oos): 0.9:3, 0.8:2 + tie 0.5, 0.7:2, 0.4:1 -> 8.5 / 12
    assert auroc(s_in, s_oos) == pytest.approx(8.5 / 12)
    # accepting 95 % of in-scope (all 4: threshold 0.4) accepts 2 of 3 OOS
    assert fpr_at_tpr(s_in, s_oos) == pytest.approx(2 / 3)


# ---- calibration -------------------------------------------------------------------------------------
def test_ece_and_bins_equal_torchmetrics():
    import torch
    from torchmetrics.classification import MulticlassCalibrationError

    rng = np.random.default_rng(1)
    logits = rng.normal(size=(500, 5)) * 3
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    probs[0] = [1.0, 0, 0, 0, 0]  # confidence exactly 1.0
    gold = rng.integers(0, 5, 500)
    metric = MulticlassCalibrationError(5, n_bins=15, norm="l1")
    want = float(metric(torch.tensor(probs), torch.tensor(gold)))
    conf, hit = probs.max(1), probs.argmax(1) == gold
    assert expected_calibration_error(conf, hit, 15) == pytest.approx(want, abs=1e-6)
    _, _, count = reliability_bins(conf, hit, 15)
    assert count.sum() == 500 and count[-1] == 1


def test_temperature_fitting_recovers_a_known_temperature():
    from chatft.training.calibration import fit_temperature

    rng = np.random.default_rng(0)
    n, k, true_t = 20000, 6, 2.5
    z = rng.normal(size=(n, k)) * 3.0
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    labels = np.array([rng.choice(k, p=row) for row in p])
    # The model's logits are z * T: softmax(logits / T) is the true distribution.
    logits = np.concatenate([np.zeros((n, 1)), z * true_t], axis=1)  # column 0 = <unk>, masked
    t = fit_temperature(logits, labels + 1)
    assert t == pytest.approx(true_t, rel=0.03)


def test_calibrate_tries_the_class_modes_only_when_train_has_the_oos_label():
    from chatft.training.calibration import calibrate

    # intents: <unk>, a, b, oos (3); dev: two in-scope utterances and one out of scope
    dev_logits = np.array([[0.0, 4.0, 0.0, 1.0], [0.0, 0.0, 4.0, 1.0], [0.0, 1.0, 1.0, 4.0]])
    dev_gold = np.array([1, 2, 3])
    feats = np.eye(3)
    without = calibrate(dev_logits, dev_gold, feats, feats, np.array([1, 2, 1]), oos_index=3)
    with_oos = calibrate(dev_logits, dev_gold, feats, feats, np.array([1, 2, 3]), oos_index=3)
    assert {r["mode"] for r in without.dev} == {"threshold"}
    assert {r["mode"] for r in with_oos.dev} == {"class", "threshold", "both"}


def test_state_decision_modes_and_round_trip():
    logits = np.array([[0.0, 5.0, 0.0, 1.0], [0.0, 0.5, 0.4, 3.0], [0.0, 1.0, 0.9, 0.0]])
    both = OOSState(mode="both", oos_index=3, threshold=0.6, temperature=1.0)
    probs, out = both.decide(logits)
    assert out.tolist() == [False, True, True]  # row 1: OOS class wins; row 2: max in-scope prob < 0.6
    thr = OOSState(mode="threshold", oos_index=3, threshold=0.6)
    probs, out = thr.decide(logits)
    assert probs[:, 3].tolist() == [0.0, 0.0, 0.0] and out.tolist() == [False, True, True]
    cls = OOSState(mode="class", oos_index=3, threshold=0.6)
    assert cls.decide(logits)[1].tolist() == [False, True, False]
    assert OOSState.from_dict(both.to_dict()) == both
    none = OOSState()
    assert none.decide(logits[:, :3])[1].tolist() == [False, False, False]


# ---- metrics -----------------------------------------------------------------------------------------
# 6 in-scope, 4 OOS: scores, gold OOS, predicted OOS, intent right.
SCORES = [0.9, 0.8, 0.7, 0.6, 0.35, 0.2, 0.5, 0.3, 0.1, 0.75]
GOLD_OOS = [0, 0, 0, 0, 0, 0, 1, 1, 1, 1]
PRED_OOS = [0, 0, 0, 0, 1, 1, 0, 1, 1, 0]
CORRECT = [1, 1, 0, 1, 0, 1, 0, 0, 0, 0]
# in-scope right and accepted: 3 of 6; OOS caught: 2 of 4; flagged: 4, of which 2 OOS.
# AUROC: in-scope above each OOS score: 0.5 -> 4, 0.3 -> 5, 0.1 -> 6, 0.75 -> 2: 17 / 24.
# Accepting 95 % of in-scope (all 6: threshold 0.2) accepts 3 of the 4 OOS (all but 0.1).
EXPECTED = {
    "in_scope_acc": 0.5,
    "oos_recall": 0.5,
    "oos_precision": 0.5,
    "oos_auroc": 17 / 24,
    "oos_fpr95": 0.75,
}


def _update(metric, rows):
    import torch

    cols = list(zip(*rows, strict=True))
    metric.update(
        torch.tensor(cols[0], dtype=torch.float64),
        torch.tensor(cols[1]),
        torch.tensor(cols[2]),
        torch.tensor(cols[3]),
    )


def test_oos_metrics_equal_a_hand_computation():
    from chatft.training.oos_metrics import OOSMetrics

    metric = OOSMetrics()
    rows = list(zip(SCORES, GOLD_OOS, PRED_OOS, CORRECT, strict=True))
    _update(metric, rows[:3])
    _update(metric, rows[3:])
    got = {k: float(v) for k, v in metric.compute().items()}
    # torchmetrics computes the AUROC in float32
    assert got == pytest.approx(EXPECTED, abs=1e-7)
    assert got["oos_auroc"] == pytest.approx(auroc(SCORES[:6], SCORES[6:]), abs=1e-7)
    assert got["oos_fpr95"] == fpr_at_tpr(SCORES[:6], SCORES[6:])


def _ddp_worker(rank: int, world: int, port: int, out: str) -> None:
    import json

    import torch.distributed as dist

    from chatft.training.oos_metrics import OOSMetrics

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    metric = OOSMetrics()
    rows = list(zip(SCORES, GOLD_OOS, PRED_OOS, CORRECT, strict=True))
    # Uneven shards (7 and 3 utterances), one of them with no OOS utterance at all.
    _update(metric, rows[:4] + rows[6:9] if rank == 0 else rows[4:6] + rows[9:])
    got = {k: float(v) for k, v in metric.compute().items()}
    if rank == 0:
        with open(out, "w") as f:
            json.dump(got, f)
    dist.destroy_process_group()


def test_oos_metrics_are_exact_under_two_process_ddp(tmp_path):
    import json
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "ddp.json"
    mp.spawn(_ddp_worker, args=(2, port, str(out)), nprocs=2, join=True)
    assert json.loads(out.read_text()) == pytest.approx(EXPECTED, abs=1e-7)


def test_fallback_turn_leaves_the_dialogue_state_unchanged():
    from chatft.core.prediction import Prediction, Slot
    from chatft.dialogue.tracker import DialoguePolicy, DialogueTracker

    tracker = DialogueTracker(DialoguePolicy.load("demo"), fallback_response="Sorry?")
    first = Prediction("fly to denver", ["fly", "to", "denver"], ["O", "O", "B-toloc.city_name"], "book_flight",
                       0.99, [("book_flight", 0.99)], [Slot("toloc.city_name", "denver", 7, 13, 0.9)])  # fmt: skip
    tracker.update(first)
    before = tracker.state.to_dict()
    odd = Prediction("what is the meaning of life", ["x"], ["B-toloc.city_name"], "nlu_fallback", 0.2,
                     [("greet", 0.2)], [Slot("toloc.city_name", "x", 0, 1, 0.5)], out_of_scope=True)  # fmt: skip
    update = tracker.update(odd)
    assert update["response"] == "Sorry?" and update["new_frame"] is False
    assert tracker.state.to_dict() == before == update["state"]
