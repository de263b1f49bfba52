"""``python -m chatft export --ckpt_path X.ckpt --output DIR``: an ONNX model for onnxruntime.

``DIR`` gets:

* ``model.onnx``: encoder + intent head + word-level slot head. Inputs ``input_ids``, ``attention_mask``
  ``[batch, sequence]`` and ``word_index`` ``[batch, words]`` (first sub-word of each word); outputs
  ``intent_logits`` ``[batch, intents]`` and ``slot_logits`` ``[batch, words, tags]`` (no ``word_index`` and no
  ``slot_logits`` for intent-only models). All batch/sequence/word axes are dynamic.
* ``intents.json``, ``slot_tags.json``: the label lists (``<unk>`` first).
* ``tokenizer/``: the tokenizer files (``tokenizer.json`` is what :class:`~chatft.serving.onnx_predictor.OnnxPredictor`
  reads, with the ``tokenizers`` library).
* ``decoding.json``: how slot tags are decoded. Decoding runs **outside the graph**, in numpy
  (:class:`chatft.core.decoding.SlotDecoder`): softmax argmax, BIO-constrained Viterbi, or for CRF models Viterbi
  over the learned transitions stored here (forbidden BIO moves already set to -1e4).
* ``oos.json``: the temperature and out-of-scope decision fitted at the end of ``fit``
  (:class:`chatft.core.oos.OOSState`: method, mode, threshold, fallback intent, and for the Mahalanobis score the
  class means and precision matrix); for a checkpoint without calibration, the uncalibrated decision ``test``
  uses (temperature 1, out of scope when the OOS intent wins). The graph's third output,
  ``intent_features`` ``[batch, hidden]``, is the pooled feature that score reads.
* ``entities.json``: the synonyms, regexes and lookup tables ``fit`` embedded in the checkpoint
  (:mod:`chatft.core.entity_resources`), when it has them.
* ``manifest.json``: what is where, shapes, the source checkpoint, ``max_length``, the weights' precision
  (``quantization``: null for fp32) and the largest difference between ONNX and PyTorch logits measured at
  export on a padded sample batch.

``--quantize int8`` writes a dynamically quantized ``model.onnx`` instead of the fp32 one (onnxruntime's
``quantize_dynamic``: weights stored as int8, activations quantized at run time, so no calibration data is
needed); inputs, outputs and numpy decoding are unchanged, so :class:`~chatft.serving.onnx_predictor.OnnxPredictor`,
``chat --onnx`` and ``serve --onnx`` run it as they run an fp32 export. The options used are in
:data:`INT8_OPTIONS` (chosen on ATIS dev with ``benchmarks/quantize_options.py``).

Needs the ``onnx`` extra: ``pip install -e '.[onnx]'`` in a clone.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from torch import nn

from chatft import __version__
from chatft.core.entity_resources import ENTITIES_FILE
from chatft.core.errors import ConfigError
from chatft.core.features import tokenize_examples
from chatft.core.labels import LabelVocab
from chatft.model.batching import collate
from chatft.model.decoding import slot_decoder_of
from chatft.model.inference import load_for_inference

MANIFEST = "manifest.json"
QUANTIZE_CHOICES = ("int8",)
#: ``--quantize_weights``: signed weights (the default; u8 x s8 products, what VNNI computes) or unsigned
#: (u8 x u8: onnxruntime's documented way around the saturation u8 x s8 can have on x86 CPUs without VNNI).
WEIGHT_TYPES = ("int8", "uint8")
#: ``quantize_dynamic`` options of ``--quantize int8``, chosen on ATIS dev (``benchmarks/quantize_options.py``):
#: every op type it supports (MatMul and the embedding Gathers: quantizing the 30k x 384 word embedding is what
#: brings the file to 25 % of fp32; MatMul only leaves 65 %), one weight scale per output channel (per tensor
#: lost 0.3 slot F1 and 1.2 sentence accuracy points on dev, per channel none), full 8-bit weights
#: (``reduce_range``, 7-bit, is for CPUs without VNNI, where u8 x s8 products can saturate: -1.4 slot F1 here).
INT8_OPTIONS = {"per_channel": True, "reduce_range": False, "op_types_to_quantize": None}
FORMAT = "chatft-onnx"
FORMAT_VERSION = 1
_SAMPLE = [
    ["book", "a", "flight", "from", "boston", "to", "new", "york", "tomorrow", "morning"],
    ["hello"],
]


class _Graph(nn.Module):
    """The exported computation: JointModel.forward with plain tensor outputs."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, word_index=None):
        if self.model.slot_head is None:
            intent, _, features = self.model(
                input_ids, attention_mask, input_ids[:, :1], return_features=True
            )
            return intent, features
        return self.model(input_ids, attention_mask, word_index, return_features=True)


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as err:
        raise ConfigError(f"export needs onnx and onnxruntime ({err}): pip install -e '.[onnx]'") from None


def _check_quantize(quantize: str | None, quantize_weights: str) -> None:
    if quantize is not None and quantize not in QUANTIZE_CHOICES:
        raise ConfigError(
            f"--quantize {quantize!r} is not supported: use {' or '.join(QUANTIZE_CHOICES)}, or omit it for fp32"
        )
    if quantize_weights not in WEIGHT_TYPES:
        raise ConfigError(f"--quantize_weights {quantize_weights!r}: use {' or '.join(WEIGHT_TYPES)}")
    if quantize is None and quantize_weights != "int8":
        raise ConfigError(
            "--quantize_weights applies to --quantize int8 (add it, or omit --quantize_weights)"
        )


def quantize_int8(fp32_path: str | Path, out_path: str | Path, weight_type: str = "int8", **options) -> dict:
    """Dynamic int8 quantization of an ONNX file (onnxruntime's ``quantize_dynamic``); returns what was done.

    ``weight_type`` ``"int8"`` (signed weights: u8 x s8 products, VNNI's kernel) or ``"uint8"`` (u8 x u8, which
    onnxruntime documents as free of the saturation u8 x s8 can have on x86 without VNNI).
    ``options`` override :data:`INT8_OPTIONS` (``per_channel``, ``reduce_range``, ``op_types_to_quantize``).
    """
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    if weight_type not in WEIGHT_TYPES:
        raise ConfigError(f"weight_type {weight_type!r}: use {' or '.join(WEIGHT_TYPES)}")
    opts = {**INT8_OPTIONS, **options}
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic logs a static-quantization pre-processing hint on root
    try:
        quantize_dynamic(
            str(fp32_path),
            str(out_path),
            weight_type=QuantType.QInt8 if weight_type == "int8" else QuantType.QUInt8,
            **opts,
        )
    finally:
        root.setLevel(level)
    return {
        "method": "onnxruntime.quantization.quantize_dynamic",
        "weights": weight_type,
        "activations": "uint8, quantized at run time",
        **{k: v for k, v in opts.items()},
    }


def export_onnx(
    ckpt_path: str,
    output: str | Path,
    opset: int = 17,
    max_length: int | None = None,
    quantize: str | None = None,
    quantize_weights: str = "int8",
) -> Path:
    """Write the ONNX model, labels, tokenizer, decoding and manifest of a checkpoint to ``output``.

    ``quantize="int8"``: ``model.onnx`` is the dynamically quantized model (see :func:`quantize_int8`), its
    weights signed (``quantize_weights="int8"``) or unsigned (``"uint8"``).
    """
    _check_quantize(quantize, quantize_weights)
    _require_onnx()
    import numpy as np
    import onnxruntime as ort

    loaded = load_for_inference(ckpt_path, device="cpu", max_length=max_length)
    model = loaded.model.eval()
    try:  # eager attention exports as plain matmul/softmax, which onnxruntime fuses
        model.encoder.set_attn_implementation("eager")
    except (AttributeError, ValueError):
        pass
    has_slots = model.slot_head is not None
    out = Path(output).expanduser()
    out.mkdir(parents=True, exist_ok=True)

    # A padded sample batch: traced with padding so the attention mask is part of the graph.
    features = tokenize_examples(loaded.tokenizer, _SAMPLE, loaded.max_length)
    batch = collate(features, loaded.tokenizer.pad_token_id or 0)
    names = ["input_ids", "attention_mask"] + (["word_index"] if has_slots else [])
    args = tuple(batch[n] for n in names)
    axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"}}
    outputs = ["intent_logits"]
    axes["intent_logits"] = {0: "batch"}
    if has_slots:
        axes["word_index"] = {0: "batch", 1: "words"}
        axes["slot_logits"] = {0: "batch", 1: "words"}
        outputs.append("slot_logits")
    axes["intent_features"] = {0: "batch"}
    outputs.append("intent_features")
    graph = _Graph(model).eval()
    model_path = out / "model.onnx"
    fp32_path = out / "model.fp32.onnx" if quantize else model_path
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph,
            args,
            str(fp32_path),
            input_names=names,
            output_names=outputs,
            dynamic_axes=axes,
            opset_version=opset,
            dynamo=False,
        )
    graph.eval()  # export restores the training flag it found; keep eval for the check below
    quantization = None
    if quantize:
        try:
            quantization = quantize_int8(fp32_path, model_path, weight_type=quantize_weights)
        finally:
            fp32_path.unlink(missing_ok=True)

    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    got = session.run(None, {n: batch[n].numpy() for n in names})
    with torch.no_grad():
        want = graph(*args)
    want = [want] if isinstance(want, torch.Tensor) else list(want)
    diff = max(float(np.abs(g - w.numpy()).max()) for g, w in zip(got, want, strict=True))

    LabelVocab(loaded.intent_labels).save(out / "intents.json")
    if has_slots:
        LabelVocab(loaded.slot_labels).save(out / "slot_tags.json")
    loaded.tokenizer.save_pretrained(out / "tokenizer")
    if loaded.oos is not None:
        oos = {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in loaded.oos.to_dict().items()}
        (out / "oos.json").write_text(json.dumps(oos) + "\n", encoding="utf-8")
    entities = loaded.entities
    if entities is not None:  # synonyms, regexes and lookup tables embedded by fit
        entities.save(out)
    elif (out / ENTITIES_FILE).exists():
        (out / ENTITIES_FILE).unlink()  # a stale file from an earlier export into this folder
    decoder = slot_decoder_of(model)
    (out / "decoding.json").write_text(
        json.dumps(decoder.to_dict() if decoder else {"mode": "none"}) + "\n", encoding="utf-8"
    )
    tok = loaded.tokenizer
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "chatft_version": __version__,
        "source_checkpoint": str(Path(ckpt_path).resolve()),
        "encoder": loaded.hparams.get("encoder"),
        "model": "model.onnx",
        "opset": opset,
        "quantization": quantization,
        "inputs": {n: [axes[n][0], axes[n][1]] for n in names},
        "outputs": {
            "intent_logits": ["batch", "intents"],
            **({"slot_logits": ["batch", "words", "tags"]} if has_slots else {}),
            "intent_features": ["batch", "hidden"],
        },
        "oos": "oos.json" if loaded.oos is not None else None,
        "entities": ENTITIES_FILE if entities is not None else None,
        "intent_labels": "intents.json",
        "slot_labels": "slot_tags.json" if has_slots else None,
        "tokenizer": "tokenizer/tokenizer.json",
        "pad_token_id": tok.pad_token_id or 0,
        "unk_token": tok.unk_token,
        "max_length": loaded.max_length,
        "use_crf": model.crf is not None,
        "bio_constrained": bool(model.bio_constrained),
        "decoding": "decoding.json",
        "decoding_note": "slot decoding runs outside the graph, in numpy (chatft.core.decoding.SlotDecoder)",
        "check": {"max_abs_logit_diff_vs_pytorch": diff},
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return out


def export(
    ckpt_path: str,
    output: str,
    opset: int = 17,
    max_length: int | None = None,
    quantize: str | None = None,
    quantize_weights: str = "int8",
) -> Path:
    """Export a checkpoint to ONNX (+ labels, tokenizer, decoding, manifest) for onnxruntime.

    The folder runs with ``python -m chatft chat --onnx DIR`` or ``OnnxPredictor(DIR)``, without torch. A
    dialogue state tracker's checkpoint exports its own graph (``OnnxTracker(DIR)``,
    :mod:`chatft.serving.tracker_export`).

    Args:
        ckpt_path: checkpoint written by fit (.ckpt)
        output: folder to write (created if missing)
        opset: ONNX opset version
        max_length: max sub-word tokens per utterance at inference (default: the training value)
        quantize: int8: store a dynamically quantized model (int8 weights, ~25 % of the fp32 file, faster
            on CPU); omit for fp32
        quantize_weights: with --quantize int8: int8 (signed weights, the default, chosen on a VNNI CPU) or
            uint8 (unsigned: no u8 x s8 saturation on x86 CPUs without VNNI; see the smaller-models guide)
    """
    from chatft.serving.tracker_predictor import is_tracker_checkpoint

    _check_quantize(quantize, quantize_weights)
    if is_tracker_checkpoint(ckpt_path):  # a learned dialogue state tracker: its own graph and files
        if quantize is not None:
            raise ConfigError("--quantize: a dialogue state tracker exports in fp32 only (omit --quantize)")
        _require_onnx()
        from chatft.serving.tracker_export import export_tracker

        out = export_tracker(ckpt_path, output, opset=opset, max_length=max_length)
    else:
        out = export_onnx(
            ckpt_path,
            output,
            opset=opset,
            max_length=max_length,
            quantize=quantize,
            quantize_weights=quantize_weights,
        )
    diff = json.loads((out / MANIFEST).read_text())["check"]["max_abs_logit_diff_vs_pytorch"]
    kind = (
        ("int8 model, uint8 weights; " if quantize_weights == "uint8" else "int8 model; ") if quantize else ""
    )
    print(
        f"exported: {out} ({kind}max |ONNX - PyTorch| logit difference on a sample batch: {diff:.2e})",
        flush=True,
    )
    return out
