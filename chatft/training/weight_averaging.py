"""An exponential moving average of the weights that is what validation scores and checkpoints keep.

Lightning's :class:`~lightning.pytorch.callbacks.EMAWeightAveraging` keeps the average and swaps it in
for validation, but it swaps back at the end of the validation epoch, *before* ``ModelCheckpoint`` writes,
and it puts the average into a checkpoint only from ``on_save_checkpoint``, which Lightning does not call
for weights-only files. chatft's ``best-*.ckpt`` are weights-only, so with the stock callback the file
kept for the best *averaged* dev score would hold the raw weights: a silently different model. This
subclass of their common base, ``WeightAveraging``, keeps the average in the module from the start of
validation until the next training batch, so every checkpoint written in between (weights-only or full)
holds exactly the weights that were scored; full checkpoints still carry the raw weights and the average's
state for an exact resume.

Off by default (``decay = 0``); in ``fit`` only. Only parameters are averaged (``use_buffers=False``): the
encoder's buffers are constants (position ids, the decoding masks), and averaging integer buffers would
round them.
"""

from __future__ import annotations

from typing import Any

import lightning as L
from torch.optim.swa_utils import get_ema_multi_avg_fn

from chatft.compat.lightning_hooks import WeightAveragingHooks


class WeightEMA(WeightAveragingHooks):
    """EMA of the weights, validated and checkpointed in place of the raw weights.

    Args:
        decay: Weight of the old average at each optimizer step (0: off). ``1 / (1 - decay)`` steps is
            the averaging window: 0.995 averages over about the last 200 steps.
        start_step: First optimizer step (0-based) whose weights enter the average; before it the
            average simply follows the weights, so the early, poor weights never enter it.
    """

    def __init__(self, decay: float = 0.0, start_step: int = 0) -> None:
        if not 0.0 <= decay < 1.0 or start_step < 0:
            from chatft.core.errors import ConfigError

            raise ConfigError(
                f"--ema.decay must be in [0, 1) and --ema.start_step >= 0 (got {decay}, {start_step})"
            )
        # WeightAveraging (updates after every optimizer step) with torch's foreach EMA, not
        # EMAWeightAveraging, which passes a one-tensor-at-a-time avg_fn: same arithmetic, 14x slower here.
        super().__init__(use_buffers=False, multi_avg_fn=get_ema_multi_avg_fn(decay if decay > 0 else 0.5))
        self.enabled = decay > 0
        self.start_step = start_step
        self._swapped = False

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.enabled:
            super().setup(trainer, pl_module, stage)

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        # The average sat in the module for validation and checkpointing: train the raw weights.
        if self._swapped:
            self.swap_average(pl_module)
            self._swapped = False

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.average_model is None:
            return
        if trainer.global_step - 1 < self.start_step:  # follow the weights until averaging starts
            for average, current in zip(
                self.average_model.module.parameters(), pl_module.parameters(), strict=True
            ):
                average.data.copy_(current.data)
            self.set_latest_update_step(trainer.global_step)
            return
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.average_model is not None and not self._swapped:
            self.swap_average(pl_module)
            self._swapped = True

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Keep the average in the module: the checkpoint callbacks write after this hook."""

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.average_model is None:
            return
        if self._swapped:  # the module already holds the average
            self.swap_average(pl_module)
            self._swapped = False
        self.copy_average_to_module(pl_module)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        """Full checkpoints: ``state_dict`` = the average, ``current_model_state`` = the raw weights (the
        layout Lightning's callback reads back), whichever of the two the module holds right now."""
        if self.average_model is None:
            return
        if not self._swapped:
            super().on_save_checkpoint(trainer, pl_module, checkpoint)
            return
        self.checkpoint_while_swapped(checkpoint)  # the averaged model holds the raw weights while swapped

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        # Outside fit there is nothing to restore (and nothing to warn about).
        if self.average_model is not None:
            super().on_load_checkpoint(trainer, pl_module, checkpoint)
