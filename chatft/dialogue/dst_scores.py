"""Dialogue state tracking scores, from counts: joint goal accuracy, slot accuracy, request accuracy.

The conventions of the WOZ 2.0 / DSTC2 literature (Mrkšić et al. 2017; Zhong et al. 2018):

- **joint goal accuracy**: the share of user turns whose predicted informable state equals the gold one on
  every slot (an unset slot must be predicted unset);
- **slot accuracy**: the mean over slots of the share of turns where that slot is right;
- **request accuracy**: the share of turns whose set of requested slots is exactly right.

Everything is a count (turns, joint hits, hits per slot, request hits), so per-process counts add up exactly
under DDP (:class:`chatft.training.dst_metrics.StateTrackingScores` keeps them as summed states). Torch-free.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["TurnScore", "turn_score", "DSTCounts"]


@dataclass(frozen=True)
class TurnScore:
    joint: bool
    slots: tuple[bool, ...]
    request: bool


def turn_score(
    gold: Mapping[str, str],
    predicted: Mapping[str, str],
    slots: Sequence[str],
    gold_requests: Iterable[str] = (),
    predicted_requests: Iterable[str] = (),
) -> TurnScore:
    """One turn, scored on ``slots`` (other keys of the states are ignored)."""
    per_slot = tuple(gold.get(s) == predicted.get(s) for s in slots)
    return TurnScore(all(per_slot), per_slot, set(gold_requests) == set(predicted_requests))


@dataclass
class DSTCounts:
    """Counts over turns and the scores they give (the same arithmetic as the torchmetrics metric)."""

    slots: tuple[str, ...]
    turns: int = 0
    joint: int = 0
    request: int = 0
    per_slot: list[int] = field(default_factory=list)

    def add(self, score: TurnScore) -> None:
        if not self.per_slot:
            self.per_slot = [0] * len(self.slots)
        self.turns += 1
        self.joint += score.joint
        self.request += score.request
        self.per_slot = [n + ok for n, ok in zip(self.per_slot, score.slots, strict=True)]

    def scores(self) -> dict[str, float]:
        n = self.turns or 1
        per_slot = self.per_slot or [0] * len(self.slots)
        return {
            "joint_goal_acc": self.joint / n,
            "slot_acc": sum(per_slot) / (n * max(1, len(self.slots))),
            "request_acc": self.request / n,
        }
