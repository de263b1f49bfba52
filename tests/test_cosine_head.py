"""--model.intent_head cosine: intent scores are a fixed scale times the cosine between the pooled vector and
each intent's vector; checkpoints, the inference loader and the ONNX export read it back."""

from __future__ import annotations

import math

import pytest
import torch

from chatft.model.heads import CosineHead, adacos_scale


def test_the_scale_is_adacos_fixed_value():
    assert adacos_scale(151) == pytest.approx(math.sqrt(2) * math.log(150))  # CLINC150 + <unk>: 7.086
    assert adacos_scale(151) == pytest.approx(7.0862, abs=1e-4)
    assert adacos_scale(22) == pytest.approx(math.sqrt(2) * math.log(21))
    assert adacos_scale(2) == 1.0 and adacos_scale(1) == 1.0  # ln(1) = 0 and ln(0): floored at 1


def test_scores_are_the_scaled_cosine_and_ignore_lengths():
    torch.manual_seed(0)
    head = CosineHead(5, 4)
    assert [name for name, _ in head.named_parameters()] == ["weight"]  # no bias
    assert float(head.scale) == pytest.approx(adacos_scale(4))
    x = torch.randn(3, 5)
    want = adacos_scale(4) * torch.stack(
        [torch.stack([torch.dot(a, w) / (a.norm() * w.norm()) for w in head.weight]) for a in x]
    )
    torch.testing.assert_close(head(x), want.detach(), rtol=0, atol=1e-6)
    torch.testing.assert_close(head(x * 7.5), head(x), rtol=0, atol=1e-6)  # the sentence vector's length
    with torch.no_grad():
        head.weight[2] *= 10.0  # a class's vector length does not make it win
    torch.testing.assert_close(head(x), want.detach(), rtol=0, atol=1e-6)
    assert head(x).abs().max() <= adacos_scale(4) + 1e-6
    assert torch.isfinite(head(torch.zeros(1, 5))).all()  # a zero vector scores 0, not NaN
    assert head(torch.zeros(1, 5)).abs().max() == 0


def test_the_joint_model_uses_it_and_rejects_other_names(tiny_encoder):
    from chatft.core.errors import ConfigError
    from chatft.training.module import IntentSlotModule

    module = IntentSlotModule(
        tiny_encoder, intent_labels=["<unk>", "a", "b"], slot_labels=["<unk>", "O"], intent_head="cosine"
    )
    assert isinstance(module.model.intent_head, CosineHead) and module.spec.intent_head == "cosine"
    assert set(module.model.intent_head.state_dict()) == {"weight", "scale"}
    linear = IntentSlotModule(tiny_encoder, intent_labels=["<unk>", "a", "b"], slot_labels=["<unk>", "O"])
    assert isinstance(linear.model.intent_head, torch.nn.Linear) and linear.spec.intent_head == "linear"
    with pytest.raises(ConfigError, match="--model.intent_head must be linear or cosine"):
        IntentSlotModule(tiny_encoder, intent_labels=["<unk>", "a"], intent_head="arcface")


def test_a_cosine_head_checkpoint_predicts_and_exports_with_it(tiny_encoder, tmp_path):
    """Trained through the CLI, the checkpoint reloads with the cosine head (the same logits as the training
    module), the ONNX export matches them, and the scores stay within the fixed scale."""
    from chatft import OnnxPredictor
    from chatft.cli import main
    from chatft.core.features import pad_batch, tokenize_examples
    from chatft.model.inference import load_for_inference
    from chatft.training.module import IntentSlotModule

    from .conftest import cli_args, demo_subset

    data = demo_subset(tmp_path / "data")
    main(
        [
            "fit",
            *cli_args(
                tiny_encoder, data, tmp_path / "run", trainer__max_epochs=1, model__intent_head="cosine"
            ),
        ]
    )
    ckpt = tmp_path / "run/lightning_logs/version_0/checkpoints/last.ckpt"
    loaded = load_for_inference(ckpt)
    assert isinstance(loaded.model.intent_head, CosineHead)
    module = IntentSlotModule.load_from_checkpoint(ckpt, map_location="cpu").eval()
    texts = (data / "test/seq.in").read_text(encoding="utf-8").splitlines()[:8]
    arrays = pad_batch(
        tokenize_examples(loaded.tokenizer, [t.split() for t in texts], loaded.max_length),
        loaded.tokenizer.pad_token_id,
    )
    ids, mask, words = (torch.as_tensor(arrays[k]) for k in ("input_ids", "attention_mask", "word_index"))
    with torch.no_grad():
        trained, _ = module.model(ids, mask, words)
        reloaded, _ = loaded.model(ids, mask, words)
    assert torch.equal(reloaded, trained)
    assert trained.abs().max() <= float(loaded.model.intent_head.scale) + 1e-5
    main(["export", "--ckpt_path", str(ckpt), "--output", str(tmp_path / "onnx")])
    onnx_intents, _, _ = OnnxPredictor(tmp_path / "onnx").logits(arrays)
    assert abs(onnx_intents - trained.numpy()).max() < 1e-4
