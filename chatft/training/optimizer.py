"""The optimizer and schedule every chatft LightningModule trains with: AdamW, linear warmup, linear decay.

One place for both the intent/slot module and the dialogue state tracker (:class:`FineTuning`, which both
inherit), so a change to the optimizer, the fused/foreach choice or the clipping below reaches both.
"""

from __future__ import annotations

import torch

from chatft.training.param_groups import parameter_groups


def adamw(params: list[dict], lr: float, fused: bool = True) -> torch.optim.AdamW:
    """Fused AdamW (one kernel for all parameters) where the device supports it and ``fused``, else foreach.

    Measured on 2 CPU cores with MiniLM-L6: foreach AdamW took ~140 ms per step (a sqrt/mul pass per
    tensor list over 22.7 M parameters), fused ~10 ms, a step's total falling from ~0.27 s to ~0.20 s.
    """
    if fused:
        try:
            return torch.optim.AdamW(params, lr=lr, fused=True)
        except (RuntimeError, TypeError, ValueError):
            pass
    return torch.optim.AdamW(params, lr=lr, foreach=True)


def fused_allowed(trainer) -> bool:
    """False only where fused AdamW's gradients cannot be clipped: ``--trainer.gradient_clip_val`` with a loss
    scaler in the trainer's precision plugin (``16-mixed``). The scaler leaves the gradients scaled until the
    fused step unscales them inside its kernel, so there is no moment at which the true gradients could be
    clipped (Lightning raises a RuntimeError at the first step); such a run gets foreach AdamW (the same
    update, ~0.13 s more per MiniLM-L6 step on 2 CPU cores), which Lightning unscales, clips, then steps.
    ``bf16-mixed`` has no scaler and keeps the fused optimizer: :func:`clip_gradients` clips it (the same
    test of the plugin, so the two cannot disagree)."""
    clip = getattr(trainer, "gradient_clip_val", None)
    return not (clip and _loss_scaler(trainer.precision_plugin) is not None)


def _loss_scaler(plugin):
    """The precision plugin's loss scaler (``16-mixed``), None for plugins without one (fp32, ``bf16-mixed``)."""
    return getattr(plugin, "scaler", None)


def clip_gradients(module, optimizer, clip_val: float | None, algorithm: str | None) -> None:
    """``configure_gradient_clipping`` of every chatft LightningModule: Lightning's own clipping, except under
    ``bf16-mixed``, where it is done with the base precision plugin's clip.

    Why: Lightning's mixed-precision plugin refuses to clip any optimizer that unscales its own gradients
    (fused AdamW), a guard written for ``16-mixed``'s loss scaler. ``bf16-mixed`` has no scaler: the fp32
    parameters' gradients are the true gradients when this hook runs, so clipping them before the fused step
    is exact (Lightning issue #21435 reports the same guard). Without this a clipped ``bf16-mixed`` run had
    to train with foreach AdamW: 1.29x slower for all-mpnet-base-v2 on 2 CPU cores (docs/results.md).
    """
    from lightning.pytorch.plugins.precision import MixedPrecision, Precision
    from lightning.pytorch.utilities import GradClipAlgorithmType

    plugin = module.trainer.precision_plugin
    if isinstance(plugin, MixedPrecision) and _loss_scaler(plugin) is None:
        kind = GradClipAlgorithmType((algorithm or "norm").lower())
        Precision.clip_gradients(plugin, optimizer, clip_val or 0.0, kind)
    else:
        module.clip_gradients(optimizer, clip_val, algorithm)


def adamw_with_warmup(params: list[dict], lr: float, warmup_ratio: float, trainer) -> dict:
    """``configure_optimizers``' answer: :func:`adamw` over ``params`` (fused where ``trainer`` allows it,
    :func:`fused_allowed`), a linear warmup over ``warmup_ratio`` of the trainer's steps then linear decay to
    0, stepped every optimizer step."""
    from transformers import get_linear_schedule_with_warmup

    optimizer = adamw(params, lr, fused_allowed(trainer))
    total = max(1, int(trainer.estimated_stepping_batches))
    scheduler = get_linear_schedule_with_warmup(optimizer, int(warmup_ratio * total), total)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


class FineTuning:
    """``configure_optimizers`` and ``configure_gradient_clipping`` of a chatft LightningModule (listed before
    ``L.LightningModule`` among its bases). Reads the module's hyper-parameters ``learning_rate``,
    ``head_learning_rate``, ``weight_decay``, ``layer_lr_decay``, ``warmup_ratio`` and, where the module has them,
    ``added_token_lr`` and ``intent_head_learning_rate``, and its ``model.encoder``."""

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        """Lightning's clipping, which under ``bf16-mixed`` also clips the fused AdamW (:func:`clip_gradients`)."""
        clip_gradients(self, optimizer, gradient_clip_val, gradient_clip_algorithm)

    def configure_optimizers(self):
        """AdamW over :func:`~chatft.training.param_groups.parameter_groups` (encoder at ``learning_rate`` with
        layer-wise decay, heads at ``head_learning_rate``, the intent head at ``intent_head_learning_rate`` where
        set, no decay on biases/LayerNorm), linear warmup then linear decay over all steps."""
        hp = self.hparams
        params = parameter_groups(
            self.model.named_parameters(),
            learning_rate=hp.learning_rate,
            head_learning_rate=hp.head_learning_rate,
            weight_decay=hp.weight_decay,
            num_layers=self.model.encoder.config.num_hidden_layers,
            layer_lr_decay=hp.layer_lr_decay,
            added_token_lr=hp.get("added_token_lr"),
            intent_head_learning_rate=hp.get("intent_head_learning_rate"),
        )
        return adamw_with_warmup(params, hp.learning_rate, hp.warmup_ratio, self.trainer)
