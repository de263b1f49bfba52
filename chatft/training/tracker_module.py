"""TrackerModule: training and evaluation of the learned dialogue state tracker (:mod:`chatft.model.tracker`).

Training is teacher-forced: each turn reads the gold previous state (:class:`~chatft.training.tracker_data.
TrackerDataModule` shuffles turns). Evaluation is autoregressive, as a deployed tracker runs: a batch is a list
of dialogues, and :meth:`TrackerModule.track` runs their i-th turns together, each reading the state the
tracker itself predicted after turn i-1 (an early mistake costs every later turn, which is what joint goal
accuracy measures). Decoding is numpy (:func:`chatft.dialogue.state_update.decode_turn`), the code the ONNX
tracker and chat sessions run too.

Metrics ``{val,test}/joint_goal_acc``, ``/slot_acc``, ``/request_acc`` are summed counts
(:class:`~chatft.training.dst_metrics.StateTrackingScores`), exact under DDP. ``test`` writes
``dst_report.json``/``dst_report.txt`` (per-slot accuracy) and ``errors.jsonl`` (every dialogue with a wrong
turn, turn by turn: gold and predicted state) in the run's log folder. ``predict`` returns each dialogue's
predicted states, changes and requests, turn by turn, which :class:`~chatft.training.tracker_predictions.
TrackerPredictionWriter` writes (``predictions.jsonl``, or ``--predictions.output``).

    python -m chatft fit --config configs/woz.yaml --data.data_dir DIR
"""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import torch
from torch import Tensor

from chatft.dialogue.dialogues import Dialogue
from chatft.dialogue.dst_scores import TurnScore, turn_score
from chatft.dialogue.state_labels import GATES
from chatft.dialogue.state_update import TrackerSchema, TurnUpdate, decode_batch
from chatft.dialogue.turn_input import encode_turns
from chatft.model.encoders import DEFAULT_ENCODER
from chatft.training.dst_metrics import StateTrackingScores
from chatft.training.optimizer import FineTuning

__all__ = ["TrackerModule", "TrackerReport"]


class TrackerModule(FineTuning, L.LightningModule):
    """The learned tracker's steps and optimizer.

    Args:
        schema: slots, value lists, requestable slots and learned variants (linked from the data; kept in
            the checkpoint so a reloaded tracker needs no data folder)
        encoder: encoder name or folder (as the NLU model's ``--model.encoder``)
        learning_rate: encoder learning rate (AdamW, linear warmup then decay)
        head_learning_rate: learning rate of the heads (new weights learn faster)
        weight_decay: AdamW weight decay (not on biases and LayerNorm)
        warmup_ratio: share of the steps spent warming up
        layer_lr_decay: learning rate factor per encoder layer below the top (1.0: none)
        head_dropout: dropout before the heads
        encoder_dropout: the encoder's dropout (None: its own)
        max_length: tokens per turn at evaluation (the data's ``max_length`` at training)
    """

    def __init__(
        self,
        schema: dict | None = None,
        encoder: str = DEFAULT_ENCODER,
        learning_rate: float = 1e-4,
        head_learning_rate: float = 1e-3,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.1,
        layer_lr_decay: float = 1.0,
        head_dropout: float = 0.1,
        encoder_dropout: float | None = None,
        max_length: int = 160,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if schema is None:
            raise ValueError("TrackerModule needs the schema (linked from the data module)")
        self.schema = TrackerSchema.from_dict(schema)
        self.model = None
        self.tokenizer = None
        self.metrics = torch.nn.ModuleDict(
            {split: StateTrackingScores(len(self.schema.slots)) for split in ("val", "test")}
        )
        self.errors: list[dict] = []
        self.predictions: list[dict] = []

    def configure_model(self) -> None:
        if self.model is not None:
            return
        from chatft.model.tracker import build_tracker

        s = self.schema
        self.model = build_tracker(
            self.hparams.encoder,
            len(s.slots),
            len(GATES),
            s.max_values,
            len(s.requestable),
            head_dropout=self.hparams.head_dropout,
            encoder_dropout=self.hparams.encoder_dropout,
        )
        # transformers returns the encoder in eval mode and Lightning keeps sub-module modes as it finds them.
        self.model.train()

    def _tok(self):
        if self.tokenizer is None:
            from chatft.model.encoders import load_tokenizer

            self.tokenizer = load_tokenizer(self.hparams.encoder)
        return self.tokenizer

    def transfer_batch_to_device(self, batch, device, dataloader_idx: int):
        # Evaluation batches are lists of dialogues (text): they are tokenized turn by turn in track().
        if isinstance(batch, list):
            return batch
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def forward(self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor):
        return self.model(input_ids, attention_mask, token_type_ids)

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        outputs = self(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
        losses = self.model.loss(outputs, batch)
        n = batch["input_ids"].size(0)
        self.log("train/loss", losses["loss"], prog_bar=True, batch_size=n)
        for part in ("gate", "span", "value", "request"):
            self.log(f"train/{part}_loss", losses[part], batch_size=n)
        return losses["loss"]

    # ---- autoregressive evaluation ------------------------------------------------------------------
    @torch.no_grad()
    def track(self, dialogues: list[Dialogue]) -> list[list[TurnUpdate]]:
        """Each dialogue's updates, turn by turn, every turn reading the tracker's own previous state."""
        slots = self.schema.slots
        states: list[dict[str, str]] = [{} for _ in dialogues]
        updates: list[list[TurnUpdate]] = [[] for _ in dialogues]
        for i in range(max((len(d.turns) for d in dialogues), default=0)):
            active = [k for k, d in enumerate(dialogues) if len(d.turns) > i]
            turns = [(dialogues[k].turns[i].user, dialogues[k].turns[i].system, states[k]) for k in active]
            enc = encode_turns(self._tok(), turns, slots, self.hparams.max_length)
            device = self.device
            outs = self(
                torch.from_numpy(enc.input_ids).to(device),
                torch.from_numpy(enc.attention_mask).to(device),
                torch.from_numpy(enc.token_type_ids).to(device),
            )
            arrays = [o.float().cpu().numpy() for o in outs]
            for k, update in zip(
                active, decode_batch(self.schema, [states[k] for k in active], arrays, enc), strict=True
            ):
                states[k] = update.state
                updates[k].append(update)
        return updates

    def _eval_step(self, dialogues: list[Dialogue], split: str) -> None:
        updates = self.track(dialogues)
        scores: list[TurnScore] = []
        for dialogue, ups in zip(dialogues, updates, strict=True):
            wrong = False
            for turn, up in zip(dialogue.turns, ups, strict=True):
                s = turn_score(turn.state, up.state, self.schema.slots, turn.requests, up.requests)
                scores.append(s)
                wrong |= not s.joint
            if split == "test" and wrong:
                self.errors.append(error_record(dialogue, ups, self.schema.slots))
        self.metrics[split].update(scores)

    def validation_step(self, batch: list[Dialogue], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: list[Dialogue], batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def _log_scores(self, split: str) -> None:
        for name, value in self.metrics[split].compute().items():
            self.log(f"{split}/{name}", value.float(), prog_bar=name == "joint_goal_acc")

    def on_validation_epoch_end(self) -> None:
        self._log_scores("val")
        self.metrics["val"].reset()

    def on_test_epoch_start(self) -> None:
        self.errors = []

    def on_test_epoch_end(self) -> None:
        self._log_scores("test")

    def predict_step(self, batch: list[Dialogue], batch_idx: int) -> list[dict]:
        updates = self.track(batch)
        return [
            {
                "id": d.id,
                "turns": [
                    {
                        "system": t.system,
                        "user": t.user,
                        "state": u.state,
                        "changed": u.changed,
                        "requests": list(u.requests),
                    }
                    for t, u in zip(d.turns, ups, strict=True)
                ],
            }
            for d, ups in zip(batch, updates, strict=True)
        ]

    def configure_callbacks(self) -> list[L.Callback]:
        return [TrackerReport()]


def error_record(dialogue: Dialogue, updates: list[TurnUpdate], slots) -> dict:
    """One line of ``errors.jsonl``: the dialogue turn by turn, gold vs predicted, wrong slots named."""
    turns = []
    for i, (t, u) in enumerate(zip(dialogue.turns, updates, strict=True)):
        gold = {s: t.state[s] for s in slots if s in t.state}
        pred = {s: u.state[s] for s in slots if s in u.state}
        turns.append(
            {
                "turn": i,
                "system": t.system,
                "user": t.user,
                "gold": gold,
                "predicted": pred,
                "wrong": [s for s in slots if gold.get(s) != pred.get(s)],
                "gates": {s: d.gate for s, d in u.decisions.items() if d.gate != "carry"},
            }
        )
    return {"id": dialogue.id, "turns": turns}


class TrackerReport(L.Callback):
    """``test`` writes ``dst_report.json``/``.txt`` (metrics and per-slot accuracy) and ``errors.jsonl`` in
    ``trainer.log_dir`` (every rank gathers, rank 0 writes)."""

    def on_test_end(self, trainer: L.Trainer, module: TrackerModule) -> None:
        metric = module.metrics["test"]
        values = {f"test/{k}": float(v) for k, v in metric.compute().items()}
        # compute() syncs only its result; the counts read here are summed over processes explicitly.
        with metric.sync_context(should_sync=trainer.world_size > 1):
            per_slot = metric.slot_accuracies().cpu().tolist()
            turns = int(metric.turns)
        errors = _gather(trainer, module.errors)
        log_dir = trainer.log_dir or trainer.default_root_dir
        if not trainer.is_global_zero:
            return
        out = Path(log_dir)
        out.mkdir(parents=True, exist_ok=True)
        report = {
            "metrics": values,
            "turns": turns,
            "slots": [{"slot": s, "accuracy": a} for s, a in zip(module.schema.slots, per_slot, strict=True)],
            "dialogues_with_errors": len(errors),
        }
        (out / "dst_report.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        width = max(len(s) for s in [*module.schema.slots, *values]) + 2
        lines = [f"{'slot':<{width}}accuracy"] + [
            f"{s:<{width}}{a:.4f}" for s, a in zip(module.schema.slots, per_slot, strict=True)
        ]
        lines += ["", *(f"{k:<{width}}{v:.6f}" for k, v in values.items())]
        (out / "dst_report.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        errors.sort(key=lambda e: e["id"])
        with (out / "errors.jsonl").open("w", encoding="utf-8") as f:
            for e in errors:
                f.write(json.dumps(e, ensure_ascii=False) + "\n")
        metric.reset()


def _gather(trainer: L.Trainer, rows: list) -> list:
    if trainer.world_size == 1:
        return list(rows)
    import torch.distributed as dist

    out: list = [None] * trainer.world_size
    dist.all_gather_object(out, rows)
    return [r for part in out for r in part]
