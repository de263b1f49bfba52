"""Small callbacks that make runs easy to inspect without TensorBoard."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L


class MetricsFile(L.Callback):
    """Append every epoch's validation metrics as one JSON line to ``<log_dir>/val_metrics.jsonl``.

    A plain file that scripts (e.g. multi-seed tables) and people can read; rank 0 writes it.
    """

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        # trainer.log_dir is a collective (a broadcast from rank 0) under DDP: every rank must read it,
        # or rank 0 waits forever for the others.
        log_dir = trainer.log_dir
        if not trainer.is_global_zero or not log_dir:
            return
        row = {"epoch": trainer.current_epoch, "step": trainer.global_step}
        row.update(
            {k: round(float(v), 6) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
        )
        path = Path(log_dir) / "val_metrics.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
