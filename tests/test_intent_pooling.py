"""--model.intent_pooling mean: the intent head reads the mean of the real tokens' vectors, blind to padding."""

from __future__ import annotations

import pytest
import torch


def _model(tiny_encoder, pooling: str):
    from chatft.training.module import IntentSlotModule

    torch.manual_seed(0)
    module = IntentSlotModule(
        tiny_encoder, intent_labels=["<unk>", "a", "b"], slot_labels=["<unk>", "O"], intent_pooling=pooling
    )
    return module.model.eval()


def test_mean_pooling_reads_the_mean_of_real_tokens_and_ignores_padding(tiny_encoder):
    model = _model(tiny_encoder, "mean")
    ids = torch.tensor([[2, 7, 8, 9, 3]])
    padded = torch.tensor([[2, 7, 8, 9, 3, 0, 0]])
    word_index = torch.tensor([[1, 2, 3]])
    with torch.no_grad():
        logits, _, pooled = model(ids, torch.ones_like(ids), word_index, return_features=True)
        logits_p, _, pooled_p = model(padded, (padded != 0).long(), word_index, return_features=True)
        hidden = model.encoder(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
    torch.testing.assert_close(pooled, hidden.mean(1), rtol=0, atol=1e-6)
    torch.testing.assert_close(logits, model.intent_head(hidden.mean(1)), rtol=0, atol=1e-6)
    torch.testing.assert_close(pooled_p, pooled, rtol=0, atol=1e-5)
    torch.testing.assert_close(logits_p, logits, rtol=0, atol=1e-5)


def test_cls_pooling_reads_the_first_vector(tiny_encoder):
    model = _model(tiny_encoder, "cls")
    ids = torch.tensor([[2, 7, 8, 3]])
    with torch.no_grad():
        _, _, pooled = model(ids, torch.ones_like(ids), torch.tensor([[1, 2]]), return_features=True)
        hidden = model.encoder(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
    assert torch.equal(pooled, hidden[:, 0])


def test_unknown_pooling_is_a_config_error(tiny_encoder):
    from chatft.core.errors import ConfigError

    with pytest.raises(ConfigError, match="--model.intent_pooling must be cls, mean or null"):
        _model(tiny_encoder, "max")


def test_a_mean_pooling_checkpoint_predicts_and_exports_with_mean_pooling(tiny_encoder, tmp_path):
    """The inference loader (Predictor, export, serve, chat, a distillation teacher) rebuilds the pooling the
    model was trained with: read with CLS pooling, a mean-pooling checkpoint would give other intents,
    silently. Its logits equal the training module's; the ONNX export's match them too."""
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
                tiny_encoder, data, tmp_path / "run", trainer__max_epochs=1, model__intent_pooling="mean"
            ),
        ]
    )
    ckpt = tmp_path / "run/lightning_logs/version_0/checkpoints/last.ckpt"
    loaded = load_for_inference(ckpt)
    assert loaded.model.intent_pooling == "mean"
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
    main(["export", "--ckpt_path", str(ckpt), "--output", str(tmp_path / "onnx")])
    onnx_intents, _, _ = OnnxPredictor(tmp_path / "onnx").logits(arrays)
    assert abs(onnx_intents - trained.numpy()).max() < 1e-4


@pytest.mark.parametrize(("n_train", "pooling"), [(64, "mean"), (200, "cls")])
def test_by_default_fit_chooses_the_pooling_from_the_training_set_and_saves_it(
    tiny_encoder, tmp_path, monkeypatch, capsys, n_train, pooling
):
    """--model.intent_pooling null (the default): with the default encoder (the tiny one stands in for it
    here), 64 demo utterances over 9 intents (7.1 each) are few-shot and pool the mean; 200 (22.2 each) keep
    [CLS]. The choice is in the checkpoint, so every loader reads it back."""
    from chatft.cli import main
    from chatft.core.encoder_names import DEFAULT_ENCODER
    from chatft.model.checkpoint import load_checkpoint
    from chatft.model.inference import load_for_inference
    from chatft.training import module, schedule

    from .conftest import cli_args, demo_subset

    seen = []

    def as_default(n_train, n_intents, encoder):
        seen.append(encoder)
        return schedule.default_intent_pooling(n_train, n_intents, DEFAULT_ENCODER)

    monkeypatch.setattr(module, "default_intent_pooling", as_default)
    data = demo_subset(tmp_path / "data", n_train=n_train)
    main(["fit", *cli_args(tiny_encoder, data, tmp_path / "run", trainer__max_epochs=1)])
    assert seen == [str(tiny_encoder)]  # the rule is asked once, with the model's encoder
    said = [line for line in capsys.readouterr().out.splitlines() if line.startswith("intent pooling:")]
    assert said == (
        [
            "intent pooling: mean of the token vectors, for a few-shot training set and the default encoder "
            "(--model.intent_pooling cls reads [CLS] instead)"
        ]
        if pooling == "mean"
        else []
    )
    ckpt = tmp_path / "run/lightning_logs/version_0/checkpoints/last.ckpt"
    assert load_checkpoint(ckpt)["hyper_parameters"]["intent_pooling"] == pooling
    assert load_for_inference(ckpt).model.intent_pooling == pooling


def test_by_default_another_encoder_keeps_cls_on_a_few_shot_set(tiny_encoder, tmp_path):
    from chatft.cli import main
    from chatft.model.checkpoint import load_checkpoint

    from .conftest import cli_args, demo_subset

    data = demo_subset(tmp_path / "data")
    main(["fit", *cli_args(tiny_encoder, data, tmp_path / "run", trainer__max_epochs=1)])
    ckpt = tmp_path / "run/lightning_logs/version_0/checkpoints/last.ckpt"
    assert load_checkpoint(ckpt)["hyper_parameters"]["intent_pooling"] == "cls"
