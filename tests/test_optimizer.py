"""AdamW's fused/foreach choice: fused unless Lightning could not clip its gradients."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from chatft.training.optimizer import fused_allowed

from .conftest import cli_args


@pytest.mark.parametrize(
    ("clip", "precision", "fused"),
    [
        (None, "bf16-mixed", True),
        (0.0, "bf16-mixed", True),
        (1.0, "32-true", True),  # the plain precision plugin clips a fused optimizer's gradients
        (1.0, "bf16-mixed", False),
        (0.5, "16-mixed", False),
    ],
)
def test_fused_unless_mixed_precision_must_clip(clip, precision, fused):
    assert fused_allowed(SimpleNamespace(gradient_clip_val=clip, precision=precision)) is fused


def test_gradient_clipping_trains_under_bf16_mixed(tiny_encoder, demo_small, tmp_path):
    """Was Lightning's RuntimeError at the first step ('AdamW does not allow for gradient clipping because it
    performs unscaling of gradients internally'): the fused optimizer under a mixed-precision plugin."""
    from chatft.training.lightning_cli import lightning_cli

    args = cli_args(
        tiny_encoder,
        demo_small,
        tmp_path / "run",
        trainer__max_steps=2,
        trainer__precision="bf16-mixed",
        trainer__gradient_clip_val=1.0,
    )
    cli = lightning_cli(["fit", *args])
    assert cli.trainer.global_step == 2
    optimizer = cli.trainer.optimizers[0]
    assert not optimizer.defaults["fused"] and optimizer.defaults["foreach"]
