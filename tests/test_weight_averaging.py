"""WeightEMA: validation scores the average, and every checkpoint written then holds exactly those weights."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.demos.boring_classes import BoringModel

from chatft.cli import main
from chatft.compat.lightning_hooks import AVERAGING_STATE, CURRENT_MODEL_STATE
from chatft.training.best_checkpoint import FINISHED_KEY, RESUME_ONLY_KEYS
from chatft.training.weight_averaging import WeightEMA

from .conftest import cli_args


class Probe(L.Callback):
    """Records the raw weights after every optimizer step and the weights validation ran with."""

    def __init__(self) -> None:
        self.raw: list[torch.Tensor] = []
        self.validated: list[torch.Tensor] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.raw.append(pl_module.layer.weight.detach().clone())

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self.validated.append(pl_module.layer.weight.detach().clone())


def _fit(tmp_path: Path, decay: float, start_step: int = 0):
    torch.manual_seed(0)
    probe = Probe()
    every_epoch = ModelCheckpoint(
        dirpath=tmp_path,
        filename="e{epoch}",
        save_top_k=-1,
        save_weights_only=True,
        auto_insert_metric_name=False,
    )
    full = ModelCheckpoint(dirpath=tmp_path / "full", filename="full", every_n_epochs=3)
    trainer = L.Trainer(
        max_epochs=3,
        limit_train_batches=4,
        limit_val_batches=1,
        callbacks=[probe, WeightEMA(decay=decay, start_step=start_step), every_epoch, full],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    model = BoringModel()
    trainer.fit(model)
    return probe, model, tmp_path


@pytest.mark.parametrize("start_step", [0, 5])
def test_validation_and_checkpoints_use_the_exponential_average(tmp_path, start_step):
    probe, model, folder = _fit(tmp_path, decay=0.5, start_step=start_step)
    assert len(probe.raw) == 12 and len(probe.validated) == 3
    expected, ema = [], None
    for step, raw in enumerate(probe.raw):
        ema = raw.clone() if step <= start_step else 0.5 * ema + 0.5 * raw  # the first averaged step copies
        expected.append(ema)
    for epoch in range(3):
        torch.testing.assert_close(probe.validated[epoch], expected[4 * epoch + 3], rtol=0, atol=1e-7)
        saved = torch.load(folder / f"e{epoch}.ckpt", weights_only=True)["state_dict"]["layer.weight"]
        assert torch.equal(saved, probe.validated[epoch])  # weights-only file = what was scored
        # before start_step the average follows the weights; after it, it differs from them
        assert torch.equal(saved, probe.raw[4 * epoch + 3]) == (4 * epoch + 3 < start_step)
    assert torch.equal(model.layer.weight.detach(), probe.validated[-1])  # fit ends on the average
    full = torch.load(folder / "full" / "full.ckpt", weights_only=True)
    assert torch.equal(full["state_dict"]["layer.weight"], probe.validated[-1])
    assert torch.equal(full["current_model_state"]["layer.weight"], probe.raw[-1])


def test_decay_zero_is_off(tmp_path):
    probe, model, _ = _fit(tmp_path, decay=0.0)
    assert all(torch.equal(v, probe.raw[4 * e + 3]) for e, v in enumerate(probe.validated))
    assert torch.equal(model.layer.weight.detach(), probe.raw[-1])


@pytest.mark.parametrize(("decay", "start"), [(1.0, 0), (-0.1, 0), (0.9, -1)])
def test_bad_settings_are_config_errors(decay, start):
    from chatft.core.errors import ConfigError

    with pytest.raises(ConfigError, match="--ema.decay"):
        WeightEMA(decay=decay, start_step=start)


def test_cli_keeps_the_averaged_weights_it_scored(tiny_encoder, demo_small, tmp_path, capsys):
    root = tmp_path / "run"
    main(
        [
            "fit",
            *cli_args(
                tiny_encoder, demo_small, root, trainer__max_epochs=2, data__batch_size=16, ema__decay=0.9
            ),
        ]
    )
    log_dir = root / "lightning_logs/version_0"
    best = next((log_dir / "checkpoints").glob("best-*.ckpt"))
    # The run finished: its last.ckpt holds the average as state_dict and none of what only resuming reads,
    # the raw weights (a second copy of the model) and the average's own state included.
    last = torch.load(log_dir / "checkpoints/last.ckpt", weights_only=True, map_location="cpu")
    assert last[FINISHED_KEY] is True
    assert [k for k in (*RESUME_ONLY_KEYS, CURRENT_MODEL_STATE, AVERAGING_STATE) if k in last] == []
    epoch = int(best.name.split("epoch")[1].split("-")[0])
    row = next(
        r
        for r in map(json.loads, (log_dir / "val_metrics.jsonl").read_text().splitlines())
        if r["epoch"] == epoch
    )
    capsys.readouterr()
    main(
        [
            "validate",
            *cli_args(tiny_encoder, demo_small, tmp_path / "v"),
            "--ckpt_path",
            str(best),
            "--verbose",
        ]
    )
    out = capsys.readouterr().out
    loss = float(
        next(line for line in out.splitlines() if "val/loss" in line).split()[-2 if out.count("│") else -1]
    )
    assert round(loss, 4) == round(row["val/loss"], 4)
