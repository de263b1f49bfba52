"""The checkpoint fit keeps: later epoch on ties of the monitored metric; optimizer state only in last.ckpt."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.demos.boring_classes import BoringDataModule, BoringModel

from chatft.cli import main
from chatft.model.assets import ASSETS_KEY
from chatft.model.checkpoint import OOS_KEY
from chatft.training.best_checkpoint import FINISHED_KEY, RESUME_ONLY_KEYS, BestCheckpoint

from .conftest import QUIET, cli_args


class ScriptedScore(BoringModel):
    """Logs a scripted ``val/sent_acc`` per epoch."""

    def __init__(self, scores: list[float]) -> None:
        super().__init__()
        self.scores = scores

    def on_validation_epoch_end(self) -> None:
        self.log("val/sent_acc", self.scores[self.current_epoch])


def _kept(callback_class, tmp_path, scores: list[float], keep_newest: bool = False) -> str:
    ckpt = callback_class(
        dirpath=tmp_path / callback_class.__name__,
        monitor="val/sent_acc",
        mode="max",
        filename="best-epoch{epoch:02d}",
        auto_insert_metric_name=False,
    )
    ckpt.keep_newest = keep_newest
    trainer = L.Trainer(
        max_epochs=len(scores),
        limit_train_batches=2,
        limit_val_batches=1,
        callbacks=[ckpt],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(ScriptedScore(scores))
    files = sorted(p.name for p in Path(ckpt.dirpath).iterdir())
    assert files == [Path(ckpt.best_model_path).name]
    return files[0]


def test_ties_keep_the_later_checkpoint(tmp_path):
    scores = [0.5, 0.8, 0.8, 0.7]
    assert _kept(ModelCheckpoint, tmp_path, scores) == "best-epoch01.ckpt"  # Lightning: the earliest
    assert _kept(BestCheckpoint, tmp_path, scores) == "best-epoch02.ckpt"


def test_keep_newest_keeps_the_last_epoch_whatever_its_score(tmp_path):
    # What fit does when dev is too small to choose with (SmallDataSchedule sets keep_newest).
    assert _kept(BestCheckpoint, tmp_path, [0.5, 0.9, 0.7], keep_newest=True) == "best-epoch02.ckpt"


def test_best_holds_weights_last_holds_optimizer_and_both_serve(tiny_encoder, demo_small, tmp_path, capsys):
    root = tmp_path / "run"
    main(["fit", *cli_args(tiny_encoder, demo_small, root, trainer__max_epochs=2, data__batch_size=16)])
    folder = root / "lightning_logs/version_0/checkpoints"
    best = next(folder.glob("best-*.ckpt"))
    last = folder / "last.ckpt"
    b = torch.load(best, weights_only=True, map_location="cpu")
    a = torch.load(last, weights_only=True, map_location="cpu")
    assert "optimizer_states" not in b and "lr_schedulers" not in b and "callbacks" not in b
    assert {"state_dict", "hyper_parameters", ASSETS_KEY, OOS_KEY} <= set(b)
    # The run finished: last.ckpt lost what only resuming reads, kept the calibration written before.
    assert not set(RESUME_ONLY_KEYS) & set(a)
    assert {"state_dict", "callbacks", ASSETS_KEY, OOS_KEY, FINISHED_KEY} <= set(a)
    assert set(a[OOS_KEY]) == set(b[OOS_KEY])
    capsys.readouterr()

    # test, predict, export and Predictor all take the best checkpoint.
    main(["test", *cli_args(tiny_encoder, demo_small, tmp_path / "t"), "--ckpt_path", str(best)])
    assert "test/sent_acc" in capsys.readouterr().out
    text = tmp_path / "in.txt"
    text.write_text("book a flight to boston\n", encoding="utf-8")
    out = tmp_path / "p.jsonl"
    main(
        [
            "predict",
            "--ckpt_path",
            str(best),
            "--data.predict_file",
            str(text),
            "--predictions.output",
            str(out),
            "--trainer.default_root_dir",
            str(tmp_path / "p"),
            *QUIET,
        ]
    )
    assert len(out.read_text(encoding="utf-8").splitlines()) == 1
    main(["export", "--ckpt_path", str(best), "--output", str(tmp_path / "onnx")])
    assert json.loads((tmp_path / "onnx/manifest.json").read_text())["max_length"] == 64
    from chatft.serving.predictor import Predictor

    assert Predictor.from_checkpoint(str(best))("book a flight to boston").words == [
        "book",
        "a",
        "flight",
        "to",
        "boston",
    ]

    # Resuming needs the optimizer: a best checkpoint is refused in one line.
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["fit", *cli_args(tiny_encoder, demo_small, root), "--ckpt_path", str(best)])
    assert exc.value.code == 2
    assert capsys.readouterr().err.strip() == (
        f"chatft: error: {best}: holds model weights only, no optimizer state (best-*.ckpt files do, to save "
        "space): resume from last.ckpt (--ckpt_path last), or start a new fit without --ckpt_path"
    )
    # A finished run's last.ckpt has nothing to resume: one line says so.
    with pytest.raises(SystemExit) as exc:
        main(["fit", *cli_args(tiny_encoder, demo_small, root), "--ckpt_path", "last"])
    assert exc.value.code == 2
    assert capsys.readouterr().err.strip() == (
        f"chatft: error: {last}: this run finished, so nothing to resume (its optimizer state was dropped to "
        "save space; --checkpoint.keep_optimizer_state true keeps it): test it with --ckpt_path last, or start "
        "a new fit without --ckpt_path"
    )


def test_keep_optimizer_state_keeps_a_finished_run_resumable(tiny_encoder, demo_small, tmp_path):
    root = tmp_path / "run"
    args = [
        *cli_args(tiny_encoder, demo_small, root, data__batch_size=16),
        "--checkpoint.keep_optimizer_state",
        "true",
    ]
    main(["fit", *args, "--trainer.max_epochs", "1"])
    last = root / "lightning_logs/version_0/checkpoints/last.ckpt"
    a = torch.load(last, weights_only=True, map_location="cpu")
    assert len(a["optimizer_states"]) == 1 and FINISHED_KEY not in a and OOS_KEY in a
    # ... and trains on from it: one more epoch, in the same run folder.
    main(["fit", *args, "--trainer.max_epochs", "2", "--ckpt_path", "last"])
    assert torch.load(last, weights_only=True, map_location="cpu")["epoch"] == 2


class DevOf(BoringDataModule):
    """BoringDataModule with a dev split of ``n_dev`` utterances, as SmallDataSchedule counts them."""

    def __init__(self, n_dev: int) -> None:
        super().__init__()
        self.datasets = {"dev": list(range(n_dev))}


def test_keep_newest_is_decided_again_by_each_fit(tmp_path):
    # One BestCheckpoint through two fits in one process: the first, on a 5-utterance dev, keeps its newest
    # epoch; the second, on a 100-utterance dev, chooses on dev again instead of inheriting keep_newest.
    from chatft.training.schedule import SmallDataSchedule

    ckpt = BestCheckpoint(
        dirpath=tmp_path, monitor="val/sent_acc", mode="max", filename="best-epoch{epoch:02d}",
        auto_insert_metric_name=False,
    )  # fmt: skip
    kept = []
    for n_dev, scores in ((5, [0.5, 0.9, 0.7]), (100, [0.95, 0.99, 0.97])):
        trainer = L.Trainer(
            max_epochs=3, limit_train_batches=2, limit_val_batches=1, logger=False, enable_progress_bar=False,
            enable_model_summary=False, num_sanity_val_steps=0,
            callbacks=[SmallDataSchedule(min_dev_utterances=50), ckpt],
        )  # fmt: skip
        trainer.fit(ScriptedScore(scores), datamodule=DevOf(n_dev))
        kept.append((ckpt.keep_newest, sorted(p.name for p in tmp_path.iterdir())))
    assert kept == [(False, ["best-epoch02.ckpt"]), (False, ["best-epoch01.ckpt"])]
