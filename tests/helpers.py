"""Callbacks that tests pass to real runs (``--trainer.callbacks+=tests.helpers.BatchRecorder``), and what
several tests expect of the outputs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import lightning as L

#: The keys of a prediction (``Prediction.to_dict()``, a ``predict`` line, ``/parse``), in their order.
PREDICTION_KEYS = [
    "text",
    "words",
    "tags",
    "intent",
    "intent_confidence",
    "intents_top_k",
    "slots",
    "truncated",
    "out_of_scope",
    "empty",
]


class BatchRecorder(L.Callback):
    """Append ``{"step", "epoch", "index"}`` of every training batch to a JSON Lines file, as it starts.

    ``sleep`` slows each batch down so that a test can send a signal to a run mid-epoch.
    """

    def __init__(self, path: str, sleep: float = 0.0) -> None:
        self.path = Path(path)
        self.sleep = sleep

    def on_train_batch_start(self, trainer: L.Trainer, pl_module, batch, batch_idx: int) -> None:
        row = {"step": trainer.global_step, "epoch": trainer.current_epoch, "index": batch["index"].tolist()}
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        if self.sleep:
            time.sleep(self.sleep)


class Crash(Exception):
    """Stands for a process dying mid-run (raised by :class:`CrashAt`)."""


class CrashAt(L.Callback):
    """Raise :class:`Crash` when the training batch at optimizer step ``step`` starts."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer: L.Trainer, pl_module, batch, batch_idx: int) -> None:
        if trainer.global_step == self.step:
            raise Crash(f"crash at step {self.step}")


def read_records(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.endswith("}")]
