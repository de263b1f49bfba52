"""Out-of-scope detection end to end on a tiny BERT: fit calibrates on dev, test reports, predictors decide.

The data is a demo slice in which the ``greet`` intent is relabelled ``oos``: the model trains it as a class
and the decision (mode, score, threshold) is fitted on dev at the end of ``fit``.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from chatft.cli import main
from chatft.model.checkpoint import OOS_KEY

from .conftest import demo_subset

REPO = Path(__file__).resolve().parents[1]


def _oos_data(folder: Path, test_offset: int = 0) -> Path:
    data = demo_subset(folder, n_train=200, n_eval=60 + test_offset)
    if test_offset:  # another test split: drop its first utterances
        for name in ("seq.in", "seq.out", "label"):
            path = data / "test" / name
            path.write_text("".join(path.read_text().splitlines(True)[test_offset:]))
        for name in ("seq.in", "seq.out", "label"):
            path = data / "dev" / name
            path.write_text("".join(path.read_text().splitlines(True)[:60]))
    for split in ("train", "dev", "test"):
        label = data / split / "label"
        label.write_text(label.read_text().replace("greet\n", "oos\n"))
    return data


def _fit(encoder: str, data: Path, root: Path) -> Path:
    main(
        [
            "fit",
            "--config", str(REPO / "configs/demo.yaml"),
            "--model.encoder", encoder,
            "--data.data_dir", str(data),
            "--data.batch_size", "16",
            "--model.learning_rate", "3e-4",
            "--model.head_learning_rate", "3e-3",
            "--trainer.max_epochs", "5",
            "--trainer.default_root_dir", str(root),
            "--trainer.enable_progress_bar", "false",
            "--trainer.enable_model_summary", "false",
        ]
    )  # fmt: skip
    return next((root / "lightning_logs/version_0/checkpoints").glob("best-*.ckpt"))


@pytest.fixture(scope="module")
def oos_run(tiny_encoder, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("oos")
    data = _oos_data(root / "data")
    best = _fit(tiny_encoder, data, root / "run")
    return {"root": root, "data": data, "best": best, "encoder": tiny_encoder}


@pytest.fixture(scope="module")
def tiny_ckpt_run(oos_run, tmp_path_factory):
    """Two fits that differ only in their test split: (best checkpoint of each)."""
    root = tmp_path_factory.mktemp("oos-other-test")
    data = _oos_data(root / "data", test_offset=25)
    assert (data / "dev/label").read_text() == (oos_run["data"] / "dev/label").read_text()
    assert (data / "test/label").read_text() != (oos_run["data"] / "test/label").read_text()
    return oos_run["best"], _fit(oos_run["encoder"], data, root / "run")


def test_fit_writes_the_calibration_into_best_and_last(oos_run):
    best = torch.load(oos_run["best"], weights_only=True)
    last = torch.load(oos_run["best"].with_name("last.ckpt"), weights_only=True)
    state = best[OOS_KEY]
    assert state["oos_index"] == best["hyper_parameters"]["intent_labels"].index("oos")
    assert state["mode"] in ("class", "threshold", "both") and state["temperature"] > 0
    assert {r["method"] for r in state["dev"]} == {None, "msp", "energy", "mahalanobis"}
    assert sum(r["chosen"] for r in state["dev"]) == 1
    assert last[OOS_KEY]["threshold"] == state["threshold"]
    assert torch.equal(last[OOS_KEY]["means"], state["means"])
    assert state["means"].shape == (len(best["hyper_parameters"]["intent_labels"]) - 2, 32)


def _test_metrics(oos_run, tmp_path) -> tuple[dict, Path]:
    from chatft.training.lightning_cli import lightning_cli

    args = [
        "--config", str(REPO / "configs/demo.yaml"),
        "--model.encoder", oos_run["encoder"],
        "--data.data_dir", str(oos_run["data"]),
        "--trainer.default_root_dir", str(tmp_path),
        "--trainer.enable_progress_bar", "false",
    ]  # fmt: skip
    cli = lightning_cli(args, run=False)
    (test,) = cli.trainer.test(
        cli.model, datamodule=cli.datamodule, ckpt_path=str(oos_run["best"]), verbose=False
    )
    return test, Path(cli.trainer.log_dir)


def test_test_metrics_equal_the_predictors_decisions(oos_run, tmp_path):
    from chatft import Predictor
    from chatft.core.oos import auroc, fpr_at_tpr

    test, log_dir = _test_metrics(oos_run, tmp_path)
    data = oos_run["data"]
    texts = (data / "test/seq.in").read_text().splitlines()
    gold = (data / "test/label").read_text().splitlines()
    predictor = Predictor.from_checkpoint(str(oos_run["best"]))
    preds = predictor.batch(texts)
    is_oos = np.array([g == "oos" for g in gold])
    flagged = np.array([p.out_of_scope for p in preds])
    right = np.array([p.intent == g for p, g in zip(preds, gold, strict=True)])
    assert 0 < is_oos.sum() < len(gold) and flagged.any()
    assert all(p.intent == "nlu_fallback" for p in preds if p.out_of_scope)
    assert test["test/in_scope_acc"] == pytest.approx(float((right & ~flagged)[~is_oos].mean()), abs=1e-12)
    assert test["test/oos_recall"] == pytest.approx(float(flagged[is_oos].mean()), abs=1e-12)
    assert test["test/oos_precision"] == pytest.approx(float(is_oos[flagged].mean()), abs=1e-12)
    # intent_acc counts the decision: fallback on an oos utterance is right.
    decided = np.where(flagged, is_oos, right & ~is_oos)
    assert test["test/intent_acc"] == pytest.approx(float(decided.mean()), abs=1e-6)
    # AUROC/FPR@95 of the state's score, recomputed in numpy from the model's raw outputs.
    state = predictor.oos
    logits, feats = _raw(predictor, texts)
    scores = state.score(logits, feats)
    assert test["test/oos_auroc"] == pytest.approx(auroc(scores[~is_oos], scores[is_oos]), abs=1e-5)
    assert test["test/oos_fpr95"] == pytest.approx(fpr_at_tpr(scores[~is_oos], scores[is_oos]), abs=1e-6)
    # Calibration: ECE before/after in the log and the report, and the reliability diagram.
    report = json.loads((log_dir / "test_report.json").read_text())
    cal = report["calibration"]
    # Under 100 in-scope test utterances no ECE is reported (NaN in the log, None in the report), only its size.
    n_in = int((~is_oos).sum())
    assert n_in < 100 and test["test/ece_n"] == cal["ece_n"] == n_in
    assert cal["ece_calibrated"] is None and math.isnan(test["test/ece_calibrated"])
    assert cal["ece_uncalibrated"] is None and math.isnan(test["test/ece_uncalibrated"])
    assert cal["temperature"] == pytest.approx(state.temperature)
    assert (log_dir / "reliability.png").stat().st_size > 1000


def _raw(predictor, texts):
    """Intent logits and pooled features of ``texts``, in one padded batch, from the predictor's backend."""
    from chatft.core.features import pad_batch, tokenize_examples
    from chatft.core.inference_loop import MODEL_INPUTS
    from chatft.core.text import split_words

    words = [[w for w, _, _ in split_words(t)] for t in texts]
    arrays = pad_batch(tokenize_examples(predictor.tokenizer, words, predictor.max_length), predictor.pad_id)
    logits, _, pooled = predictor.logits({k: arrays[k] for k in MODEL_INPUTS})
    return logits, pooled


def test_onnx_gives_the_same_decisions(oos_run, tmp_path):
    from chatft import OnnxPredictor, Predictor

    out = tmp_path / "onnx"
    main(["export", "--ckpt_path", str(oos_run["best"]), "--output", str(out)])
    assert (out / "oos.json").is_file()
    texts = (oos_run["data"] / "test/seq.in").read_text().splitlines()
    want = Predictor.from_checkpoint(str(oos_run["best"])).batch(texts)
    got = OnnxPredictor(out).batch(texts, batch_size=7)
    assert [p.out_of_scope for p in got] == [p.out_of_scope for p in want]
    assert [p.intent for p in got] == [p.intent for p in want]
    assert any(p.out_of_scope for p in got)
    assert [p.intent_confidence for p in got] == pytest.approx([p.intent_confidence for p in want], abs=1e-4)


@pytest.mark.parametrize("method", ["msp", "energy", "mahalanobis"])
def test_every_method_gives_the_same_decisions_in_onnx(oos_run, tmp_path, method):
    """Force each score (with a threshold at the dev median) and compare the two predictors."""
    from chatft import OnnxPredictor, Predictor

    ckpt = torch.load(oos_run["best"], weights_only=True)
    row = next(r for r in ckpt[OOS_KEY]["dev"] if r["method"] == method and r["mode"] == "threshold")
    predictor = Predictor.from_checkpoint(str(oos_run["best"]))
    texts = (oos_run["data"] / "test/seq.in").read_text().splitlines()
    from chatft.core.oos import OOSState

    state = OOSState.from_dict({**ckpt[OOS_KEY], "method": method, "mode": "threshold"})
    scores = state.score(*_raw(predictor, texts))
    ckpt[OOS_KEY].update(method=method, mode="threshold", threshold=float(np.median(scores)),
                         temperature=row["temperature"])  # fmt: skip
    path = tmp_path / f"{method}.ckpt"
    torch.save(ckpt, path)
    out = tmp_path / "onnx"
    main(["export", "--ckpt_path", str(path), "--output", str(out)])
    want = Predictor.from_checkpoint(str(path)).batch(texts)
    got = OnnxPredictor(out).batch(texts, batch_size=5)
    assert 0 < sum(p.out_of_scope for p in want) < len(texts)
    assert [p.out_of_scope for p in got] == [p.out_of_scope for p in want]
    shutil.rmtree(out)


def test_predict_writes_out_of_scope(oos_run, tmp_path, capsys):
    from chatft import Predictor

    texts = (oos_run["data"] / "test/seq.in").read_text().splitlines()
    inputs = tmp_path / "in.txt"
    inputs.write_text("\n".join(texts) + "\n")
    main(["predict", "--ckpt_path", str(oos_run["best"]), "--data.predict_file", str(inputs),
          "--predictions.output", str(tmp_path / "p.jsonl"), "--trainer.enable_progress_bar", "false",
          "--trainer.default_root_dir", str(tmp_path)])  # fmt: skip
    rows = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    want = Predictor.from_checkpoint(str(oos_run["best"])).batch(texts)
    assert [r["out_of_scope"] for r in rows] == [p.out_of_scope for p in want]
    assert [r["intent"] for r in rows] == [p.intent for p in want]


def test_threshold_is_chosen_on_dev_only(tiny_ckpt_run):
    """Changing the test data changes the test numbers, never the fitted state."""
    import torch

    from chatft.model.checkpoint import OOS_KEY

    first, second = tiny_ckpt_run
    a = torch.load(first, weights_only=True)[OOS_KEY]
    b = torch.load(second, weights_only=True)[OOS_KEY]
    assert a["threshold"] is not None
    assert a["temperature"] == b["temperature"] and a["threshold"] == b["threshold"]
    assert (a["method"], a["mode"]) == (b["method"], b["mode"])
    assert torch.equal(a["means"], b["means"]) and torch.equal(a["precision"], b["precision"])
