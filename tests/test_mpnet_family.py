"""An MPNet-family encoder (all-mpnet-base-v2's architecture) through fit, test, export and ONNX parity.

The real all-mpnet-base-v2 is 438 MB and installs from the package index; its architecture differs from BERT's
(relative position buckets, no token type ids, padding index 1 in its own vocabulary), and ``export`` traces it.
A 2-layer, 32-wide random ``MPNetModel`` with the session's WordPiece vocabulary stands in for it, so a
regression in the MPNet path (e.g. an input BERT has and MPNet lacks) fails here, offline and in seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from chatft.cli import main

from .conftest import cli_args, demo_subset


def build_tiny_mpnet(folder: Path, bert_folder: Path) -> Path:
    """A random MPNet with the tiny BERT's tokenizer files (MPNet's tokenizer is WordPiece too)."""
    from transformers import AutoTokenizer, MPNetConfig, MPNetModel

    tok = AutoTokenizer.from_pretrained(bert_folder)
    tok.save_pretrained(folder)
    torch.manual_seed(0)
    config = MPNetConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=130,
        pad_token_id=tok.pad_token_id,
    )
    MPNetModel(config, add_pooling_layer=False).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def mpnet_run(tiny_encoder, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("mpnet")
    encoder = build_tiny_mpnet(root / "tiny-mpnet", Path(tiny_encoder))
    data = demo_subset(root / "data")
    opts = dict(data__batch_size=16, model__learning_rate="3e-4", model__head_learning_rate="3e-3")
    main(["fit", *cli_args(encoder, data, root / "run", trainer__max_epochs=3, oos__fallback=False, **opts)])
    ckpt = root / "run/lightning_logs/version_0/checkpoints/last.ckpt"
    return {"root": root, "data": data, "ckpt": ckpt}


def test_an_mpnet_checkpoint_embeds_its_architecture(mpnet_run):
    ckpt = torch.load(mpnet_run["ckpt"], map_location="cpu", weights_only=False)
    state = ckpt["state_dict"]
    assert any(k.startswith("model.encoder.encoder.relative_attention_bias") for k in state)
    assert not any("token_type_embeddings" in k for k in state)


@pytest.mark.parametrize("quantize", [None, "int8"])
def test_mpnet_exports_to_onnx_with_the_same_predictions(mpnet_run, quantize, capsys):
    from chatft import OnnxPredictor, Predictor

    out = mpnet_run["root"] / f"onnx-{quantize or 'fp32'}"
    args = ["export", "--ckpt_path", str(mpnet_run["ckpt"]), "--output", str(out)]
    main(args + (["--quantize", quantize] if quantize else []))
    assert capsys.readouterr().out.startswith(f"exported: {out}")
    manifest = json.loads((out / "manifest.json").read_text())
    texts = (mpnet_run["data"] / "test/seq.in").read_text(encoding="utf-8").splitlines()[:12]
    torch_preds = Predictor.from_checkpoint(str(mpnet_run["ckpt"])).batch(texts, batch_size=5)
    onnx_preds = OnnxPredictor(out).batch(texts, batch_size=3)  # other padding, same results
    if quantize is None:
        assert manifest["check"]["max_abs_logit_diff_vs_pytorch"] < 1e-4
        for o, t in zip(onnx_preds, torch_preds, strict=True):
            assert (o.words, o.tags, o.intent) == (t.words, t.tags, t.intent)
            assert [p for _, p in o.intents_top_k] == pytest.approx([p for _, p in t.intents_top_k], abs=1e-4)
    else:  # int8 weights move the logits: same words, and a prediction for every utterance
        assert manifest["quantization"]["method"] == "onnxruntime.quantization.quantize_dynamic"
        assert [o.words for o in onnx_preds] == [t.words for t in torch_preds]
        assert all(o.intent is not None and len(o.tags) == len(o.words) for o in onnx_preds)
