"""TrackerDataModule: a dialogue folder (``train/dev/test.jsonl`` + ``schema.json``) for the learned tracker.

Training reads turns one at a time, each with the gold state before it (teacher forcing), shuffled; labels are
derived from consecutive states (:mod:`chatft.dialogue.state_labels`). Evaluation reads whole dialogues: a
batch is a list of :class:`~chatft.dialogue.dialogues.Dialogue` that the module runs turn by turn, feeding
its own predicted state forward (:meth:`chatft.training.tracker_module.TrackerModule.track`). Under DDP the
dialogues are sharded per rank (``i % world == rank``), never padded with repeats, so every turn counts once.

The schema, with the variants of listed values learned from ``train`` (``moderately`` -> ``moderate``), exists
when ``__init__`` returns (:attr:`tracker_schema`), so the CLI links it to the model and it lands in the
checkpoint. ``predict`` needs no folder: with ``--ckpt_path`` and no ``--data.data_dir`` the schema is the
checkpoint's (``schema_from``, filled in by the CLI), and ``--data.predict_file`` names the conversations to
track (JSON Lines dialogues whose turns need no ``state``).
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
#: Tokens per turn when neither the options nor a checkpoint say (WOZ 2.0 turns fit).
DEFAULT_MAX_LENGTH = 160


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
        data_dir: dialogue folder: train.jsonl, dev.jsonl (test.jsonl optional) and schema.json; optional for
            ``predict`` on a checkpoint (the schema is then the checkpoint's)
        tokenizer: the encoder's tokenizer (linked from ``model.encoder``)
        batch_size: training turns per batch
        eval_batch_size: dialogues per evaluation batch (run turn by turn)
        max_length: tokens per turn (user + previous state + system; the system's words are cut first); default:
            the checkpoint's with ``--ckpt_path`` (so ``test``/``predict`` read turns as the model was trained
            and as ``TrackerPredictor`` does), else 160
        predict_split: the split ``predict`` tracks (dev or test) when no ``predict_file`` is given
        predict_file: JSON Lines conversations for ``predict``, one dialogue per line
            (``{"id": ..., "turns": [{"system": ..., "user": ...}, ...]}``; ``state`` not needed); output in
            input order
        schema_from: a tracker checkpoint whose schema to use without ``data_dir`` (set from ``--ckpt_path``)
        num_workers: DataLoader workers for training
    """

    def __init__(
        self,
        data_dir: str | None = None,
        tokenizer: str = "sentence-transformers/all-MiniLM-L6-v2",
        batch_size: int = 32,
        eval_batch_size: int = 32,
        max_length: int | None = None,
        predict_split: str = "dev",
        predict_file: str | None = None,
        schema_from: str | None = None,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        self.data_dir = Path(data_dir).expanduser() if data_dir else None
        self.tokenizer_name = tokenizer
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.max_length = max_length or DEFAULT_MAX_LENGTH
        self.predict_split = predict_split
        self.predict_file = predict_file
        self.num_workers = num_workers
        self.splits: dict[str, list[Dialogue]] = {}
        self.label_stats = LabelStats()
        self.train_labels: list = []
        self._train: list[dict] | None = None
        # Read now, so a malformed line stops the command before any model is loaded.
        self._predict: list[Dialogue] | None = self._read_predict_file() if predict_file else None
        if self.data_dir is None:
            if not schema_from:
                raise ConfigError(
                    "--data.data_dir DIR (a dialogue folder) is needed, or --ckpt_path of a trained tracker "
                    "to predict with (its schema is used)"
                )
            #: The checkpoint's schema, as it was linked from its training data.
            self.tracker_schema = checkpoint_schema(schema_from)
            return
        if not (self.data_dir / SCHEMA_FILE).is_file():
            raise ConfigError(
                f"--data.data_dir {data_dir}: no {SCHEMA_FILE} (a dialogue folder holds train.jsonl, dev.jsonl, "
                "test.jsonl and schema.json; python -m chatft data convert --from woz writes one)"
            )
        self.schema = read_schema(self.data_dir / SCHEMA_FILE)
        for split, name in SPLIT_FILES.items():
            if (self.data_dir / name).is_file():
                self.splits[split] = read_dialogues(self.data_dir / name)
        self.train_labels = dialogue_labels(
            self.splits.get("train", []), list(self.schema.informable), self.label_stats
        )
        #: The schema the model keeps (linked to ``model.schema``): slots, value lists, requestable slots,
        #: and the variants of listed values said in ``train``.
        self.tracker_schema = TrackerSchema.of(self.schema, self.label_stats.variants()).to_dict()

    def check_splits(self, stage: str) -> None:
        need = {"fit": ("train", "dev"), "validate": ("dev",), "test": ("test",)}.get(stage, ())
        if need and self.data_dir is None:
            raise ConfigError(f"{stage} needs --data.data_dir, a dialogue folder with gold states")
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

    @property
    def predict_dialogues(self) -> list[Dialogue]:
        """What ``predict`` tracks, in input order: the dialogues of ``predict_file``, else ``predict_split``'s."""
        if self._predict is None:
            if self.predict_split in self.splits:
                self._predict = self.splits[self.predict_split]
            else:
                where = f"in {self.data_dir}" if self.data_dir else "(no --data.data_dir)"
                raise ConfigError(
                    f"--data.predict_split {self.predict_split}: no such split {where}; "
                    "--data.predict_file FILE tracks your own conversations"
                )
        return self._predict

    def _read_predict_file(self) -> list[Dialogue]:
        path = Path(self.predict_file).expanduser()
        if not path.is_file():
            raise ConfigError(f"--data.predict_file {self.predict_file}: no such file")
        return read_dialogues(path, states=False)

    def predict_dataloader(self) -> DataLoader:
        return DataLoader(
            self._shard(self.predict_dialogues),
            batch_size=self.eval_batch_size,
            collate_fn=list,
            shuffle=False,
        )


def checkpoint_schema(path: str) -> dict:
    """The tracker schema kept in a checkpoint's hyper-parameters (one line naming the file if there is none)."""
    from chatft.model.checkpoint import load_checkpoint

    if not Path(path).expanduser().is_file():
        raise ConfigError(f"--ckpt_path {path}: no such file")
    schema = (load_checkpoint(Path(path).expanduser(), mmap=True).get("hyper_parameters") or {}).get("schema")
    if not isinstance(schema, dict) or "slots" not in schema:
        raise ConfigError(
            f"{path}: not a dialogue state tracker's checkpoint (no schema in its hyper-parameters)"
        )
    return schema
