"""The linear probe: the intent head fitted alone on frozen, pooled training features before fine-tuning."""

from __future__ import annotations

import torch


def _module(tiny_encoder, pooling: str = "mean"):
    from chatft.training.module import IntentSlotModule

    torch.manual_seed(0)
    return IntentSlotModule(
        tiny_encoder,
        intent_labels=["<unk>", "a", "b", "c"],
        slot_labels=["<unk>", "O"],
        intent_pooling=pooling,
    )


def test_pooled_features_are_what_the_head_reads_with_dropout_off(tiny_encoder):
    from chatft.core.features import pad_batch, tokenize_examples
    from chatft.model.encoders import load_tokenizer
    from chatft.training.linear_probe import pooled_features

    module = _module(tiny_encoder)
    module.model.train()
    tokenizer = load_tokenizer(tiny_encoder)
    features = tokenize_examples(
        tokenizer, [["book", "a", "flight"], ["hi"], ["what", "is", "the", "time"]], 16
    )
    x = pooled_features(module.model, features, tokenizer.pad_token_id, batch_size=2)
    assert module.model.training  # the model's mode is given back
    module.model.eval()
    arrays = pad_batch(features, tokenizer.pad_token_id)
    ids, mask, words = (torch.as_tensor(arrays[k]) for k in ("input_ids", "attention_mask", "word_index"))
    with torch.no_grad():
        logits, _, pooled = module.model(ids, mask, words, return_features=True)
    assert x.shape == (3, module.model.encoder.config.hidden_size)
    torch.testing.assert_close(x, pooled, rtol=0, atol=1e-5)  # batches of 2 and 3: padding changes nothing
    torch.testing.assert_close(module.model.intent_head(x), logits, rtol=0, atol=1e-5)


def test_fit_head_fits_separable_features_and_changes_only_the_head():
    from chatft.training.linear_probe import fit_head

    torch.manual_seed(0)
    head = torch.nn.Linear(8, 4)
    x = torch.randn(12, 8)
    y = torch.tensor([1, 2, 3] * 4)
    before = x.clone()
    losses = fit_head(head, x, y, steps=200)
    assert len(losses) == 200 and losses[-1] < losses[0] / 10
    assert torch.equal(head(x).argmax(-1), y)  # 12 random points in 8 dimensions are separable
    assert torch.equal(x, before)
    torch.manual_seed(0)
    again = torch.nn.Linear(8, 4)
    assert fit_head(again, x, y, steps=200) == losses  # deterministic


def test_fit_with_a_probe_starts_from_a_fitted_head(tiny_encoder, tmp_path, capsys):
    from chatft.cli import main

    from .conftest import cli_args, demo_subset

    data = demo_subset(tmp_path / "data")
    main(
        [
            "fit",
            *cli_args(
                tiny_encoder, data, tmp_path / "run", trainer__max_epochs=1, model__intent_probe_steps=50
            ),
        ]
    )
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("linear probe:")]
    assert len(lines) == 1
    assert lines[0].startswith(
        "linear probe: intent head fitted on 64 frozen training features (50 steps), loss "
    )
