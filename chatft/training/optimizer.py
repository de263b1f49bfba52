"""The optimizer and schedule every chatft LightningModule trains with: AdamW, linear warmup, linear decay.

One place for both the intent/slot module and the dialogue state tracker, so a change to the optimizer (or
the fused/foreach choice below) reaches both.
"""

from __future__ import annotations

import torch


def adamw(params: list[dict], lr: float) -> torch.optim.AdamW:
    """Fused AdamW (one kernel for all parameters) where the device supports it, else foreach.

    Measured on 2 CPU cores with MiniLM-L6: foreach AdamW took ~140 ms per step (a sqrt/mul pass per
    tensor list over 22.7 M parameters), fused ~10 ms, a step's total falling from ~0.27 s to ~0.20 s.
    """
    try:
        return torch.optim.AdamW(params, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(params, lr=lr, foreach=True)


def adamw_with_warmup(params: list[dict], lr: float, warmup_ratio: float, total_steps: int) -> dict:
    """``configure_optimizers``' answer: :func:`adamw` over ``params``, a linear warmup over
    ``warmup_ratio`` of ``total_steps`` then linear decay to 0, stepped every optimizer step."""
    from transformers import get_linear_schedule_with_warmup

    optimizer = adamw(params, lr)
    total = max(1, int(total_steps))
    scheduler = get_linear_schedule_with_warmup(optimizer, int(warmup_ratio * total), total)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
