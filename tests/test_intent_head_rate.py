"""--model.intent_head_learning_rate null (the default): fit trains the intent head 3x faster than the other
heads on a few-shot training set, says so in one line, and saves the rate it trained with."""

from __future__ import annotations

import pytest


def _rates(optimizer, module) -> dict[str, float]:
    """Each named parameter's initial learning rate in the optimizer fit built."""
    lr = {id(p): g["initial_lr"] for g in optimizer.param_groups for p in g["params"]}
    return {name: lr[id(p)] for name, p in module.model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize(("n_train", "intent_rate"), [(64, 3e-3), (200, 1e-3)])
def test_by_default_fit_chooses_the_intent_head_rate_from_the_training_set(
    tiny_encoder, tmp_path, capsys, n_train, intent_rate
):
    """64 demo utterances over 9 intents (7.1 each) are few-shot: the intent head at 3e-3, the slot head at the
    recipe's 1e-3; 200 (22.2 each) are not: one rate for both heads, no line."""
    from chatft.model.checkpoint import load_checkpoint
    from chatft.training.lightning_cli import lightning_cli

    from .conftest import cli_args, demo_subset

    data = demo_subset(tmp_path / "data", n_train=n_train)
    cli = lightning_cli(["fit", *cli_args(tiny_encoder, data, tmp_path / "run", trainer__max_epochs=1)])
    rates = _rates(cli.trainer.optimizers[0], cli.model)
    assert {rates["intent_head.weight"], rates["intent_head.bias"]} == {intent_rate}
    assert {rates["slot_head.weight"], rates["slot_head.bias"]} == {1e-3}
    assert {v for k, v in rates.items() if k.startswith("encoder.")} == {1e-4}
    said = [line for line in capsys.readouterr().out.splitlines() if line.startswith("intent head learning")]
    assert said == (
        [
            "intent head learning rate: 0.003 (other heads 0.001), for a few-shot training set "
            "(--model.intent_head_learning_rate sets it)"
        ]
        if intent_rate != 1e-3
        else []
    )
    ckpt = tmp_path / "run/lightning_logs/version_0/checkpoints/last.ckpt"
    assert load_checkpoint(ckpt)["hyper_parameters"]["intent_head_learning_rate"] == intent_rate


def test_a_given_intent_head_rate_is_kept(tiny_encoder, demo_small, tmp_path, capsys):
    from chatft.training.lightning_cli import lightning_cli

    from .conftest import cli_args

    args = cli_args(
        tiny_encoder,
        demo_small,
        tmp_path / "run",
        trainer__max_epochs=1,
        model__intent_head_learning_rate=5e-4,
    )
    cli = lightning_cli(["fit", *args])
    rates = _rates(cli.trainer.optimizers[0], cli.model)
    assert (rates["intent_head.weight"], rates["slot_head.weight"]) == (5e-4, 1e-3)
    assert cli.model.hparams.intent_head_learning_rate == 5e-4
    assert "intent head learning rate" not in capsys.readouterr().out


@pytest.mark.parametrize("rate", [-1e-3, -1.0])
def test_a_negative_rate_is_a_config_error(tiny_encoder, rate):
    from chatft.core.errors import ConfigError
    from chatft.training.module import IntentSlotModule

    with pytest.raises(
        ConfigError,
        match=rf"^--model.intent_head_learning_rate must be >= 0, or null: by training set \(got {rate}\)$",
    ):
        IntentSlotModule(tiny_encoder, intent_labels=["<unk>", "a"], intent_head_learning_rate=rate)
