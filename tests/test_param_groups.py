"""Optimizer parameter groups: layer-wise learning-rate decay and weight-decay exclusions, exact values."""

from __future__ import annotations

import pytest
import torch

from chatft.training.param_groups import encoder_depth, parameter_groups


@pytest.mark.parametrize(
    ("name", "depth"),
    [
        ("encoder.encoder.layer.5.attention.self.query.weight", 0),
        ("encoder.encoder.layer.0.output.dense.weight", 5),
        ("encoder.embeddings.word_embeddings.weight", 6),
        ("encoder.embeddings.LayerNorm.bias", 6),
        ("encoder.pooler.dense.weight", 0),
    ],
)
def test_encoder_depth_counts_layers_down_from_the_top(name, depth):
    assert encoder_depth(name, num_layers=6) == depth


def _module_lrs(tiny_encoder, intent_head_learning_rate=None, **kwargs) -> dict[str, tuple[float, float]]:
    from chatft.training.module import IntentSlotModule

    module = IntentSlotModule(
        tiny_encoder, intent_labels=["<unk>", "a"], slot_labels=["<unk>", "O"], **kwargs
    )
    named = list(module.model.named_parameters())
    groups = parameter_groups(
        named,
        learning_rate=1e-4,
        head_learning_rate=1e-3,
        weight_decay=0.01,
        num_layers=module.model.encoder.config.num_hidden_layers,
        layer_lr_decay=module.hparams.layer_lr_decay,
        intent_head_learning_rate=intent_head_learning_rate,
    )
    where = {id(p): (g["lr"], g["weight_decay"]) for g in groups for p in g["params"]}
    assert sum(len(g["params"]) for g in groups) == len(named)  # every parameter in exactly one group
    return {name: where[id(p)] for name, p in named}


def test_layer_lr_decay_scales_each_layer_below_the_top(tiny_encoder):
    lrs = _module_lrs(tiny_encoder, layer_lr_decay=0.5)  # the tiny encoder has 2 layers
    assert lrs["encoder.encoder.layer.1.attention.self.query.weight"] == (1e-4, 0.01)
    assert lrs["encoder.encoder.layer.0.attention.self.query.weight"] == (0.5e-4, 0.01)
    assert lrs["encoder.encoder.layer.0.attention.self.query.bias"] == (0.5e-4, 0.0)
    assert lrs["encoder.embeddings.word_embeddings.weight"] == (0.25e-4, 0.01)
    assert lrs["encoder.embeddings.LayerNorm.weight"] == (0.25e-4, 0.0)
    assert lrs["intent_head.weight"] == (1e-3, 0.01)
    assert lrs["slot_head.bias"] == (1e-3, 0.0)


def test_no_decay_keeps_the_two_rate_recipe(tiny_encoder):
    lrs = _module_lrs(tiny_encoder)
    assert {v for k, v in lrs.items() if k.startswith("encoder.")} == {(1e-4, 0.01), (1e-4, 0.0)}
    assert {v for k, v in lrs.items() if not k.startswith("encoder.")} == {(1e-3, 0.01), (1e-3, 0.0)}


def test_an_intent_head_rate_moves_the_intent_head_alone(tiny_encoder):
    lrs = _module_lrs(tiny_encoder, intent_head_learning_rate=3e-3, use_crf=True)
    assert lrs["intent_head.weight"] == (3e-3, 0.01) and lrs["intent_head.bias"] == (3e-3, 0.0)
    assert lrs["slot_head.weight"] == (1e-3, 0.01) and lrs["slot_head.bias"] == (1e-3, 0.0)
    assert {v for k, v in lrs.items() if k.startswith("crf.")} == {(1e-3, 0.0)}
    assert {v for k, v in lrs.items() if k.startswith("encoder.")} == {(1e-4, 0.01), (1e-4, 0.0)}
    cosine = _module_lrs(tiny_encoder, intent_head_learning_rate=3e-3, intent_head="cosine")
    assert {v for k, v in cosine.items() if k.startswith("intent_head.")} == {(3e-3, 0.01)}
    # The same rate as the other heads: the groups of the two-rate recipe, nothing split.
    assert _module_lrs(tiny_encoder, intent_head_learning_rate=1e-3) == _module_lrs(tiny_encoder)


def test_frozen_parameters_are_left_out():
    frozen, trained = (
        torch.nn.Parameter(torch.zeros(2, 2), requires_grad=False),
        torch.nn.Parameter(torch.zeros(2, 2)),
    )
    groups = parameter_groups(
        [("encoder.embeddings.word_embeddings.weight", frozen), ("intent_head.weight", trained)],
        learning_rate=1e-4,
        head_learning_rate=1e-3,
        weight_decay=0.01,
        num_layers=2,
    )
    assert len(groups) == 1 and groups[0]["params"] == [trained] and groups[0]["lr"] == 1e-3


@pytest.mark.parametrize("decay", [0.0, 1.5, -0.1])
def test_bad_layer_lr_decay_is_a_config_error(tiny_encoder, decay):
    from chatft.core.errors import ConfigError
    from chatft.training.module import IntentSlotModule

    with pytest.raises(ConfigError, match="--model.layer_lr_decay"):
        IntentSlotModule(tiny_encoder, intent_labels=["<unk>", "a"], layer_lr_decay=decay)
