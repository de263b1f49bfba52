"""Which checkpoint ``fit`` keeps as the best one, and what goes into it.

:class:`BestCheckpoint` is Lightning's ``ModelCheckpoint`` (the CLI's ``--checkpoint.*`` options) with two
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
  them (``--ckpt_path last`` resumes from it).
"""

from __future__ import annotations

import torch

from chatft.compat.lightning_hooks import CheckpointWriteHook


class BestCheckpoint(CheckpointWriteHook):
    """``ModelCheckpoint`` whose ties keep the later checkpoint and whose ``save_weights_only`` spares last.ckpt.

    ``save_weights_only`` applies to the monitored (top-k) checkpoints only: ``last.ckpt`` always holds the
    full training state, so a run can resume from it.
    """

    def check_monitor_top_k(self, trainer, current: torch.Tensor | None = None) -> bool:
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
