"""TrackerPredictor: the learned dialogue state tracker from a checkpoint, with PyTorch.

    from chatft import TrackerPredictor
    tracker = TrackerPredictor.from_checkpoint("runs/woz/.../best.ckpt")
    tracker.track([("", "I want Thai food"), ("What area?", "Any part of town")])   # the state so far
    update = tracker.update(state, system, user)   # one turn: update.state, .changed, .requests

Loading needs the checkpoint (its hyper-parameters hold the schema, the encoder name and ``max_length``) and
the encoder's config and tokenizer (the offline MiniLM package, or the folder ``--model.encoder`` named); the
weights all come from the checkpoint. Everything but the forward pass is :class:`~chatft.serving.tracker_base.
BaseTracker`'s, shared with :class:`~chatft.serving.onnx_tracker.OnnxTracker`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from chatft.core.errors import CheckpointError
from chatft.dialogue.state_labels import GATES
from chatft.dialogue.state_update import TrackerSchema
from chatft.dialogue.turn_input import EncodedTurns
from chatft.model.checkpoint import load_checkpoint, model_state_dict
from chatft.serving.tracker_base import BaseTracker

__all__ = ["TrackerPredictor", "is_tracker_checkpoint", "tracker_hparams"]


def tracker_hparams(ckpt: dict) -> dict | None:
    """A tracker checkpoint's hyper-parameters (with ``schema``), or None for any other checkpoint."""
    hp = ckpt.get("hyper_parameters") or {}
    schema = hp.get("schema")
    return dict(hp) if isinstance(schema, dict) and "slots" in schema else None


def is_tracker_checkpoint(path: str | Path) -> bool:
    """True when ``path`` is a learned tracker's checkpoint (not an NLU model's)."""
    return tracker_hparams(load_checkpoint(path, mmap=True)) is not None


class TrackerPredictor(BaseTracker):
    """A trained state tracker ready to run (PyTorch); build it with :meth:`from_checkpoint`.

    Args:
        model: the :class:`~chatft.model.tracker.StateTracker` (put in eval mode here).
        tokenizer: the encoder's fast tokenizer.
        schema: the tracker's slots (from the checkpoint).
        max_length: tokens per turn.
        device: torch device.
    """

    def __init__(self, model, tokenizer, schema: TrackerSchema, max_length: int, device: str = "cpu") -> None:
        super().__init__(tokenizer, schema, max_length)
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()

    @classmethod
    def from_checkpoint(
        cls, path: str | Path, device: str = "cpu", max_length: int | None = None
    ) -> TrackerPredictor:
        """Load a tracker ``.ckpt`` written by ``fit``; ``max_length`` defaults to the one it was trained with."""
        from chatft.model.encoders import load_tokenizer
        from chatft.model.tracker import build_tracker

        ckpt = load_checkpoint(path)
        hp = tracker_hparams(ckpt)
        if hp is None:
            raise CheckpointError(
                f"{path}: not a dialogue state tracker's checkpoint (no schema in its hyper-parameters); "
                "an intent and slot model loads with Predictor.from_checkpoint"
            )
        schema = TrackerSchema.from_dict(hp["schema"])
        model = build_tracker(
            hp["encoder"],
            len(schema.slots),
            len(GATES),
            schema.max_values,
            len(schema.requestable),
            head_dropout=hp.get("head_dropout", 0.1),
            pretrained=False,
        )
        model.load_state_dict(model_state_dict(ckpt))
        tokenizer = load_tokenizer(hp["encoder"])
        return cls(model, tokenizer, schema, int(max_length or hp.get("max_length", 160)), device)

    @torch.no_grad()
    def outputs(self, enc: EncodedTurns) -> tuple[np.ndarray, ...]:
        args = (
            torch.from_numpy(a).to(self.device)
            for a in (enc.input_ids, enc.attention_mask, enc.token_type_ids)
        )
        return tuple(o.float().cpu().numpy() for o in self.model(*args))
