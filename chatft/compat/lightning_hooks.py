"""Lightning internals chatft overrides or reads, each behind a name of chatft's own.

Overrides are mixin base classes: each routes one private Lightning method to a public-looking chatft hook,
so chatft's callbacks override ``write_checkpoint`` and never name ``_save_checkpoint``. Reads and writes
of private state are functions. ``tests/test_compat.py`` checks every hook against the installed Lightning
(signature, and behaviour in one tiny fit); ``pyproject.toml``'s Lightning pin names them.

Lightning internal -> chatft name (used by):

* ``ModelCheckpoint._save_checkpoint`` -> :meth:`CheckpointWriteHook.write_checkpoint` (``BestCheckpoint``)
* ``EarlyStopping._run_early_stopping_check`` -> :meth:`EarlyStoppingCheckHook.early_stopping_check`
  (``SmallDataSchedule``)
* ``WeightAveraging._average_model``, ``_swap_models``, ``_copy_average_to_current``,
  ``_latest_update_step`` and its checkpoint layout -> :class:`WeightAveragingHooks` (``WeightEMA``)
* ``LightningCLI._prepare_subcommand_kwargs``, ``_get``, ``_subcommand_parsers`` -> :class:`LightningCLIHooks`
  (``ChatftCLI``)
* ``trainer.fit_loop.epoch_loop.batch_progress`` -> :func:`train_batch_progress` (``resume.epoch_progress``)
* ``trainer.fit_loop.max_epochs`` (set) -> :func:`set_max_epochs` (``SmallDataSchedule``)
* ``LightningModule._trainer`` -> :func:`attached_trainer` (``IntentSlotModule.on_save_checkpoint``)
"""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint, WeightAveraging
from lightning.pytorch.cli import LightningCLI


class CheckpointWriteHook(ModelCheckpoint):
    """``ModelCheckpoint`` whose every file write goes through :meth:`write_checkpoint`.

    Lightning's private ``_save_checkpoint(trainer, filepath)`` writes both the top-k files and
    ``last.ckpt``; for the latter, ``last_model_path`` is already set to ``filepath`` when it is called.
    """

    def _save_checkpoint(self, trainer: L.Trainer, filepath: str) -> None:
        self.write_checkpoint(trainer, filepath)

    def write_checkpoint(self, trainer: L.Trainer, filepath: str) -> None:
        """Write one checkpoint file (top-k or last); override to change what goes into it."""
        super()._save_checkpoint(trainer, filepath)


class EarlyStoppingCheckHook(EarlyStopping):
    """``EarlyStopping`` whose stop decision goes through :meth:`early_stopping_check`.

    Lightning's private ``_run_early_stopping_check(trainer)`` is what its validation/epoch-end hooks call;
    overriding it skips the decision without touching when it is taken.
    """

    def _run_early_stopping_check(self, trainer: L.Trainer) -> None:
        self.early_stopping_check(trainer)

    def early_stopping_check(self, trainer: L.Trainer) -> None:
        """Decide whether to stop now (Lightning's rule); override to skip it."""
        super()._run_early_stopping_check(trainer)


#: Keys of Lightning's ``WeightAveraging`` checkpoint layout: the raw weights and the ``AveragedModel``'s
#: own state (``n_averaged``); ``state_dict`` holds the average.
CURRENT_MODEL_STATE = "current_model_state"
AVERAGING_STATE = "averaging_state"
_AVERAGED_PREFIX = "module."  # torch's AveragedModel names the wrapped module's entries module.*


class WeightAveragingHooks(WeightAveraging):
    """``WeightAveraging`` with its private average and swap methods under chatft names."""

    @property
    def average_model(self) -> Any:
        """The ``torch.optim.swa_utils.AveragedModel`` (None before ``setup`` for fit, and outside fit)."""
        return self._average_model

    def swap_average(self, pl_module: L.LightningModule) -> None:
        """Exchange the module's parameters and buffers with the average's (Lightning's ``_swap_models``)."""
        self._swap_models(pl_module)

    def copy_average_to_module(self, pl_module: L.LightningModule) -> None:
        """Overwrite the module's weights with the average (Lightning's ``_copy_average_to_current``)."""
        self._copy_average_to_current(pl_module)

    def set_latest_update_step(self, step: int) -> None:
        """Record ``step`` as the last averaged one, so Lightning does not average it again (its
        ``on_train_batch_end`` updates only when ``global_step > _latest_update_step``)."""
        self._latest_update_step = step

    def checkpoint_while_swapped(self, checkpoint: dict) -> None:
        """Lightning's checkpoint layout when the module already holds the average (so ``state_dict`` is
        the average) and the averaged model holds the raw weights: the same keys its own
        ``on_save_checkpoint`` writes for an unswapped module."""
        other = self.average_model.state_dict()
        n = len(_AVERAGED_PREFIX)
        checkpoint[CURRENT_MODEL_STATE] = {
            k[n:]: v for k, v in other.items() if k.startswith(_AVERAGED_PREFIX)
        }
        checkpoint[AVERAGING_STATE] = {k: v for k, v in other.items() if not k.startswith(_AVERAGED_PREFIX)}


class LightningCLIHooks(LightningCLI):
    """``LightningCLI`` with the private pieces chatft's CLI uses under chatft names."""

    def _prepare_subcommand_kwargs(self, subcommand: str) -> dict:
        return self.subcommand_kwargs(subcommand)

    def subcommand_kwargs(self, subcommand: str) -> dict:
        """Keyword arguments of the ``Trainer`` method a subcommand runs (``model``, ``datamodule``,
        ``ckpt_path``...); override to change them."""
        return super()._prepare_subcommand_kwargs(subcommand)

    def trainer_config(self) -> Any:
        """The instantiated config's ``trainer`` section (of the running subcommand), as
        ``instantiate_trainer`` reads it."""
        return self._get(self.config_init, "trainer", default={})

    def subcommand_parsers(self) -> dict:
        """``{subcommand: its parser}`` once the parsers exist (empty without subcommands)."""
        return getattr(self, "_subcommand_parsers", {})


def train_batch_progress(trainer: L.Trainer) -> tuple[int, int, bool]:
    """``(batches processed, batches ready, whether the last fetched batch is the epoch's last)`` of the
    current training epoch (``fit_loop.epoch_loop.batch_progress``: ``current.processed``,
    ``current.ready``, ``is_last_batch``)."""
    progress = trainer.fit_loop.epoch_loop.batch_progress
    return int(progress.current.processed), int(progress.current.ready), bool(progress.is_last_batch)


def set_max_epochs(trainer: L.Trainer, epochs: int) -> None:
    """Change the number of epochs of a fit already set up (``Trainer.max_epochs`` is read-only; the fit
    loop reads ``fit_loop.max_epochs`` at each epoch)."""
    trainer.fit_loop.max_epochs = epochs


def attached_trainer(module: Any) -> L.Trainer | None:
    """The trainer ``module`` is attached to, or None (``LightningModule.trainer`` raises instead)."""
    return getattr(module, "_trainer", None)
