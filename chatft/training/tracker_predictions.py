"""TrackerPredictionWriter: the tracker's ``predict`` output, one JSON line per dialogue, in input order.

Each line is the dialogue's ``id`` and, per turn, the texts read, the predicted state after the turn, what changed
(slot -> new value, ``null`` when removed) and the requested slots, as ``TrackerModule.predict_step`` computes
them (each turn reading the tracker's own previous state, as a deployed bot runs). The options mirror the NLU
writer's (:class:`~chatft.training.prediction_writer.JsonlPredictionWriter`): ``--predictions.output``, and the
path printed as ``predictions: <path>``. Under DDP every rank tracks its shard of dialogues; rank 0 gathers and
writes, so the file is the same with one process or many.

    python -m chatft predict --ckpt_path best.ckpt --data.predict_file conversations.jsonl
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from lightning.pytorch.callbacks import BasePredictionWriter

from chatft.training.prediction_writer import DEFAULT_NAME, gather_rows, output_path

__all__ = ["TrackerPredictionWriter", "DEFAULT_NAME"]


class TrackerPredictionWriter(BasePredictionWriter):
    """Write the tracker's ``predict`` rows to a JSON Lines file and print its path.

    Args:
        output: File to write. Default: ``predictions.jsonl`` in the output folder (``eval/`` next to the
            checkpoint, or ``--trainer.default_root_dir``).
    """

    def __init__(self, output: str | None = None) -> None:
        super().__init__(write_interval="epoch")
        self.output = output
        self.path: Path | None = None

    def write_on_epoch_end(self, trainer, pl_module, predictions, batch_indices) -> None:
        rows = gather_rows(trainer, predictions)
        path = output_path(self.output, trainer)
        if trainer.is_global_zero:
            # Dialogue ids are unique in a file (the reader checks), so they give back the input order.
            dialogues = getattr(trainer.datamodule, "predict_dialogues", None)
            if dialogues is not None:
                order = {d.id: i for i, d in enumerate(dialogues)}
                rows = sorted(rows, key=lambda r: order[r["id"]])
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            with tmp.open("w", encoding="utf-8") as f:
                for row in rows:
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
            os.replace(tmp, path)
            print(f"predictions: {path}", flush=True)
        self.path = path
        trainer.strategy.barrier("chatft-tracker-predictions-written")
