"""A callback that slows training down, so a test can signal a job while it is in the middle of an epoch.

python -m chatft fit ... --trainer.callbacks+=tests.throttle.Throttle --trainer.callbacks.seconds 1
"""

from __future__ import annotations

import time

import lightning as L


class Throttle(L.Callback):
    """Sleep ``seconds`` after every training batch (on every rank, so the ranks stay in step)."""

    def __init__(self, seconds: float = 1.0) -> None:
        self.seconds = seconds

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        time.sleep(self.seconds)
