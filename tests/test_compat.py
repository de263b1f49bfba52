"""Every framework internal chatft relies on (:mod:`chatft.compat`) still exists and still behaves.

Each private method is checked for the parameters chatft calls it with, each private attribute for its
presence, and each hook for the behaviour chatft relies on (in one tiny Lightning fit, a stand-alone
weight average, a LightningCLI run and small jsonargparse/torchmetrics objects). A framework release that
renames or changes one of them fails the test named after it, instead of silently changing training.
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
import warnings
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint, WeightAveraging
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.demos.boring_classes import BoringDataModule, BoringModel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torchmetrics import Metric
from torchmetrics.classification import MulticlassCalibrationError

from chatft.compat.jsonargparse_hooks import debug_mode_active, error_parser, long_options
from chatft.compat.lightning_hooks import (
    AVERAGING_STATE,
    CURRENT_MODEL_STATE,
    CheckpointWriteHook,
    EarlyStoppingCheckHook,
    LightningCLIHooks,
    WeightAveragingHooks,
    attached_trainer,
    set_max_epochs,
    train_batch_progress,
)
from chatft.compat.torchmetrics_hooks import calibration_states, synced_states
from tests.test_boundary import heavy_modules_after_import

# A deprecation raised while a hook runs fails its test, whichever module it is attributed to.
pytestmark = pytest.mark.filterwarnings("error::DeprecationWarning", "error::PendingDeprecationWarning")

# (owner, private method, the parameters chatft passes): a rename or a changed signature fails here.
PRIVATE_METHODS = [
    (ModelCheckpoint, "_save_checkpoint", ["self", "trainer", "filepath"]),
    (EarlyStopping, "_run_early_stopping_check", ["self", "trainer"]),
    (WeightAveraging, "_swap_models", ["self", "pl_module"]),
    (WeightAveraging, "_copy_average_to_current", ["self", "pl_module"]),
    (LightningCLI, "_prepare_subcommand_kwargs", ["self", "subcommand"]),
    (LightningCLI, "_get", ["self", "config", "key", "default"]),
]


@pytest.mark.parametrize(
    ("owner", "name", "params"), PRIVATE_METHODS, ids=[f"{o.__name__}.{n}" for o, n, _ in PRIVATE_METHODS]
)
def test_private_method_signature(owner, name, params):
    method = getattr(owner, name, None)
    assert method is not None, f"{owner.__qualname__}.{name} is gone: update chatft/compat"
    assert list(inspect.signature(method).parameters) == params


def test_jsonargparse_error_signature_and_debug_mode(monkeypatch):
    from jsonargparse import ArgumentParser

    assert list(inspect.signature(ArgumentParser.error).parameters) == ["self", "message", "ex"]
    monkeypatch.delenv("JSONARGPARSE_DEBUG", raising=False)
    assert debug_mode_active() is False
    monkeypatch.setenv("JSONARGPARSE_DEBUG", "true")
    assert debug_mode_active() is True


def test_jsonargparse_error_names_subcommand_parser():
    """A key the subcommand does not accept reaches ``error`` with ``ex.subcommand_parser`` = that parser."""
    from jsonargparse import ArgumentParser

    seen: list = []

    class Recording(ArgumentParser):
        def error(self, message, ex=None):
            seen.append((message, error_parser(self, ex)))
            raise SystemExit(2)

    top = Recording(prog="top")
    sub = ArgumentParser(prog="sub")
    sub.add_argument("--x", type=int, default=1)
    top.add_subcommands().add_subcommand("a", sub)
    with pytest.raises(SystemExit):
        top.parse_object({"a": {"y": 1}})
    assert seen == [("Subcommand 'a' does not accept option 'y'", sub)]
    assert error_parser(top, None) is top


def test_argparse_long_options():
    from jsonargparse import ArgumentParser

    parser = ArgumentParser(prog="p")
    parser.add_argument("--learning_rate", type=float, default=0.1)
    parser.add_argument("-v", "--verbose", action="store_true")
    assert isinstance(parser._option_string_actions, dict)
    assert long_options(parser) == ["--help", "--learning_rate", "--verbose"]
    assert long_options(argparse.ArgumentParser(add_help=False)) == []


@pytest.mark.parametrize("module", ["chatft.compat", "chatft.compat.jsonargparse_hooks"])
def test_parsing_hooks_import_without_torch(module):
    assert heavy_modules_after_import(module) == []


# ---- one tiny fit exercising the Lightning hooks -------------------------------------------------------


class LoggingModel(BoringModel):
    def validation_step(self, batch, batch_idx):
        loss = self.step(batch)
        self.log("val_loss", loss)
        return {"x": loss}


class RecordingCheckpoint(CheckpointWriteHook):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.writes: list[tuple[str, bool, tuple[int, int, bool]]] = []

    def write_checkpoint(self, trainer, filepath: str) -> None:
        progress = train_batch_progress(trainer)
        self.writes.append((os.path.basename(filepath), filepath == self.last_model_path, progress))
        super().write_checkpoint(trainer, filepath)


class RecordingEarlyStopping(EarlyStoppingCheckHook):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.checked_epochs: list[int] = []

    def early_stopping_check(self, trainer) -> None:
        self.checked_epochs.append(trainer.current_epoch)
        super().early_stopping_check(trainer)


class Probe(L.Callback):
    """Stretches the fit to 2 epochs in ``setup`` and records progress and the attached trainer."""

    def __init__(self) -> None:
        self.max_epochs_after_setup = None
        self.batch_ends: list[tuple[int, int, bool]] = []
        self.attached = None

    def setup(self, trainer, pl_module, stage: str) -> None:
        set_max_epochs(trainer, 2)
        self.max_epochs_after_setup = trainer.max_epochs

    def on_train_start(self, trainer, pl_module) -> None:
        self.attached = attached_trainer(pl_module) is trainer

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.batch_ends.append(train_batch_progress(trainer))


@pytest.fixture(scope="module")
def tiny_fit(tmp_path_factory):
    L.seed_everything(0, verbose=False)
    root = tmp_path_factory.mktemp("fit")
    checkpoint = RecordingCheckpoint(dirpath=root, save_last=True, save_top_k=1, monitor=None)
    stopping = RecordingEarlyStopping(monitor="val_loss", patience=100)
    probe = Probe()
    model = LoggingModel()
    before = attached_trainer(model)
    trainer = L.Trainer(
        max_epochs=1,
        limit_train_batches=2,
        limit_val_batches=1,
        num_sanity_val_steps=0,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=root,
        callbacks=[checkpoint, stopping, probe],
    )
    trainer.fit(model)
    return SimpleNamespace(
        trainer=trainer, checkpoint=checkpoint, stopping=stopping, probe=probe, attached_before=before
    )


def test_save_checkpoint_writes_every_file_last_path_set_first(tiny_fit):
    """``_save_checkpoint`` writes top-k and last.ckpt; ``last_model_path`` already names last.ckpt."""
    assert [(name, is_last) for name, is_last, _ in tiny_fit.checkpoint.writes] == [
        ("epoch=0-step=2.ckpt", False),
        ("last.ckpt", True),
        ("epoch=1-step=4.ckpt", False),
        ("last.ckpt", True),
    ]


def test_run_early_stopping_check_once_per_validation(tiny_fit):
    assert tiny_fit.stopping.checked_epochs == [0, 1]


def test_batch_progress_counts_the_epoch(tiny_fit):
    """What ``resume.epoch_progress`` reads: batches processed and ready, and the epoch's last batch."""
    assert tiny_fit.probe.batch_ends == [(1, 1, False), (2, 2, True), (1, 1, False), (2, 2, True)]
    # checkpoints are written after the epoch's last batch
    assert [p for _, _, p in tiny_fit.checkpoint.writes] == [(2, 2, True)] * 4


def test_set_max_epochs_in_setup_lengthens_the_fit(tiny_fit):
    assert tiny_fit.probe.max_epochs_after_setup == 2
    assert tiny_fit.trainer.current_epoch == 2
    assert tiny_fit.trainer.global_step == 4


def test_attached_trainer(tiny_fit):
    assert tiny_fit.attached_before is None
    assert tiny_fit.probe.attached is True


# ---- the weight average ----------------------------------------------------------------------------


class Linear(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)


def _fill(module: torch.nn.Module, value: float) -> None:
    with torch.no_grad():
        for p in module.parameters():
            p.fill_(value)


def _values(module: torch.nn.Module) -> list[float]:
    return [float(v) for p in module.parameters() for v in p.detach().flatten()]


def _averaging(pl_module: L.LightningModule) -> WeightAveragingHooks:
    callback = WeightAveragingHooks(use_buffers=False, multi_avg_fn=get_ema_multi_avg_fn(0.5))
    assert callback.average_model is None  # WeightAveraging._average_model before setup
    callback.setup(None, pl_module, "fit")
    assert isinstance(callback.average_model, AveragedModel)
    return callback


def test_weight_average_swap_and_copy():
    module = Linear()
    callback = _averaging(module)
    _fill(module, 1.0)
    _fill(callback.average_model.module, 0.0)
    callback.swap_average(module)
    assert (_values(module), _values(callback.average_model.module)) == ([0.0] * 3, [1.0] * 3)
    _fill(callback.average_model.module, 2.0)
    callback.copy_average_to_module(module)
    assert _values(module) == [2.0] * 3


def test_weight_average_latest_update_step_skips_the_step():
    """Lightning averages after a batch only when ``global_step > _latest_update_step``."""
    module = Linear()
    callback = _averaging(module)
    callback.set_latest_update_step(3)
    callback.on_train_batch_end(SimpleNamespace(global_step=3), module, None, None, 0)
    assert int(callback.average_model.n_averaged) == 0
    callback.on_train_batch_end(SimpleNamespace(global_step=4), module, None, None, 0)
    assert int(callback.average_model.n_averaged) == 1


def test_weight_average_checkpoint_layout_matches_lightning():
    """Written while the module holds the average, the checkpoint equals Lightning's own for the raw module."""
    module = Linear()
    callback = _averaging(module)
    _fill(module, 1.0)
    callback.on_train_batch_end(SimpleNamespace(global_step=1), module, None, None, 0)  # n_averaged = 1
    _fill(callback.average_model.module, 0.5)
    theirs = {"state_dict": dict(module.state_dict())}
    callback.on_save_checkpoint(None, module, theirs)  # Lightning's layout, module holds the raw weights
    theirs = {key: {n: t.clone() for n, t in part.items()} for key, part in theirs.items()}  # before the swap
    callback.swap_average(module)
    ours = {"state_dict": dict(module.state_dict())}
    callback.checkpoint_while_swapped(ours)
    assert set(theirs) == set(ours) == {"state_dict", CURRENT_MODEL_STATE, AVERAGING_STATE}
    for key in theirs:
        assert set(theirs[key]) == set(ours[key])
        for name in theirs[key]:
            assert torch.equal(theirs[key][name], ours[key][name]), (key, name)
    assert list(ours[AVERAGING_STATE]) == ["n_averaged"]


# ---- LightningCLI --------------------------------------------------------------------------------------


def test_lightning_cli_hooks(tmp_path, monkeypatch):
    # LightningCLI warns when it gets both args and a command line (pytest's)
    monkeypatch.setattr(sys, "argv", ["chatft"])
    seen: dict = {}

    class RecordingCLI(LightningCLIHooks):
        def subcommand_kwargs(self, subcommand: str) -> dict:
            kwargs = super().subcommand_kwargs(subcommand)
            seen["kwargs"] = (subcommand, sorted(kwargs))
            return kwargs

        def instantiate_trainer(self, **kwargs):
            seen["fast_dev_run"] = self.trainer_config()["fast_dev_run"]
            seen["parsers"] = sorted(self.subcommand_parsers())
            return super().instantiate_trainer(**kwargs)

    with warnings.catch_warnings():
        # LightningCLI itself calls jsonargparse APIs deprecated in 4.49 (see pyproject.toml): not our hooks.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="lightning.pytorch.cli")
        RecordingCLI(
            BoringModel,
            BoringDataModule,
            save_config_callback=None,
            args=[
                "fit",
                "--trainer.fast_dev_run=1",
                "--trainer.logger=false",
                "--trainer.enable_progress_bar=false",
                "--trainer.enable_model_summary=false",
                f"--trainer.default_root_dir={tmp_path}",
            ],
        )
    assert seen == {
        "fast_dev_run": 1,
        "parsers": ["fit", "predict", "test", "validate"],
        "kwargs": ("fit", ["ckpt_path", "datamodule", "model", "weights_only"]),
    }


# ---- torchmetrics --------------------------------------------------------------------------------------


def test_metric_is_synced_and_sync_context():
    metric = MulticlassCalibrationError(num_classes=2, n_bins=2)
    assert metric._is_synced is False
    params = inspect.signature(Metric.sync_context).parameters
    assert {"dist_sync_fn", "should_sync", "should_unsync"} <= set(params)
    metric.update(torch.tensor([[0.9, 0.1], [0.3, 0.7]]), torch.tensor([0, 0]))
    with synced_states(metric):  # one process: nothing to reduce, the local states are read
        conf, hits = calibration_states(metric)
    assert [t.tolist() for t in conf] == [[pytest.approx(0.9), pytest.approx(0.7)]]
    assert [t.tolist() for t in hits] == [[1.0, 0.0]]
    assert metric._is_synced is False
