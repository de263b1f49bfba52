"""Honest confidences and the default fallback on small data (issue 23): the bounded temperature and its
size rule, the ECE size rule, the confidence + ambiguity fallback, and every new one-line message."""

from __future__ import annotations

import math

import numpy as np
import pytest

from chatft.core.fallback import default_fallback
from chatft.core.oos import (
    OOSState,
    ece_note,
    fit_temperature,
    fit_temperature_on_dev,
    margin_score,
)
from chatft.training.calibration import NO_OOS_INTENT_NOTE, calibrate


def _logits(rows) -> np.ndarray:
    """Intent logits with a ``<unk>`` column 0 in front."""
    x = np.asarray(rows, dtype=np.float64)
    return np.concatenate([np.full((len(x), 1), -5.0), x], axis=1)


def _all_right(n: int, k: int = 3, margin: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` dev utterances over ``k`` intents, every one right by ``margin``."""
    gold = np.arange(n) % k
    rows = np.zeros((n, k))
    rows[np.arange(n), gold] = margin
    return _logits(rows), gold + 1


# ---- temperature -------------------------------------------------------------------------------------
def test_every_dev_utterance_right_no_longer_sends_the_temperature_to_zero():
    # The issue: 12 dev utterances, all right: unbounded LBFGS gave T = 0.107 and every confidence 1.0.
    logits, gold = _all_right(12)
    assert fit_temperature(logits, gold) == 0.1  # the bound, not a runaway
    fit = fit_temperature_on_dev(logits, gold)
    assert (fit.temperature, fit.fitted) == (1.0, False)
    assert (
        fit.note
        == "temperature: not fitted, T = 1 (dev has 12 in-scope utterances; fitting needs at least 50)"
    )


def test_a_dev_split_that_cannot_be_fitted_stops_at_the_upper_bound():
    # Every utterance wrong: the likelihood rises as T -> infinity (the 7,409,733 of the issue).
    logits, gold = _all_right(60)
    wrong = gold % 3 + 1
    assert fit_temperature(logits, wrong) == 10.0
    fit = fit_temperature_on_dev(logits, wrong)
    assert (fit.temperature, fit.fitted) == (1.0, False)
    assert fit.note == (
        "temperature: not fitted, T = 1 (none of the 60 dev utterances are right: dev cannot place a temperature)"
    )
    fit = fit_temperature_on_dev(logits, gold)
    assert fit.note == (
        "temperature: not fitted, T = 1 (all of the 60 dev utterances are right: dev cannot place a temperature)"
    )


def test_a_fit_at_the_bound_says_so():
    # 59 right by 1, 1 wrong by 0.001: the wrong one costs only log 2 until T ~ 0.001: dev asks for T < 0.1.
    logits, gold = _all_right(60, margin=1.0)
    logits[0, 1:] = [0.0, 0.001, -5.0]
    fit = fit_temperature_on_dev(logits, gold)
    assert fit.temperature == 0.1
    assert fit.note == "temperature: 0.1, the bound of [0.1, 10] (fitted on 60 dev utterances)"


def test_bounded_fit_recovers_a_known_temperature_and_says_on_how_many():
    rng = np.random.default_rng(0)
    n, k, true_t = 4000, 6, 2.5
    z = rng.normal(size=(n, k)) * 3.0
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    labels = np.array([rng.choice(k, p=row) for row in p]) + 1
    fit = fit_temperature_on_dev(_logits(z * true_t), labels)
    assert fit.temperature == pytest.approx(true_t, rel=0.05)
    assert fit.note == f"temperature: {fit.temperature:.4f}, fitted on 4000 dev utterances"


def test_fit_temperature_is_the_nll_minimum():
    rng = np.random.default_rng(3)
    z = rng.normal(size=(300, 4)) * 4
    gold = np.where(rng.random(300) < 0.7, z.argmax(1), rng.integers(0, 4, 300)) + 1  # 70 % + chance right
    logits = _logits(z)
    t = fit_temperature(logits, gold)

    def nll(temp: float) -> float:
        x = logits[:, 1:] / temp
        x = x - x.max(1, keepdims=True)
        return float(-(x[np.arange(300), gold - 1] - np.log(np.exp(x).sum(1))).mean())

    assert 0.1 < t < 10 and nll(t) <= min(nll(t * 1.001), nll(t / 1.001))


# ---- ECE ---------------------------------------------------------------------------------------------
def test_ece_is_not_reported_from_a_handful_of_utterances():
    assert ece_note(12) == "ece: not reported, 12 in-scope test utterances (a 15-bin ECE needs at least 100)"
    assert ece_note(100) is None


def test_test_metrics_log_nan_and_the_sample_size_below_the_minimum():
    import torch
    from torch import nn
    from torchmetrics.classification import MulticlassCalibrationError

    from chatft.training.calibration_report import calibration_report, ece_values

    def metrics(n: int) -> nn.ModuleDict:
        m = nn.ModuleDict(
            {
                k: MulticlassCalibrationError(3, n_bins=15, norm="l1")
                for k in ("ece_uncalibrated", "ece_calibrated")
            }
        )
        probs = torch.tensor([[0.1, 0.7, 0.2]] * n, dtype=torch.float64)
        for metric in m.values():
            metric.update(probs, torch.ones(n, dtype=torch.long))
        return m

    small = ece_values(metrics(12))
    assert (
        math.isnan(small["ece_calibrated"]) and math.isnan(small["ece_uncalibrated"]) and small["ece_n"] == 12
    )
    report = calibration_report(metrics(12), OOSState())
    assert report["ece_calibrated"] is None and report["ece_n"] == 12
    assert (
        report["ece_note"]
        == "ece: not reported, 12 in-scope test utterances (a 15-bin ECE needs at least 100)"
    )
    big = ece_values(metrics(100))
    assert big == {
        "ece_uncalibrated": pytest.approx(0.3),
        "ece_calibrated": pytest.approx(0.3),
        "ece_n": 100.0,
    }


def test_ece_gathers_each_metric_once_and_the_report_equals_the_logged_value():
    # Two ranks simulated in one process: every gather returns this rank's states twice (the other rank held
    # the same utterances). ECE must be gathered once per metric and call (once per state: confidences and
    # hits), count every utterance of both ranks once, and the report must show the logged number exactly.
    import torch
    from torch import nn
    from torchmetrics.classification import MulticlassCalibrationError

    from chatft.core.oos import expected_calibration_error
    from chatft.training.calibration_report import calibration_report, ece_values

    gathers: list[str] = []

    def two_ranks(t, group=None):
        gathers.append(str(t.dtype))
        return [t, t]

    rng = np.random.default_rng(0)
    probs = torch.tensor(rng.dirichlet(np.ones(3), size=60))
    target = torch.tensor(rng.integers(0, 3, size=60))
    metrics = nn.ModuleDict(
        {
            k: MulticlassCalibrationError(3, n_bins=15, norm="l1")
            for k in ("ece_uncalibrated", "ece_calibrated")
        }
    )
    for metric in metrics.values():
        metric.update(probs, target)
        metric.distributed_available_fn = lambda: True
        metric.dist_sync_fn = two_ranks
    values = ece_values(metrics)
    assert len(gathers) == 4  # 2 metrics x 2 states, each gathered once
    # the metric keeps float32 confidences
    conf, hits = probs.max(1).values.float().double().numpy(), (probs.argmax(1) == target).double().numpy()
    both = np.concatenate([conf, conf]), np.concatenate([hits, hits])
    order = np.lexsort((both[1], both[0]))
    expected = expected_calibration_error(both[0][order], both[1][order], 15)
    assert values == {"ece_uncalibrated": expected, "ece_calibrated": expected, "ece_n": 120.0}
    report = calibration_report(metrics, OOSState())
    assert (report["ece_uncalibrated"], report["ece_calibrated"], report["ece_n"]) == (
        expected,
        expected,
        120,
    )
    assert sum(report["bins_calibrated"]["count"]) == 120


# ---- the fallback ------------------------------------------------------------------------------------
def test_margin_is_top1_minus_top2_over_in_scope_intents():
    probs = np.array([[0.0, 0.5, 0.3, 0.2], [0.0, 0.4, 0.4, 0.2]])
    assert margin_score(probs, [1, 2, 3]).tolist() == pytest.approx([0.2, 0.0])
    assert margin_score(probs, [2]).tolist() == [0.3, 0.4]


def test_state_rejects_low_confidence_and_ambiguous_utterances():
    state = OOSState(threshold=0.3, ambiguity=0.1)
    # confident; ambiguous (0.45 vs 0.45); unsure (max 0.25 of 4 near-equal intents)
    probs_in = np.log(np.array([[1e-9, 0.9, 0.05, 0.05], [1e-9, 0.45, 0.45, 0.1], [1e-9, 0.25, 0.24, 0.26]]))
    probs, out = state.decide(probs_in)
    assert out.tolist() == [False, True, True]
    assert state.describe() == "out of scope when confidence < 0.3 or top-1 minus top-2 < 0.1"
    assert OOSState.from_dict(state.to_dict()) == state


def test_states_saved_before_the_fallback_load_with_the_old_behaviour():
    old = {"temperature": 1.5, "method": "msp", "mode": "threshold", "threshold": None, "oos_index": None}
    state = OOSState.from_dict(old)
    assert (state.ambiguity, state.notes) == (None, [])
    assert state.decide(np.array([[0.0, 1.0, 1.0]]))[1].tolist() == [False]
    assert state.describe() == "no out-of-scope decision"


def test_default_thresholds_on_a_small_dev():
    fb = default_fallback([0.9] * 15, [0.5] * 15, [True] * 15)
    assert (fb.confidence, fb.ambiguity) == (0.7, 0.1)
    assert fb.note == (
        "fallback: confidence < 0.7 or top-1 minus top-2 < 0.1 (the default thresholds: dev has 15 in-scope "
        "utterances, choosing on dev needs at least 100)"
    )
    given = default_fallback([0.9] * 15, [0.5] * 15, [True] * 15, ambiguity_threshold=0.05)
    assert given.note == (
        "fallback: confidence < 0.7 or top-1 minus top-2 < 0.05 (the default confidence threshold and the given "
        "ambiguity threshold: dev has 15 in-scope utterances, choosing on dev needs at least 100)"
    )
    both = default_fallback([0.9] * 15, [0.5] * 15, [True] * 15, confidence_threshold=0.5)
    assert both.note == (
        "fallback: confidence < 0.5 or top-1 minus top-2 < 0.1 (confidence threshold given, ambiguity threshold "
        "the default)"
    )


def test_confidence_threshold_chosen_on_dev_rejects_at_most_one_point_of_right_answers():
    # 200 dev utterances: 180 right with confidences 0.50..0.95, 20 wrong at 0.4; margins all 0.2.
    right = np.linspace(0.5, 0.95, 180)
    conf = np.concatenate([right, np.full(20, 0.4)])
    ok = np.concatenate([np.ones(180, bool), np.zeros(20, bool)])
    fb = default_fallback(conf, np.full(200, 0.2), ok)
    # 1 % of 200 = 2 right answers may go: the threshold sits between the 2nd and 3rd lowest right ones.
    assert fb.confidence == pytest.approx((right[1] + right[2]) / 2)
    assert (conf[ok] < fb.confidence).sum() == 2 and (conf[~ok] < fb.confidence).all()
    assert fb.note == (
        f"fallback: confidence < {fb.confidence:.4g} or top-1 minus top-2 < 0.1 (confidence threshold chosen on "
        "200 dev utterances, rejecting at most 2 right answers; ambiguity threshold the default)"
    )


def test_calibrate_without_oos_data_turns_the_fallback_on():
    logits, gold = _all_right(15)
    state = calibrate(logits, gold)
    assert (state.temperature, state.method, state.mode) == (1.0, "msp", "threshold")
    assert (state.threshold, state.ambiguity) == (0.7, 0.1)
    assert state.notes == [
        "temperature: not fitted, T = 1 (dev has 15 in-scope utterances; fitting needs at least 50)",
        "fallback: confidence < 0.7 or top-1 minus top-2 < 0.1 (the default thresholds: dev has 15 in-scope "
        "utterances, choosing on dev needs at least 100)",
        "no out-of-scope intent in training: the fallback rejects unsure answers, not confident ones about other "
        "topics; data convert --oos-pool adds 200 generic out-of-scope utterances to train (docs: Calibration "
        "and out-of-scope)",
    ]
    # `tell me a joke` on a 3-intent bot: near-equal logits -> nlu_fallback.
    assert state.decide(_logits([[0.3, 0.2, 0.1]]))[1].tolist() == [True]
    off = calibrate(logits, gold, fallback=False, confidence_threshold=0.5)
    assert (off.threshold, off.ambiguity) == (None, None)
    assert off.notes[1] == "--oos.confidence_threshold: not used, --oos.fallback is false"


def test_the_oos_pool_hint_only_when_the_model_has_no_out_of_scope_intent():
    logits, gold = _all_right(15)
    assert NO_OOS_INTENT_NOTE in calibrate(logits, gold).notes
    # intents <unk>, a, b, oos: trained with an out-of-scope intent, dev without examples of it
    with_oos = np.concatenate([logits, np.full((15, 1), -5.0)], axis=1)
    state = calibrate(with_oos, gold, oos_index=4)
    assert (state.threshold, state.ambiguity) == (0.7, 0.1)  # the fallback still applies
    assert NO_OOS_INTENT_NOTE not in state.notes
    assert NO_OOS_INTENT_NOTE not in calibrate(logits, gold, fallback=False).notes


def test_target_recall_on_a_tiny_dev_says_it_cannot_take_effect():
    logits, gold = _all_right(12)
    state = calibrate(logits, gold, target_recall=0.97)
    assert state.notes[1] == (
        "--oos.target_recall 0.97: keeping that share of the 12 in-scope dev utterances rejects none of them, "
        "so it sets no threshold"
    )
    assert (state.threshold, state.ambiguity) == (0.7, 0.1)  # the default fallback instead


def test_dev_with_oos_examples_keeps_the_dev_chosen_modes():
    # intents <unk>, a, b, oos; dev has an OOS utterance, so the old dev-chosen threshold applies (no ambiguity).
    dev_logits = np.array([[0.0, 4.0, 0.0, 1.0], [0.0, 0.0, 4.0, 1.0], [0.0, 1.0, 1.0, 4.0]])
    dev_gold = np.array([1, 2, 3])
    state = calibrate(dev_logits, dev_gold, oos_index=3, ambiguity_threshold=0.2)
    assert state.ambiguity is None
    assert state.notes[1] == (
        "--oos.ambiguity_threshold: not used, dev has out-of-scope examples and the threshold is chosen on them"
    )


def test_thresholds_outside_zero_one_are_a_one_line_error():
    from chatft.core.errors import ConfigError
    from chatft.training.calibration import OOSCalibration

    with pytest.raises(ConfigError) as err:
        OOSCalibration(confidence_threshold=1.5)
    assert str(err.value) == "--oos.confidence_threshold must be in [0, 1], got 1.5"
    with pytest.raises(ConfigError) as err:
        OOSCalibration(ambiguity_threshold=-0.1)
    assert str(err.value) == "--oos.ambiguity_threshold must be in [0, 1], got -0.1"


# ---- the generic out-of-scope pool -------------------------------------------------------------------
def test_the_pool_ships_200_utterances_with_its_license():
    from importlib.resources import files

    from chatft.training.calibration import pool_utterances

    pool = pool_utterances()
    assert (len(pool), len(set(pool))) == (200, 200)
    assert pool[0] == "how much is an overdraft fee for bank"
    folder = files("chatft").joinpath("resources/oos_pool")
    assert folder.joinpath("LICENSE").read_text(encoding="utf-8").startswith("Creative Commons Legal Code")


def test_pool_words_split_as_the_predictors_do_unspaced_scripts_included():
    """Calibration split the pool with str.split: a Chinese utterance was one word, "meat," kept its comma."""
    from chatft.core.oos_pool import pool_words

    assert pool_words(["我想订机票", "do ducks eat meat, or not?"]) == [
        ["我", "想", "订", "机", "票"],
        ["do", "ducks", "eat", "meat", ",", "or", "not", "?"],
    ]
    assert pool_words()[182] == ["do", "ducks", "eat", "meat", ",", "vegetables", ",", "or", "both"]


def test_convert_oos_pool_adds_the_pool_to_train_only(tmp_path, capsys):
    import json

    from chatft.core.oos_pool import pool_utterances
    from chatft.core.text import split_words
    from chatft.data_tools.cli import convert_command

    rows = (
        ["text,intent"] + [f"hello number {i},greet" for i in range(10)] + [f"bye {i},bye" for i in range(10)]
    )
    (tmp_path / "bot.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "data"
    convert_command(
        ["--from", "csv", "--input", str(tmp_path / "bot.csv"), "--output", str(out), "--oos-pool"], "x"
    )
    train = [json.loads(line) for line in (out / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    dev = [json.loads(line) for line in (out / "dev.jsonl").read_text(encoding="utf-8").splitlines()]
    added = [ex for ex in train if ex["intent"] == "oos"]
    assert (len(train), len(added), len(dev)) == (16 + 200, 200, 2)
    assert added[0] == {"words": "how much is an overdraft fee for bank".split(), "intent": "oos"}
    assert [ex["words"] for ex in added] == [[w for w, _, _ in split_words(t)] for t in pool_utterances()]
    assert added[182]["words"] == ["do", "ducks", "eat", "meat", ",", "vegetables", ",", "or", "both"]
    assert not any(ex["intent"] == "oos" for ex in dev)
    assert (
        "note: generic out-of-scope utterances added to train as intent 'oos' (--oos-pool): 200"
    ) in capsys.readouterr().out


def test_pool_examples_get_o_tags_when_train_has_slots():
    from chatft.core.formats import Example
    from chatft.data_tools.convert import pool_examples

    tagged = pool_examples([Example(("to", "boston"), ("O", "B-city"), "flight")])
    assert tagged[0] == Example(tuple("how much is an overdraft fee for bank".split()), ("O",) * 8, "oos")
    assert pool_examples([Example(("hi",), None, "greet")])[0].tags is None


def test_pool_utterances_choose_the_threshold_but_never_the_temperature():
    logits, gold = _all_right(120)
    logits[:, 1:] *= 0.5  # right answers at confidence ~0.78
    negatives = _logits([[0.5, 0.4, 0.0], [0.2, 0.0, 0.1]])  # confidences ~0.4 and ~0.37
    state = calibrate(logits, gold, negative_logits=negatives)
    assert state.temperature == 1.0 and state.ambiguity is None
    assert state.threshold == pytest.approx((state.score(negatives).max() + state.score(logits).min()) / 2)
    assert state.notes == [
        "temperature: not fitted, T = 1 (all of the 120 dev utterances are right: dev cannot place a temperature)",
        f"out-of-scope pool: out of scope when confidence < {state.threshold:.4g} (chosen on 120 in-scope dev "
        "utterances against 2 pool utterances)",
    ]


def test_the_pool_is_not_used_on_a_small_dev():
    logits, gold = _all_right(15)
    state = calibrate(logits, gold, negative_logits=_logits([[0.5, 0.4, 0.0]]))
    assert (state.threshold, state.ambiguity) == (0.7, 0.1)  # the default fallback
    assert state.notes[1] == (
        "--oos.pool: not used, dev has 15 in-scope utterances; choosing a threshold against the pool needs at "
        "least 100"
    )


# ---- end to end --------------------------------------------------------------------------------------
def test_fit_and_test_print_the_notes_and_every_front_end_applies_the_fallback(
    tiny_encoder, demo_small, tmp_path, capsys
):
    """A tiny bot without out-of-scope data: fit prints how T and the fallback were set, test says why no ECE,
    and test, the Predictor and the ONNX export decide the same utterances out of scope."""
    from chatft.cli import main

    from .conftest import cli_args

    main(["fit", *cli_args(tiny_encoder, demo_small, tmp_path / "run", trainer__max_epochs=1)])
    out = capsys.readouterr().out.splitlines()
    assert "temperature: not fitted, T = 1 (dev has 23 in-scope utterances; fitting needs at least 50)" in out
    assert (
        "fallback: confidence < 0.7 or top-1 minus top-2 < 0.1 (the default thresholds: dev has 23 in-scope "
        "utterances, choosing on dev needs at least 100)"
    ) in out
    assert NO_OOS_INTENT_NOTE in out
    best = next((tmp_path / "run").rglob("best-*.ckpt"))
    main(["test", *cli_args(tiny_encoder, demo_small, tmp_path / "test"), "--ckpt_path", str(best)])
    out = capsys.readouterr().out.splitlines()
    assert "ece: not reported, 23 in-scope test utterances (a 15-bin ECE needs at least 100)" in out
    assert [line.split() for line in out if line.startswith(("test/ece", "test/intent_acc "))] == [
        ["test/intent_acc", f"{_accepted_and_right(best, demo_small):.6f}"],
        ["test/ece_uncalibrated", "nan"],
        ["test/ece_calibrated", "nan"],
        ["test/ece_n", "23.000000"],
    ]


def _accepted_and_right(best, data) -> float:
    """Test intent accuracy as the Predictor decides (an utterance sent to the fallback counts as wrong)."""
    from chatft import Predictor

    texts = (data / "test/seq.in").read_text().splitlines()
    gold = (data / "test/label").read_text().splitlines()
    preds = Predictor.from_checkpoint(str(best)).batch(texts)
    return sum(p.intent == g for p, g in zip(preds, gold, strict=True)) / len(gold)
