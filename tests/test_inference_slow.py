"""Slow inference checks: ATIS acceptance (predict scores like test) and predict under real 2-process DDP.

Run with ``python -m pytest -q -m slow tests/test_inference_slow.py``. Set ``CHATFT_ATIS_CKPT`` to a
checkpoint trained on ATIS (e.g. ``runs/atis/lightning_logs/version_0/checkpoints/best-….ckpt``) to check that
model; without it the tiny random BERT is trained briefly on ATIS first.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chatft.cli import main

from .conftest import ATIS, QUIET, cli_args, demo_subset

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.mark.skipif(not (ATIS / "test" / "seq.in").is_file(), reason=f"ATIS not found at {ATIS}")
def test_atis_predict_tags_score_exactly_like_test(tiny_encoder, tmp_path):
    """Acceptance: seqeval F1 of predict's word tags on ATIS test == test's slot_f1 (1e-6); same intent accuracy."""
    from seqeval.metrics import f1_score

    common = ["--config", str(REPO / "configs/atis.yaml"), "--data.data_dir", str(ATIS), *QUIET]
    ckpt = os.environ.get("CHATFT_ATIS_CKPT")
    if not ckpt:
        root = tmp_path / "fit"
        main(["fit", *common, "--model.encoder", tiny_encoder, "--trainer.max_epochs", "1",
              "--model.head_learning_rate", "3e-3", "--trainer.default_root_dir", str(root)])  # fmt: skip
        ckpt = str(root / "lightning_logs/version_0/checkpoints/last.ckpt")
    main(["test", *common, "--ckpt_path", ckpt, "--trainer.default_root_dir", str(tmp_path / "t")])
    metrics = json.loads((tmp_path / "t/test_report.json").read_text())["metrics"]
    out = tmp_path / "predictions.jsonl"
    main(["predict", *common, "--ckpt_path", ckpt, "--data.predict_file", str(ATIS / "test/seq.in"),
          "--predictions.output", str(out), "--trainer.default_root_dir", str(tmp_path / "p")])  # fmt: skip
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    gold_tags = [line.split() for line in (ATIS / "test/seq.out").read_text(encoding="utf-8").splitlines()]
    gold_intents = (ATIS / "test/label").read_text(encoding="utf-8").split()
    assert len(rows) == len(gold_tags) == len(gold_intents)
    assert [r["words"] for r in rows] == [
        line.split() for line in (ATIS / "test/seq.in").read_text().splitlines()
    ]
    f1 = f1_score(gold_tags, [r["tags"] for r in rows])
    acc = sum(r["intent"] == g for r, g in zip(rows, gold_intents, strict=True)) / len(rows)
    print(
        f"ATIS test via predict: slot F1 {f1:.6f} (test: {metrics['test/slot_f1']:.6f}), intent acc {acc:.6f}"
    )
    assert f1 == pytest.approx(metrics["test/slot_f1"], abs=1e-6)
    assert acc == pytest.approx(metrics["test/intent_acc"], abs=1e-6)


def test_predict_under_ddp_writes_the_same_file_in_input_order(tiny_encoder, tmp_path):
    """Two CPU processes (gloo) each predict a shard; the file equals the one-process file, line for line."""
    data = demo_subset(tmp_path / "data", n_train=32, n_eval=23)
    main(["fit", *cli_args(tiny_encoder, data, tmp_path / "fit", trainer__max_epochs=1)])
    ckpt = tmp_path / "fit/lightning_logs/version_0/checkpoints/last.ckpt"
    outputs = {}
    for devices in ("1", "2"):
        out = tmp_path / f"pred-{devices}.jsonl"
        args = ["predict", "--ckpt_path", str(ckpt), "--data.predict_file", str(data / "test/seq.in"),
                "--data.eval_batch_size", "4", "--trainer.accelerator", "cpu", "--trainer.devices", devices,
                "--trainer.strategy", "ddp" if devices == "2" else "auto", "--predictions.output", str(out),
                "--trainer.default_root_dir", str(tmp_path / f"p{devices}"), *QUIET]  # fmt: skip
        result = subprocess.run(
            [sys.executable, "-m", "chatft", *args], cwd=REPO, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stdout.strip().splitlines()[-1] == f"predictions: {out}"
        outputs[devices] = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    texts = (data / "test/seq.in").read_text(encoding="utf-8").splitlines()
    assert [r["text"] for r in outputs["2"]] == texts
    for one, two in zip(outputs["1"], outputs["2"], strict=True):
        assert (one["tags"], one["intent"]) == (two["tags"], two["intent"])
        assert one["intent_confidence"] == pytest.approx(two["intent_confidence"], abs=1e-5)
