"""Resuming a killed run exactly where it stopped: ``python -m chatft fit ... --ckpt_path last``.

Three pieces, each small:

* :class:`AutoSave` keeps ``last.ckpt`` fresh: after every epoch, every ``every_n_train_steps`` optimizer
  steps (so a SIGKILL loses at most that many steps), at the end, and when the process receives SIGTERM,
  which is what schedulers send before they kill a job (Lightning turns SIGTERM into an exception between
  two batches; this callback saves, then the CLI exits with code 143).
* :class:`ResumableBatchSampler` makes the position in the training data part of the checkpoint. Lightning
  restores the loop counters of a run stopped mid-epoch, but a plain ``DataLoader`` starts its epoch again
  from the first batch, so the resumed run would see the first batches twice and never see the last ones.
  The datamodule saves the epoch and how many of its batches were trained (``state_dict``); on resume the
  sampler replays the same epoch order and skips the batches already trained. (The loader is also
  "stateful" for Lightning, :class:`ResumableDataLoader`, but Lightning restores loader states only when it
  builds the loader after restoring, and ``estimated_stepping_batches`` in ``configure_optimizers`` builds
  it before: the datamodule's state is what is actually used.)
* :func:`resolve_resume` turns ``--ckpt_path last`` into the newest ``last.ckpt`` under the run's root and
  makes the resumed run log into the same ``version_N`` folder (Lightning alone would look in a new, empty
  ``version_N+1`` and silently start from scratch). The checkpoint callback's state (best score, best
  path) then resumes with it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException
from torch.utils.data import DataLoader, Sampler

from chatft.compat.lightning_hooks import train_batch_progress
from chatft.core.errors import ConfigError
from chatft.training.checkpoint import find_last_checkpoints

log = logging.getLogger(__name__)

#: Exit status after a SIGTERM that was handled (checkpoint saved): 128 + 15, what a shell reports.
SIGTERM_EXIT_CODE = 143


class ResumableBatchSampler(Sampler[list[int]]):
    """Wraps an epoch-seeded batch sampler; after :meth:`load_state_dict` its next pass skips trained batches.

    ``progress`` reports ``(batches of the current epoch trained, whether the epoch's last batch was
    trained)``; it is read when a checkpoint is written. A finished epoch is saved as "next epoch, nothing
    done", so the pass built right after a resume (Lightning builds it before it knows the epoch is over)
    is the next epoch's, whole. The wrapped sampler must give the same batches for the same epoch (as
    :class:`~chatft.training.samplers.BucketBatchSampler` does) and may expose ``set_epoch``.
    """

    def __init__(self, batch_sampler: Sampler[list[int]], progress: Callable[[], tuple[int, bool]]) -> None:
        self.batch_sampler = batch_sampler
        self.progress = progress
        self.epoch = getattr(batch_sampler, "epoch", 0)
        self._skip = 0

    @property
    def sampler(self) -> ResumableBatchSampler:
        """Lightning calls ``set_epoch`` on ``loader.batch_sampler.sampler`` (torch's ``BatchSampler`` layout),
        never on the batch sampler itself: pointing here makes every epoch get its own order."""
        return self

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self._skip = 0  # a pending skip belongs to the epoch it was saved in
        self.epoch = epoch
        if hasattr(self.batch_sampler, "set_epoch"):
            self.batch_sampler.set_epoch(epoch)

    def __len__(self) -> int:
        # The full epoch: Lightning counts the resumed epoch's batches from its restored progress.
        return len(self.batch_sampler)

    def __iter__(self) -> Iterator[list[int]]:
        skip, self._skip = self._skip, 0
        return islice(iter(self.batch_sampler), skip, None)

    def state_dict(self) -> dict[str, int]:
        done, epoch_finished = self.progress()
        if epoch_finished:
            return {"epoch": int(self.epoch) + 1, "batches_done": 0}
        return {"epoch": int(self.epoch), "batches_done": int(done)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.set_epoch(int(state["epoch"]))
        self._skip = int(state["batches_done"])


class ResumableDataLoader(DataLoader):
    """A ``DataLoader`` whose position is saved in checkpoints (Lightning's ``state_dict`` protocol).

    Its ``batch_sampler`` must be a :class:`ResumableBatchSampler`.
    """

    def state_dict(self) -> dict[str, int]:
        return self.batch_sampler.state_dict()

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.batch_sampler.load_state_dict(state)


def epoch_progress(trainer: L.Trainer | None) -> tuple[int, bool]:
    """``(batches of the current epoch whose training step ran, whether that includes the last batch)``."""
    if trainer is None:
        return 0, False
    done, ready, is_last_batch = train_batch_progress(trainer)
    return done, bool(is_last_batch and done > 0 and done == ready)


def _last_checkpoint_callback(trainer: L.Trainer) -> ModelCheckpoint | None:
    for cb in trainer.checkpoint_callbacks:
        if isinstance(cb, ModelCheckpoint) and cb.save_last and cb.dirpath:
            return cb
    return None


class AutoSave(L.Callback):
    """Write ``last.ckpt`` after every epoch, every ``every_n_train_steps`` steps, at the end and on SIGTERM.

    It writes the same file as the main checkpoint callback's ``save_last`` (and updates that callback's
    ``last_model_path``), so ``--ckpt_path last`` always finds the newest state. The epoch-end save is needed
    because Lightning's ``ModelCheckpoint(save_last=True)`` writes ``last.ckpt`` only when it also writes a
    top-k checkpoint, i.e. when the monitored metric improved: after an epoch without improvement,
    ``last.ckpt`` would still hold an older epoch.

    Args:
        every_n_train_steps: Also save every this many optimizer steps (0: off). Each save writes a whole
            checkpoint (for MiniLM with its AdamW states, about 270 MB), so on a preemptible queue pick the
            number of steps whose loss you can afford, typically a few minutes of training.
        on_sigterm: Save when the process receives SIGTERM, then stop.
    """

    def __init__(self, every_n_train_steps: int = 0, on_sigterm: bool = True) -> None:
        if every_n_train_steps < 0:
            raise ConfigError(
                f"autosave.every_n_train_steps must be >= 0 (0: off), got {every_n_train_steps}"
            )
        self.every_n_train_steps = every_n_train_steps
        self.on_sigterm = on_sigterm
        self.saved_at_sigterm: str | None = None
        # global step and epoch of the newest checkpoint written (by any callback)
        self._saved_step: int | None = None
        self._saved_epoch: int | None = None

    def _save(self, trainer: L.Trainer, why: str) -> str | None:
        ckpt = _last_checkpoint_callback(trainer)
        if ckpt is None:
            log.warning("no checkpoint callback with save_last: cannot save last.ckpt (%s)", why)
            return None
        path = os.path.join(ckpt.dirpath, ckpt.CHECKPOINT_NAME_LAST + ckpt.FILE_EXTENSION)
        ckpt.last_model_path = path  # part of the saved state, like ModelCheckpoint does before saving
        trainer.save_checkpoint(path, weights_only=False)
        log.info("saved %s (%s, epoch %d, step %d)", path, why, trainer.current_epoch, trainer.global_step)
        return path

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        self._saved_step = trainer.global_step
        self._saved_epoch = trainer.current_epoch

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        n = self.every_n_train_steps
        step = trainer.global_step
        if n and step and step % n == 0 and step != self._saved_step:
            self._save(trainer, f"every {n} steps")

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Runs after validation and after the main checkpoint callback's epoch-end saving.
        if trainer.global_step != self._saved_step:
            self._save(trainer, "end of epoch")

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # The final state (epoch == epochs run), whichever callback wrote last.ckpt before.
        if (trainer.global_step, trainer.current_epoch) != (self._saved_step, self._saved_epoch):
            self._save(trainer, "end of training")

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if self.on_sigterm and isinstance(exception, SIGTERMException):
            self.saved_at_sigterm = self._save(trainer, "SIGTERM")
            exception.checkpoint_path = self.saved_at_sigterm  # for the CLI's one-line exit message


def resolve_resume(
    root: str | None, checkpoint_dirpath: str | None, logger: Any
) -> tuple[str | None, dict | None]:
    """Where ``--ckpt_path last`` points, and the logger that continues that run's folder.

    Returns ``(checkpoint path or None, logger config or None)``. With the default logger, checkpoints are in
    ``<root>/lightning_logs/version_N/checkpoints``: the newest ``last.ckpt`` there wins and the returned
    TensorBoard logger config reuses ``version_N``. With ``--checkpoint.dirpath`` the newest ``last*.ckpt`` in
    that folder wins. With a custom logger the newest ``last.ckpt`` under ``<root>`` is still found, but the
    logger is kept as configured (fix its ``version`` to keep logging into one folder). ``(None, None)``:
    nothing to resume, the run starts from scratch.
    """
    root_dir = os.path.normpath(os.path.expanduser(root or os.getcwd()))
    if checkpoint_dirpath:
        found = find_last_checkpoints(checkpoint_dirpath)
        newest = max(found, key=lambda p: p.stat().st_mtime) if found else None
        return (str(newest) if newest else None), None
    candidates = [
        p for folder in Path(root_dir).glob("*/version_*/checkpoints") for p in find_last_checkpoints(folder)
    ]
    candidates += find_last_checkpoints(Path(root_dir) / "checkpoints")  # logger disabled
    if not candidates:
        return None, None
    newest = max(candidates, key=lambda p: p.stat().st_mtime)
    version_dir = newest.parent.parent
    default_logger = logger is None or logger is True
    if not default_logger or not version_dir.name.startswith("version_"):
        return str(newest), None
    version = version_dir.name.removeprefix("version_")
    logger_config = {
        "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
        "init_args": {
            "save_dir": root_dir,
            "name": version_dir.parent.name,
            "version": int(version) if version.isdigit() else version,
        },
    }
    return str(newest), logger_config
