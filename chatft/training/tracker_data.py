"""TrackerDataModule: a dialogue folder (``train/dev/test.jsonl`` + ``schema.json``) for the learned tracker.

Training reads turns one at a time, each with the gold state before it (teacher forcing), shuffled; labels are
derived from consecutive states (:mod:`chatft.dialogue.state_labels`). Evaluation reads whole dialogues: a
batch is a list of :class:`~chatft.dialogue.dialogues.Dialogue` that the module runs turn by turn, feeding
its own predicted state forward (:meth:`chatft.training.tracker_module.TrackerModule.track`). Under DDP the
dialogues are sharded per rank (``i % world == rank``), never padded with repeats, so every turn counts once.

The schema, with the variants of listed values learned from ``train`` (``moderately`` -> ``moderate``), exists
when ``__init__`` returns (:attr:`tracker_schema`), so the CLI links it to the model and it lands in the
checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from chatft.core.errors import ConfigError
from chatft.dialogue.dialogues import SCHEMA_FILE, SPLIT_FILES, Dialogue, read_dialogues, read_schema
from chatft.dialogue.state_labels import GATES, LabelStats, dialogue_labels
from chatft.dialogue.state_update import TrackerSchema
from chatft.dialogue.turn_input import SYSTEM, USER, encode_turns
from chatft.training.samplers import BucketBatchSampler

__all__ = ["TrackerDataModule", "collate_turns"]

IGNORE = -100


def collate_turns(items: list[dict]) -> dict[str, torch.Tensor]:
    """Pad a list of encoded training turns (dicts of 1-D arrays and per-slot labels) into tensors."""
    t = max(len(x["input_ids"]) for x in items)

    def pad(key: str, value: int = 0) -> torch.Tensor:
        out = np.full((len(items), t), value, dtype=np.int64)
        for i, x in enumerate(items):
            out[i, : len(x[key])] = x[key]
        return torch.from_numpy(out)

    batch = {k: pad(k) for k in ("input_ids", "attention_mask", "token_type_ids")}
    for key in ("gate", "start", "end", "value", "requests"):
        batch[key] = torch.from_numpy(np.stack([x[key] for x in items]))
    batch["value_mask"] = torch.from_numpy(np.stack([x["value_mask"] for x in items]))
    return batch


class TrackerDataModule(L.LightningDataModule):
    """Turns for training, dialogues for evaluation.

    Args:
        data_dir: dialogue folder: train.jsonl, dev.jsonl (test.jsonl optional) and schema.json
        tokenizer: the encoder's tokenizer (linked from ``model.encoder``)
        batch_size: training turns per batch
        eval_batch_size: dialogues per evaluation batch (run turn by turn)
        max_length: tokens per turn (user + previous state + system; the system's words are cut first)
        predict_split: the split ``predict`` tracks (dev or test)
        num_workers: DataLoader workers for training
    """

    def __init__(
        self,
        data_dir: str,
        tokenizer: str = "sentence-transformers/all-MiniLM-L6-v2",
        batch_size: int = 32,
        eval_batch_size: int = 32,
        max_length: int = 160,
        predict_split: str = "dev",
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        self.data_dir = Path(data_dir).expanduser()
        self.tokenizer_name = tokenizer
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.max_length = max_length
        self.predict_split = predict_split
        self.num_workers = num_workers
        if not (self.data_dir / SCHEMA_FILE).is_file():
            raise ConfigError(
                f"--data.data_dir {data_dir}: no {SCHEMA_FILE} (a dialogue folder holds train.jsonl, dev.jsonl, "
                "test.jsonl and schema.json; python -m chatft data convert --from woz writes one)"
            )
        self.schema = read_schema(self.data_dir / SCHEMA_FILE)
        self.splits: dict[str, list[Dialogue]] = {}
        for split, name in SPLIT_FILES.items():
            if (self.data_dir / name).is_file():
                self.splits[split] = read_dialogues(self.data_dir / name)
        self.label_stats = LabelStats()
        self.train_labels = dialogue_labels(
            self.splits.get("train", []), list(self.schema.informable), self.label_stats
        )
        #: The schema the model keeps (linked to ``model.schema``): slots, value lists, requestable slots,
        #: and the variants of listed values said in ``train``.
        self.tracker_schema = TrackerSchema.of(self.schema, self.label_stats.variants()).to_dict()
        self._train: list[dict] | None = None

    def check_splits(self, stage: str) -> None:
        need = {"fit": ("train", "dev"), "validate": ("dev",), "test": ("test",)}.get(stage, ())
        for split in need:
            if split not in self.splits:
                raise ConfigError(f"{stage} needs {self.data_dir / SPLIT_FILES[split]}, which is missing")

    def _encode_train(self) -> list[dict]:
        from chatft.model.encoders import load_tokenizer

        tokenizer = load_tokenizer(self.tokenizer_name)
        schema = TrackerSchema.from_dict(self.tracker_schema)
        slots, width = schema.slots, schema.max_values
        rows = []
        for dialogue, labels in zip(self.splits["train"], self.train_labels, strict=True):
            previous: dict[str, str] = {}
            for turn, per_slot in zip(dialogue.turns, labels, strict=True):
                rows.append((turn, previous, per_slot))
                previous = turn.state
        out = []
        for i in range(0, len(rows), 256):
            chunk = rows[i : i + 256]
            enc = encode_turns(
                tokenizer, [(t.user, t.system, p) for t, p, _ in chunk], slots, self.max_length
            )
            for b, (turn, _, per_slot) in enumerate(chunk):
                n = int(enc.attention_mask[b].sum())
                gate = np.zeros(len(slots), dtype=np.int64)
                start = np.full(len(slots), IGNORE, dtype=np.int64)
                end = np.full(len(slots), IGNORE, dtype=np.int64)
                value = np.full(len(slots), IGNORE, dtype=np.int64)
                value_mask = np.zeros((len(slots), width), dtype=bool)
                for k, slot in enumerate(slots):
                    label = per_slot[slot]
                    gate[k] = GATES.index(label.gate)
                    values = schema.values.get(slot)
                    if values:
                        value_mask[k, : len(values)] = True
                        if label.gate in ("user", "system") and turn.state[slot] in values:
                            value[k] = values.index(turn.state[slot])
                    if label.span is not None:
                        where = enc.span_tokens(b, USER if label.gate == "user" else SYSTEM, label.span)
                        if where is not None:
                            start[k], end[k] = where
                out.append(
                    {
                        "input_ids": enc.input_ids[b, :n],
                        "attention_mask": enc.attention_mask[b, :n],
                        "token_type_ids": enc.token_type_ids[b, :n],
                        "gate": gate,
                        "start": start,
                        "end": end,
                        "value": value,
                        "value_mask": value_mask,
                        "requests": np.array(
                            [r in turn.requests for r in schema.requestable], dtype=np.float32
                        ),
                    }
                )
        return out

    def setup(self, stage: str) -> None:
        if stage == "fit" and self._train is None:
            self._train = self._encode_train()

    def _shard(self, dialogues: list[Dialogue]) -> list[Dialogue]:
        trainer = self.trainer
        if trainer is None or trainer.world_size == 1:
            return dialogues
        return dialogues[trainer.global_rank :: trainer.world_size]

    def train_dataloader(self) -> DataLoader:
        """Shuffled batches of turns of similar length (on WOZ 2.0 about 0.6x the tokens of random batches),
        the same number on every rank (:class:`~chatft.training.samplers.BucketBatchSampler`)."""
        data = self._train or []
        trainer = self.trainer
        world, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
        sampler = BucketBatchSampler(
            [len(x["input_ids"]) for x in data],
            self.batch_size,
            seed=int(torch.initial_seed()) % (2**31),
            num_replicas=world,
            rank=rank,
        )
        return DataLoader(data, batch_sampler=sampler, collate_fn=collate_turns, num_workers=self.num_workers)

    def _dialogues(self, split: str) -> DataLoader:
        return DataLoader(
            self._shard(self.splits[split]), batch_size=self.eval_batch_size, collate_fn=list, shuffle=False
        )

    def val_dataloader(self) -> DataLoader:
        return self._dialogues("dev")

    def test_dataloader(self) -> DataLoader:
        return self._dialogues("test")

    def predict_dataloader(self) -> DataLoader:
        if self.predict_split not in self.splits:
            raise ConfigError(f"--data.predict_split {self.predict_split}: no such split in {self.data_dir}")
        return self._dialogues(self.predict_split)
