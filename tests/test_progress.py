"""Progress output: plain lines when stdout is not a terminal (log files, SLURM, CI); dev metrics on the bar."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import torch

from chatft.cli import main
from chatft.training.progress import ChatftProgressBar, format_duration

REPO = Path(__file__).resolve().parents[1]
STEP = re.compile(r"^step (\d+)/8 epoch (\d)/1 loss \d+\.\d{4} lr [0-9.e-]+ \d+\.\d utt/s ETA \d+s$")
VAL_KEYS = [
    "val/loss",
    "val/intent_acc",
    "val/intent_f1",
    "val/intent_precision",
    "val/intent_recall",
    "val/slot_precision",
    "val/slot_recall",
    "val/slot_f1",
    "val/sent_acc",
]


def test_fit_with_stdout_not_a_terminal_prints_plain_progress_lines(
    tiny_encoder, demo_small, tmp_path, capsys
):
    # 64 training utterances, batch 16: 4 batches per epoch, so a line after every batch (>= every 10 %).
    main(
        [
            "fit",
            "--config",
            str(REPO / "configs/demo.yaml"),
            "--model.encoder",
            tiny_encoder,
            "--data.data_dir",
            str(demo_small),
            "--trainer.max_epochs",
            "2",
            "--trainer.default_root_dir",
            str(tmp_path / "run"),
            "--trainer.enable_model_summary",
            "false",
            "--data.batch_size",
            "16",
        ]
    )
    out = capsys.readouterr().out
    steps = [line for line in out.splitlines() if line.startswith("step ")]
    assert [STEP.match(line).groups() for line in steps] == [
        (str(s), str((s - 1) // 4)) for s in range(1, 9)
    ], steps
    vals = [line for line in out.splitlines() if line.startswith("validation ")]
    assert [line.split(":")[0] for line in vals] == ["validation epoch 0 step 4", "validation epoch 1 step 8"]
    for line in vals:
        pairs = [p.split("=") for p in line.split(": ", 1)[1].split()]
        assert [k for k, _ in pairs] == VAL_KEYS, line
        assert all(re.fullmatch(r"\d+\.\d{4}", v) for _, v in pairs)
    assert "\r" not in out  # no bar redraws in the log


def test_terminal_bar_shows_dev_sentence_accuracy_and_slot_f1():
    bar = ChatftProgressBar(plain=False)
    trainer = SimpleNamespace(
        loggers=[],
        progress_bar_metrics={"train/loss": 0.5},
        callback_metrics={
            "val/sent_acc": torch.tensor(0.81404),
            "val/slot_f1": torch.tensor(0.9),
            "val/loss": 1.0,
        },
    )
    assert bar.get_metrics(trainer, None) == {
        "train/loss": 0.5,
        "val/sent_acc": "0.8140",
        "val/slot_f1": "0.9000",
    }


def test_format_duration():
    assert [format_duration(s) for s in (0, 45.4, 250, 7500)] == ["0s", "45s", "4m10s", "2h05m"]
