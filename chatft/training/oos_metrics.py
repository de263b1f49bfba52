"""Out-of-scope metrics, exact under DDP: counts summed over processes, scores gathered (``cat``) for AUROC.

Logged as ``val/…`` and ``test/…`` when the model has an out-of-scope label:

* ``in_scope_acc``: in-scope utterances whose intent is right and which were not called out of scope;
* ``oos_recall``: out-of-scope utterances called out of scope; ``oos_precision``: utterances called out of
  scope that are;
* ``oos_auroc``: area under the ROC of the OOS score, in-scope as the positive class (torchmetrics
  ``binary_auroc``); ``oos_fpr95``: the share of out-of-scope utterances accepted by the threshold that
  accepts 95 % of in-scope ones (from torchmetrics ``binary_roc``).

Scores are min-max rescaled to [0, 1] before torchmetrics sees them (it would apply a sigmoid to values
outside [0, 1], which saturates Mahalanobis scores of -500 into ties); the rescaling keeps their order.
"""

from __future__ import annotations

import torch
import torchmetrics
from torch import Tensor
from torchmetrics.functional.classification import binary_auroc, binary_roc
from torchmetrics.utilities import dim_zero_cat

__all__ = ["OOSMetrics"]


def _cat(state, dtype: torch.dtype) -> Tensor:
    """A ``cat`` state as one tensor (a list before syncing, a tensor after; empty on a rank without data)."""
    if isinstance(state, Tensor):
        return state
    return dim_zero_cat(state) if state else torch.zeros(0, dtype=dtype)


class OOSMetrics(torchmetrics.Metric):
    """In-scope accuracy, OOS recall/precision, AUROC and FPR@95 from per-utterance decisions and scores."""

    full_state_update = False
    is_differentiable = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        for name in ("in_total", "in_correct", "oos_total", "oos_hit", "flagged"):
            self.add_state(name, default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("scores", default=[], dist_reduce_fx="cat")
        self.add_state("in_scope", default=[], dist_reduce_fx="cat")

    def update(self, scores: Tensor, gold_oos: Tensor, pred_oos: Tensor, intent_correct: Tensor) -> None:
        """Per utterance: the OOS score (higher = in-scope), gold and predicted out-of-scope, intent right."""
        gold_oos = gold_oos.bool().reshape(-1)
        pred_oos = pred_oos.bool().reshape(-1)
        correct = intent_correct.bool().reshape(-1)
        self.in_total += int((~gold_oos).sum())
        self.in_correct += int((~gold_oos & ~pred_oos & correct).sum())
        self.oos_total += int(gold_oos.sum())
        self.oos_hit += int((gold_oos & pred_oos).sum())
        self.flagged += int(pred_oos.sum())
        self.scores.append(scores.detach().to(torch.float64).reshape(-1))
        self.in_scope.append((~gold_oos).long())

    def compute(self) -> dict[str, Tensor]:
        def ratio(a: Tensor, b: Tensor) -> Tensor:
            return torch.tensor(float(a) / float(b) if int(b) else 0.0, dtype=torch.float64)

        values = {
            "in_scope_acc": ratio(self.in_correct, self.in_total),
            "oos_recall": ratio(self.oos_hit, self.oos_total),
            "oos_precision": ratio(self.oos_hit, self.flagged),
        }
        scores = _cat(self.scores, torch.float64)
        target = _cat(self.in_scope, torch.long)
        nan = torch.tensor(float("nan"), dtype=torch.float64)
        if int(target.sum()) in (0, len(target)):
            values["oos_auroc"] = values["oos_fpr95"] = nan
            return values
        lo, hi = scores.min(), scores.max()
        scaled = (scores - lo) / (hi - lo) if hi > lo else torch.zeros_like(scores)
        values["oos_auroc"] = binary_auroc(scaled, target).to(torch.float64)
        fpr, tpr, _ = binary_roc(scaled, target)
        values["oos_fpr95"] = fpr[tpr >= 0.95].min().to(torch.float64)
        return values
