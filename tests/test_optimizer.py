"""AdamW's fused/foreach choice and gradient clipping: fused unless a loss scaler stands in the way."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from lightning.pytorch.plugins.precision import MixedPrecision, Precision

from chatft.training.optimizer import adamw, clip_gradients, fused_allowed

from .conftest import cli_args


@pytest.mark.parametrize(
    ("clip", "precision", "fused"),
    [
        (None, "bf16-mixed", True),
        (0.0, "16-mixed", True),
        (1.0, "32-true", True),  # the plain precision plugin clips a fused optimizer's gradients
        (1.0, "bf16-mixed", True),  # no scaler: clip_gradients clips it
        (0.5, "16-mixed", False),  # the scaler unscales inside the fused step: nothing to clip before it
    ],
)
def test_fused_unless_a_scaler_must_be_clipped(clip, precision, fused):
    plugin = Precision() if precision == "32-true" else MixedPrecision(precision, "cpu")
    assert fused_allowed(SimpleNamespace(gradient_clip_val=clip, precision_plugin=plugin)) is fused


def _fused_with_gradient(grad: list[float]):
    weight = torch.nn.Parameter(torch.zeros(len(grad)))
    weight.grad = torch.tensor(grad)
    optimizer = adamw([{"params": [weight]}], lr=0.1)
    assert optimizer.defaults["fused"]
    return weight, optimizer


class _Module:
    """The two things clip_gradients reads of a LightningModule: its trainer's plugin, its own clip."""

    def __init__(self, plugin) -> None:
        self.trainer = SimpleNamespace(precision_plugin=plugin)
        self.calls = []

    def clip_gradients(self, optimizer, clip_val, algorithm):
        self.calls.append((clip_val, algorithm))


#: (3, 4) clipped to norm 1 by torch's clip_grad_norm_, whose coefficient is max_norm / (norm + 1e-6).
UNIT = [3 / (5 + 1e-6), 4 / (5 + 1e-6)]


@pytest.mark.parametrize(
    ("algorithm", "clipped"),
    [(None, UNIT), ("norm", UNIT), ("NORM", UNIT), ("value", [1.0, 1.0])],
)
def test_bf16_mixed_clips_the_fused_optimizer(algorithm, clipped):
    """Lightning's own mixed-precision clip refuses a fused optimizer even without a scaler; chatft's clips its
    gradients exactly: (3, 4) to unit norm is (0.6, 0.8) (less torch's 1e-6), by value 1 it is (1, 1)."""
    plugin = MixedPrecision("bf16-mixed", "cpu")
    weight, optimizer = _fused_with_gradient([3.0, 4.0])
    with pytest.raises(RuntimeError, match="does not allow for gradient clipping"):
        plugin.clip_gradients(optimizer, 1.0)
    module = _Module(plugin)
    clip_gradients(module, optimizer, 1.0, algorithm)
    assert weight.grad.tolist() == pytest.approx(clipped, abs=1e-7)
    assert module.calls == []


@pytest.mark.parametrize("clip", [None, 0.0])
def test_bf16_mixed_without_a_clip_value_leaves_gradients_alone(clip):
    weight, optimizer = _fused_with_gradient([3.0, 4.0])
    clip_gradients(_Module(MixedPrecision("bf16-mixed", "cpu")), optimizer, clip, "norm")
    assert weight.grad.tolist() == [3.0, 4.0]


@pytest.mark.parametrize("plugin", [Precision(), MixedPrecision("16-mixed", "cpu")])
def test_other_precisions_clip_through_lightning(plugin):
    """fp32 and 16-mixed (whose scaler Lightning must unscale first) keep Lightning's own path."""
    weight, optimizer = _fused_with_gradient([3.0, 4.0])
    module = _Module(plugin)
    clip_gradients(module, optimizer, 0.5, "norm")
    assert module.calls == [(0.5, "norm")]
    assert weight.grad.tolist() == [3.0, 4.0]


def test_both_modules_clip_through_chatft():
    """The intent/slot module and the dialogue state tracker both take the bf16 path (their hook, unbound)."""
    from chatft.training.module import IntentSlotModule
    from chatft.training.tracker_module import TrackerModule

    for cls in (IntentSlotModule, TrackerModule):
        weight, optimizer = _fused_with_gradient([3.0, 4.0])
        cls.configure_gradient_clipping(_Module(MixedPrecision("bf16-mixed", "cpu")), optimizer, 1.0, "norm")
        assert weight.grad.tolist() == pytest.approx(UNIT, abs=1e-7), cls


def test_gradient_clipping_trains_under_bf16_mixed_with_fused_adamw(tiny_encoder, demo_small, tmp_path):
    """Was Lightning's RuntimeError at the first step ('AdamW does not allow for gradient clipping because it
    performs unscaling of gradients internally'), then a foreach optimizer; now fused, and clipped: every
    step's gradient norm after clipping is at most the clip value."""
    import lightning as L

    from chatft.training.lightning_cli import lightning_cli

    norms = []

    class Norms(L.Callback):
        """The gradients each step used, read after it (on_before_optimizer_step runs before clipping; Lightning
        sets them to None at the start of the next step)."""

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            optimizer = trainer.optimizers[0]
            grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
            norms.append(
                float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])))
            )

    args = cli_args(
        tiny_encoder,
        demo_small,
        tmp_path / "run",
        trainer__max_steps=3,
        trainer__precision="bf16-mixed",
        trainer__gradient_clip_val=1e-3,
    )
    cli = lightning_cli(args, run=False)
    cli.trainer.callbacks.append(Norms())
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    assert cli.trainer.global_step == 3
    optimizer = cli.trainer.optimizers[0]
    assert optimizer.defaults["fused"]
    assert len(norms) == 3 and all(n <= 1e-3 * (1 + 1e-5) for n in norms), norms
