"""``python -m chatft export`` for a learned dialogue state tracker's checkpoint: a folder onnxruntime runs.

``DIR`` gets:

* ``model.onnx``: :class:`~chatft.model.tracker.StateTracker`'s forward pass. Inputs ``input_ids``,
  ``attention_mask``, ``token_type_ids`` ``[batch, sequence]``; outputs ``gate_logits [batch, slots, gates]``,
  ``start_logits``/``end_logits [batch, slots, sequence]``, ``value_logits [batch, slots, values]`` and
  ``request_logits [batch, requestable]``. Batch and sequence axes are dynamic.
* ``tokenizer/``: the encoder's tokenizer files (:class:`~chatft.serving.onnx_tracker.OnnxTracker` reads
  ``tokenizer.json`` with the ``tokenizers`` library).
* ``tracker.json``: the schema (slots, value lists, requestable slots, the variants of listed values learned
  from training data) and the gates, which decoding (numpy, :func:`chatft.dialogue.state_update.decode_turn`)
  needs.
* ``manifest.json``: ``kind`` (``dialogue_state_tracker``), what is where, ``max_length``, the special tokens,
  the source checkpoint and the largest ONNX - PyTorch logit difference measured at export on a padded
  sample batch.

:func:`chatft.serving.export.export` calls :func:`export_tracker` when the checkpoint is a tracker's.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from chatft import __version__
from chatft.dialogue.state_labels import GATES
from chatft.dialogue.turn_input import encode_turns
from chatft.serving.onnx_tracker import OUTPUTS, TRACKER_KIND
from chatft.serving.tracker_predictor import TrackerPredictor

__all__ = ["export_tracker"]

INPUTS = ("input_ids", "attention_mask", "token_type_ids")
#: A padded sample batch: a first turn (no system words) and a later one; traced with padding.
_SAMPLE = (
    ("I want cheap Thai food", "", {}),
    ("yes , that is right", "Do you want a restaurant in the centre of town ?", {}),
)


class _Graph(nn.Module):
    """The exported computation: StateTracker.forward with its five outputs."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.model(input_ids, attention_mask, token_type_ids)


def export_tracker(
    ckpt_path: str, output: str | Path, opset: int = 17, max_length: int | None = None
) -> Path:
    """Write the tracker's ONNX model, tokenizer, ``tracker.json`` and ``manifest.json`` to ``output``."""
    import onnxruntime as ort

    tracker = TrackerPredictor.from_checkpoint(ckpt_path, max_length=max_length)
    model = tracker.model.eval()
    try:  # eager attention exports as plain matmul/softmax, which onnxruntime fuses
        model.encoder.set_attn_implementation("eager")
    except (AttributeError, ValueError):
        pass
    out = Path(output).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    enc = encode_turns(tracker.tokenizer, list(_SAMPLE), tracker.slots, tracker.max_length)
    arrays = {
        "input_ids": enc.input_ids,
        "attention_mask": enc.attention_mask,
        "token_type_ids": enc.token_type_ids,
    }
    args = tuple(torch.from_numpy(arrays[n]) for n in INPUTS)
    axes = {n: {0: "batch", 1: "sequence"} for n in INPUTS}
    axes.update({"gate_logits": {0: "batch"}, "value_logits": {0: "batch"}, "request_logits": {0: "batch"}})
    axes.update({n: {0: "batch", 2: "sequence"} for n in ("start_logits", "end_logits")})
    graph = _Graph(model).eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph,
            args,
            str(out / "model.onnx"),
            input_names=list(INPUTS),
            output_names=list(OUTPUTS),
            dynamic_axes=axes,
            opset_version=opset,
            dynamo=False,
        )
    graph.eval()
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    got = session.run(list(OUTPUTS), {n: arrays[n] for n in names})
    with torch.no_grad():
        want = [w.numpy() for w in graph(*args)]
    diff = max(float(np.abs(g - w).max()) if g.size else 0.0 for g, w in zip(got, want, strict=True))

    tok = tracker.tokenizer
    tok.save_pretrained(out / "tokenizer")
    config = {"schema": tracker.schema.to_dict(), "gates": list(GATES)}
    (out / "tracker.json").write_text(
        json.dumps(config, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    manifest = {
        "format": "chatft-onnx",
        "format_version": 1,
        "kind": TRACKER_KIND,
        "chatft_version": __version__,
        "source_checkpoint": str(Path(ckpt_path).resolve()),
        "model": "model.onnx",
        "opset": opset,
        "inputs": {n: ["batch", "sequence"] for n in INPUTS},
        "outputs": {
            "gate_logits": ["batch", "slots", "gates"],
            "start_logits": ["batch", "slots", "sequence"],
            "end_logits": ["batch", "slots", "sequence"],
            "value_logits": ["batch", "slots", "values"],
            "request_logits": ["batch", "requestable"],
        },
        "tracker": "tracker.json",
        "tokenizer": "tokenizer/tokenizer.json",
        "sep_token": tok.sep_token,
        "pad_token": tok.pad_token,
        "pad_token_id": tok.pad_token_id or 0,
        "max_length": tracker.max_length,
        "decoding_note": "decoding runs outside the graph, in numpy (chatft.dialogue.state_update.decode_turn)",
        "check": {"max_abs_logit_diff_vs_pytorch": diff},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return out
