"""Progress people can read in a terminal and in a log file (nohup, SLURM's ``slurm-*.out``, CI).

On a terminal, :class:`ChatftProgressBar` is Lightning's rich bar, with the dev sentence accuracy and slot F1
of the latest validation shown beside the loss. When stdout is not a terminal a bar is useless: it redraws
one line with carriage returns, so a log file ends up with a single line written at the very end. There it
prints plain lines instead, at least every 10 % of an epoch::

    step 420/1680 epoch 2/11 loss 0.1234 lr 9.52e-05 105.3 utt/s ETA 4m10s

and after each validation one line with the dev metrics under their logged names::

    validation epoch 2 step 420: val/loss=0.2051 val/intent_acc=0.9620 ... val/sent_acc=0.8140

Epochs are counted from 0, as in checkpoint names and ``val_metrics.jsonl``. The CLI installs this bar
unless ``--trainer.enable_progress_bar false`` or another progress bar is configured.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar
from torch import Tensor

#: Dev metrics shown on the terminal bar (when logged).
BAR_METRICS = ("val/sent_acc", "val/slot_f1")
#: A plain line at least this often, as a share of an epoch's batches.
PLAIN_FRACTION = 0.1


def format_duration(seconds: float) -> str:
    """``45s``, ``4m10s``, ``2h05m``: short enough for a progress line."""
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def batch_size_of(batch: Any) -> int:
    """Utterances in a batch: the first dimension of its first tensor (0 when there is none)."""
    values = (
        batch.values() if isinstance(batch, dict) else batch if isinstance(batch, (list, tuple)) else [batch]
    )
    for v in values:
        if isinstance(v, Tensor) and v.ndim > 0:
            return int(v.shape[0])
    return 0


class ChatftProgressBar(RichProgressBar):
    """Rich bar on a terminal (plus dev sentence accuracy and slot F1); plain lines when stdout is not one.

    Args:
        plain: Force plain lines (True) or the bar (False); None (default) decides by ``sys.stdout.isatty()``.
    """

    def __init__(self, plain: bool | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plain_setting = plain
        self.plain = False
        self._reset_window()
        self._fit_start = 0.0
        self._start_step = 0

    # ---- terminal bar --------------------------------------------------------------------------------
    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict:
        items = super().get_metrics(trainer, pl_module)
        for key in BAR_METRICS:
            value = trainer.callback_metrics.get(key)
            if value is not None:
                items[key] = f"{float(value):.4f}"
        return items

    # ---- plain lines ---------------------------------------------------------------------------------
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.plain = (not sys.stdout.isatty()) if self.plain_setting is None else bool(self.plain_setting)
        if self.plain:
            self.disable()  # the rich parts stay silent; every hook below prints instead
        super().setup(trainer, pl_module, stage)

    def _reset_window(self) -> None:
        self._window_start = time.monotonic()
        self._window_utterances = 0
        self._window_loss = 0.0
        self._window_batches = 0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        self._fit_start = time.monotonic()
        self._start_step = trainer.global_step
        self._reset_window()

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        if not self.plain:
            return
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, Tensor):
            self._window_loss += float(loss.detach())
            self._window_batches += 1
        self._window_utterances += batch_size_of(batch)
        n = trainer.num_training_batches
        every = max(1, int(n * PLAIN_FRACTION)) if math.isfinite(n) else 50
        done = batch_idx + 1
        if (done % every == 0 or done == n) and trainer.is_global_zero:
            print(self.train_line(trainer), flush=True)
            self._reset_window()

    def train_line(self, trainer: L.Trainer) -> str:
        """``step 420/1680 epoch 2/11 loss 0.1234 lr 9.52e-05 105.3 utt/s ETA 4m10s``."""
        now = time.monotonic()
        step = trainer.global_step
        total = trainer.estimated_stepping_batches
        max_epochs = trainer.max_epochs
        parts = [f"step {step}/{int(total)}" if math.isfinite(total) else f"step {step}"]
        parts.append(
            f"epoch {trainer.current_epoch}/{max_epochs - 1}"
            if max_epochs is not None and max_epochs > 0
            else f"epoch {trainer.current_epoch}"
        )
        if self._window_batches:
            parts.append(f"loss {self._window_loss / self._window_batches:.4f}")
        if trainer.optimizers:
            parts.append(f"lr {trainer.optimizers[0].param_groups[0]['lr']:.3g}")
        seconds = now - self._window_start
        if seconds > 0 and self._window_utterances:
            rate = self._window_utterances * trainer.world_size / seconds
            parts.append(f"{rate:.1f} utt/s")
        steps_done = step - self._start_step
        if steps_done > 0 and math.isfinite(total):
            eta = (now - self._fit_start) / steps_done * max(0, total - step)
            parts.append(f"ETA {format_duration(eta)}")
        return " ".join(parts)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if self.plain and not trainer.sanity_checking and trainer.is_global_zero:
            print(self.validation_line(trainer), flush=True)

    @staticmethod
    def validation_line(trainer: L.Trainer) -> str:
        """``validation epoch 2 step 420: val/loss=0.2051 val/intent_acc=0.9620 ...`` (logged order)."""
        metrics = " ".join(
            f"{k}={float(v):.4f}" for k, v in trainer.callback_metrics.items() if k.startswith("val/")
        )
        return f"validation epoch {trainer.current_epoch} step {trainer.global_step}: {metrics}"
