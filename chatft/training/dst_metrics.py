"""StateTrackingScores: joint goal, slot and request accuracy as summed counts (exact under DDP).

The arithmetic is :class:`chatft.dialogue.dst_scores.DSTCounts`'s; here the counts are torchmetrics states with
``dist_reduce_fx="sum"``, so 1 process and 2 processes give the same numbers on the same dialogues.
"""

from __future__ import annotations

import torch
import torchmetrics
from torch import Tensor

from chatft.dialogue.dst_scores import TurnScore

__all__ = ["StateTrackingScores"]


class StateTrackingScores(torchmetrics.Metric):
    """Counts of turns, joint hits, request hits and hits per slot."""

    full_state_update = False
    is_differentiable = False
    higher_is_better = True

    turns: Tensor
    joint: Tensor
    request: Tensor
    per_slot: Tensor

    def __init__(self, num_slots: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("turns", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("joint", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("request", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("per_slot", torch.zeros(num_slots, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, scores: list[TurnScore]) -> None:  # type: ignore[override]
        for s in scores:
            self.turns += 1
            self.joint += int(s.joint)
            self.request += int(s.request)
            self.per_slot += torch.tensor(s.slots, dtype=torch.long, device=self.per_slot.device)

    def compute(self) -> dict[str, Tensor]:
        n = self.turns.clamp(min=1).double()
        return {
            "joint_goal_acc": self.joint.double() / n,
            "slot_acc": self.per_slot.sum().double() / (n * max(1, self.per_slot.numel())),
            "request_acc": self.request.double() / n,
        }

    def slot_accuracies(self) -> Tensor:
        """Per-slot accuracy (synced counts when called after :meth:`compute` under DDP)."""
        return self.per_slot.double() / self.turns.clamp(min=1).double()
