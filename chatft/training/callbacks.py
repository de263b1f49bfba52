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


class ErrorsFile(L.Callback):
    """After ``test``, write the utterances the model got wrong to ``<log_dir>/errors.jsonl``, beside the report.

    The first thing a user does after reading a score is look at the mistakes. One JSON object per wrong
    utterance (intent or any tag wrong), in file order: ``line`` (1-based, in the test split's file),
    ``text``, ``gold_intent``, ``pred_intent`` and, for data with slots, ``gold_tags`` and ``pred_tags``
    (one per word; words cut by truncation are predicted ``O``). Gold labels are the file's own strings,
    also when the training split never had them. Under DDP every rank's rows are gathered; rank 0 writes.
    """

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.examples: list | None = None

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.rows = []
        dm = trainer.datamodule
        # The test split's own strings (read again when the data module keeps only its Arrow rows).
        readable = hasattr(dm, "split_examples") and dm.data_dir is not None
        self.examples = dm.split_examples("test") if readable else None

    def on_test_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs,
        batch,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        examples = self.examples
        if not isinstance(outputs, dict) or "intents" not in outputs or examples is None:
            return
        labels = pl_module.intent_vocab.labels
        tags = outputs["tags"]
        for k, (index, intent) in enumerate(
            zip(outputs["index"].tolist(), outputs["intents"].tolist(), strict=True)
        ):
            ex = examples[index]
            row = {
                "line": index + 1,
                "text": " ".join(ex.words),
                "gold_intent": ex.intent,
                "pred_intent": labels[intent],
            }
            wrong = row["pred_intent"] != ex.intent
            if ex.tags is not None and tags:
                row["gold_tags"], row["pred_tags"] = list(ex.tags), list(tags[k])
                wrong = wrong or row["gold_tags"] != row["pred_tags"]
            if wrong:
                self.rows.append(row)

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        rows = self.rows
        if trainer.world_size > 1:
            import torch.distributed as dist

            gathered: list = [None] * trainer.world_size
            dist.all_gather_object(gathered, rows)
            rows = [row for part in gathered for row in part]
        log_dir = trainer.log_dir  # a collective under DDP: every rank reads it
        if not trainer.is_global_zero or not log_dir:
            return
        path = Path(log_dir) / "errors.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = sorted(rows, key=lambda r: r["line"])
        with path.open("w", encoding="utf-8") as f:
            f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
