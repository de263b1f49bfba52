"""Which checkpoint ``fit`` keeps as the best one, and what goes into it.

:class:`BestCheckpoint` is Lightning's ``ModelCheckpoint`` (the CLI's ``--checkpoint.*`` options) with these
changes:

* **Ties keep the later checkpoint.** ``ModelCheckpoint`` replaces its best file only when the monitored
  value is strictly better, so on a small dev split, where sentence accuracy often repeats, the run keeps
  an early, under-trained epoch (on a sentiment TSV: epoch 4 kept at dev 0.90, while the later epoch with
  the same dev score did better on test, 0.90 vs 0.80). With an equal dev score, the later model has seen
  more training at a lower learning rate, so it replaces the earlier one. (Breaking ties by dev loss was the
  alternative; dev loss rises while accuracy still improves once a fine-tuned model grows confident, so it
  would prefer the earlier epoch for the wrong reason.)
* **Optimizer state only in** ``last.ckpt``. With ``save_weights_only`` (the CLI's default) the best
  checkpoints hold the weights, hyper-parameters, the datamodule's state and the embedded inference assets
  (everything ``test``, ``predict``, ``export`` and ``Predictor`` read) but not AdamW's two moment tensors
  per parameter, which are two thirds of a full checkpoint and only needed to resume; ``last.ckpt`` keeps
  them (``--ckpt_path last`` resumes from it) while the run can still be resumed.
* **A finished run keeps no optimizer state.** When ``fit`` ends normally (its epochs done, or early
  stopping), ``last.ckpt`` is rewritten without the optimizer, learning-rate scheduler and loop states
  (the demo fit, MiniLM, ``configs/demo.yaml``: 273,081,775 -> 92,311,013 bytes, the size of
  its best checkpoint) and, with ``--ema.decay``, without the raw weights kept beside the average, and
  marked as finished (:data:`FINISHED_KEY`), so ``--ckpt_path last`` says in one line that there is nothing
  to resume instead of a misleading error. A run stopped by SIGTERM, Ctrl-C or a crash never reaches this,
  so its ``last.ckpt`` still resumes.
  ``--checkpoint.keep_optimizer_state true`` keeps the full state, to train a finished run on (more epochs).
  It runs in ``on_fit_end``, after the out-of-scope calibration has written its state into the file:
  Lightning calls checkpoint callbacks' hooks after every other callback's.
* **Too small a dev split chooses nothing.** When ``SmallDataSchedule`` finds fewer dev utterances than
  ``--schedule.min_dev_utterances`` it sets ``keep_newest``: each validated epoch replaces the kept one. It
  holds for that fit only: teardown (or an exception) clears it, so a later fit of the same callback in the
  same process (another datamodule, an in-process resume) decides again instead of inheriting it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from chatft.compat.lightning_hooks import AVERAGING_STATE, CURRENT_MODEL_STATE, CheckpointWriteHook

log = logging.getLogger(__name__)

#: Top-level key of a ``last.ckpt`` whose run finished and whose resume-only state was dropped.
FINISHED_KEY = "chatft_fit_finished"
#: What only resuming reads (Lightning's full-checkpoint keys a ``save_weights_only`` file also lacks): the
#: optimizer, scheduler and loop states, and with ``--ema.decay`` the raw weights (``current_model_state``, a
#: second copy of the model; ``state_dict`` holds the average, the weights that were scored) and the
#: average's own state. The callbacks' states stay (small, and they name the best checkpoint when there are
#: several).
RESUME_ONLY_KEYS = ("optimizer_states", "lr_schedulers", "loops", CURRENT_MODEL_STATE, AVERAGING_STATE)


def drop_resume_state(path: str | Path) -> tuple[int, int]:
    """Rewrite ``path`` (atomically) without :data:`RESUME_ONLY_KEYS`, marked finished; sizes before and after."""
    from chatft.model.checkpoint import load_checkpoint
    from chatft.training.checkpoint import atomic_save

    before = Path(path).stat().st_size
    ckpt = load_checkpoint(path)
    for key in RESUME_ONLY_KEYS:
        ckpt.pop(key, None)
    ckpt[FINISHED_KEY] = True
    atomic_save(ckpt, path)
    return before, Path(path).stat().st_size


class BestCheckpoint(CheckpointWriteHook):
    """``ModelCheckpoint`` whose ties keep the later checkpoint and whose ``save_weights_only`` spares last.ckpt.

    ``save_weights_only`` applies to the monitored (top-k) checkpoints only: ``last.ckpt`` holds the full
    training state, so a run can resume from it, until the run finishes.

    Args:
        keep_optimizer_state: Keep the optimizer, scheduler and loop states in ``last.ckpt`` when the run
            finishes (to train it on later with ``--ckpt_path last``); by default they are dropped then.
        *args, **kwargs: Lightning's ``ModelCheckpoint`` arguments.
    """

    def __init__(self, *args: Any, keep_optimizer_state: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.keep_optimizer_state = keep_optimizer_state
        #: Every epoch replaces the kept one (with save_top_k 1: the last epoch is kept), whatever its dev
        #: score: set by :class:`~chatft.training.schedule.SmallDataSchedule` when dev is too small to choose.
        self.keep_newest = False

    def check_monitor_top_k(self, trainer, current: torch.Tensor | None = None) -> bool:
        if self.keep_newest:
            return True
        if super().check_monitor_top_k(trainer, current):
            return True
        if current is None or not self.best_k_models:
            return False
        tie = bool(torch.eq(current, self.best_k_models[self.kth_best_model_path]))
        # Every rank holds the same reduced metric; still decide together, as the parent does.
        return trainer.strategy.reduce_boolean_decision(tie)

    def write_checkpoint(self, trainer, filepath: str) -> None:
        # last_model_path is already the file about to be written when it is last.ckpt.
        weights_only = self.save_weights_only
        self.save_weights_only = weights_only and filepath != self.last_model_path
        try:
            super().write_checkpoint(trainer, filepath)
        finally:
            self.save_weights_only = weights_only

    def teardown(self, trainer, pl_module, stage: str) -> None:
        super().teardown(trainer, pl_module, stage)
        # SmallDataSchedule decides keep_newest in each fit's setup, from that fit's dev split.
        self.keep_newest = False

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        super().on_exception(trainer, pl_module, exception)
        self.keep_newest = False  # Lightning skips teardown hooks when a fit raises

    def on_fit_end(self, trainer, pl_module) -> None:
        # Only reached when fit returns normally: an exception (SIGTERM, Ctrl-C) skips on_fit_end.
        if self.keep_optimizer_state or trainer.interrupted or trainer.sanity_checking:
            return
        path = self.last_model_path
        if trainer.is_global_zero and path and Path(path).is_file():
            before, after = drop_resume_state(path)
            log.info("%s: finished run, optimizer state dropped (%d -> %d bytes)", path, before, after)
        trainer.strategy.barrier("chatft-last-finished")
