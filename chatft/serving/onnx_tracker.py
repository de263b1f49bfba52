"""OnnxTracker: an exported dialogue state tracker run with onnxruntime, numpy and ``tokenizers`` only.

    from chatft import OnnxTracker
    tracker = OnnxTracker("exports/woz")        # a folder written by `python -m chatft export` from a tracker
    tracker.track([("", "I want Thai food"), ("What area?", "Any part of town")])
    tracker.update(state, system, user)          # .state, .changed, .requests

The same text pairs, the same decoding and the same :class:`~chatft.dialogue.state_update.TurnUpdate` as
:class:`~chatft.serving.tracker_predictor.TrackerPredictor` (both are :class:`~chatft.serving.tracker_base.
BaseTracker`; only the forward pass differs). Importing this module imports neither torch, Lightning nor
transformers: the tokenizer is ``tokenizer.json`` read with ``tokenizers``
(:class:`~chatft.serving.pair_tokenizer.PairTokenizer`), the schema is ``tracker.json``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from chatft.core.errors import ConfigError
from chatft.dialogue.state_update import TrackerSchema
from chatft.dialogue.turn_input import EncodedTurns
from chatft.serving.pair_tokenizer import PairTokenizer
from chatft.serving.tracker_base import BaseTracker

__all__ = ["OnnxTracker", "TRACKER_KIND", "is_tracker_export"]

#: ``manifest.json``'s ``kind`` for a tracker export (an NLU export has none).
TRACKER_KIND = "dialogue_state_tracker"
#: The graph's outputs, in :class:`~chatft.model.tracker.StateTracker`'s order.
OUTPUTS = ("gate_logits", "start_logits", "end_logits", "value_logits", "request_logits")


def _manifest(folder: Path) -> dict | None:
    path = folder / "manifest.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def is_tracker_export(folder: str | Path) -> bool:
    """True when ``folder`` is an export of a learned tracker (not of an NLU model)."""
    manifest = _manifest(Path(folder).expanduser())
    return bool(manifest) and manifest.get("kind") == TRACKER_KIND


class OnnxTracker(BaseTracker):
    """An exported tracker (see :mod:`chatft.serving.tracker_export`) run with onnxruntime.

    Args:
        folder: the export folder (with ``manifest.json``).
        providers: onnxruntime execution providers (default: CPU).
        max_length: tokens per turn (default: the manifest's, i.e. training's).
        threads: onnxruntime intra-op threads (default: onnxruntime's choice).
    """

    def __init__(
        self,
        folder: str | Path,
        providers: Sequence[str] | None = None,
        max_length: int | None = None,
        threads: int | None = None,
    ) -> None:
        import onnxruntime as ort

        self.folder = Path(folder).expanduser()
        manifest = _manifest(self.folder)
        if manifest is None:
            raise ConfigError(
                f"{self.folder}: no manifest.json (export a tracker checkpoint with: python -m chatft export)"
            )
        if manifest.get("kind") != TRACKER_KIND:
            raise ConfigError(
                f"{self.folder}: an intent and slot model export, not a dialogue state tracker's "
                "(load it with OnnxPredictor)"
            )
        self.manifest = m = manifest
        config = json.loads((self.folder / m["tracker"]).read_text(encoding="utf-8"))
        tokenizer = PairTokenizer(
            self.folder / m["tokenizer"], m["sep_token"], m["pad_token"], m["pad_token_id"]
        )
        super().__init__(
            tokenizer, TrackerSchema.from_dict(config["schema"]), int(max_length or m["max_length"])
        )
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(
            str(self.folder / m["model"]), options, providers=list(providers or ["CPUExecutionProvider"])
        )
        self._inputs = [i.name for i in self.session.get_inputs()]

    def outputs(self, enc: EncodedTurns) -> tuple[np.ndarray, ...]:
        arrays = {
            "input_ids": enc.input_ids,
            "attention_mask": enc.attention_mask,
            "token_type_ids": enc.token_type_ids,
        }
        return tuple(self.session.run(list(OUTPUTS), {k: arrays[k] for k in self._inputs}))
