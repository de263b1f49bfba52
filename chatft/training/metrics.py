"""Evaluation metrics that agree exactly with the numbers people in the field report.

Slot filling is scored the way ATIS/SNIPS papers score it: entity-level micro F1 over the ORIGINAL WORDS, with
tags compared as STRINGS and chunked by conlleval's rules (``seqeval``'s default, non-strict mode; the chunker
is :func:`chatft.core.tags.bio_chunks`, the one predictions use too). Scoring on
strings rather than label ids matters: gold tags are read straight from the data file, so a gold tag the model
never saw in training still counts as a missed entity instead of silently vanishing from the denominator.

Every metric keeps only integer counts with ``dist_reduce_fx="sum"``, so DDP reduction is exact (no averaging
of per-rank ratios) and results do not depend on how sentences are split across ranks or batches.

``seqeval`` is deliberately not imported here: it is a test-only dependency, and the tests check that these
numbers equal its numbers exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
import torchmetrics
from torch import Tensor

from chatft.compat.torchmetrics_hooks import synced_states
from chatft.core.tags import bio_chunks, entity_types

__all__ = ["OTHER_TYPE", "SentenceAccuracy", "SpanF1", "report_from_confusion"]

#: Row name in :meth:`SpanF1.per_type` for entity types missing from ``entity_types`` (e.g. a gold type never
#: seen in training, or the type ``"unk>"`` that conlleval derives from a predicted ``"<unk>"`` tag).
OTHER_TYPE = "<other>"


def _prf(tp: float, n_pred: float, n_gold: float) -> tuple[float, float, float]:
    """Precision, recall, F1 with seqeval's arithmetic (float64, 0.0 on zero division, F1 from P and R)."""
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gold if n_gold else 0.0
    denom = precision + recall
    f1 = 2 * precision * recall / denom if denom else 0.0
    return precision, recall, f1


def _float_tensor(value: float, device: torch.device) -> Tensor:
    # float64 so the value is bit-identical to seqeval's numpy float64; MPS has no float64.
    dtype = torch.float32 if device.type == "mps" else torch.float64
    return torch.tensor(value, dtype=dtype, device=device)


class SpanF1(torchmetrics.Metric):
    """Entity-level micro precision / recall / F1 over word tag strings, equal to seqeval's default mode.

    ``entity_types`` only decides which types get their own row in :meth:`per_type`; it never filters what is
    scored: spans of any other type (a gold type unseen in training, ``<unk>`` predictions) are counted in the
    micro numbers and in the last, ``<other>``, slot of the per-type states.

    Sentences are chunked independently. For tags made of ``O``/``B-``/``I-``/``E-``/``S-`` (and tags such as
    ``<unk>`` whose text after the first char is a type) this is exactly seqeval on the whole corpus. For
    pathological tags (``.``-prefixed, or a single foreign char like ``"X"``) seqeval's chunker can leak a span
    across sentence boundaries, which depends on sentence order; here each sentence is scored as seqeval scores
    it alone, so the result stays order- and sharding-invariant.
    """

    full_state_update = False
    is_differentiable = False
    higher_is_better = True

    tp: Tensor
    n_pred: Tensor
    n_gold: Tensor
    type_tp: Tensor
    type_pred: Tensor
    type_gold: Tensor

    def __init__(self, entity_types: Sequence[str], **kwargs) -> None:
        super().__init__(**kwargs)
        if isinstance(entity_types, str):
            raise TypeError("entity_types must be a sequence of type names, not a single string")
        self.entity_types: list[str] = list(dict.fromkeys(entity_types))  # dedupe, keep order
        if OTHER_TYPE in self.entity_types:
            raise ValueError(f"{OTHER_TYPE!r} is reserved for types outside entity_types")
        self._type_index = {t: i for i, t in enumerate(self.entity_types)}
        k = len(self.entity_types) + 1
        for name in ("tp", "n_pred", "n_gold"):
            self.add_state(name, default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        for name in ("type_tp", "type_pred", "type_gold"):
            self.add_state(name, default=torch.zeros(k, dtype=torch.long), dist_reduce_fx="sum")

    @classmethod
    def from_tags(cls, tags: Iterable[str], **kwargs) -> SpanF1:
        """Build from a BIO tag vocabulary, e.g. the model's label list."""
        return cls(entity_types(tags), **kwargs)

    def update(self, preds: list[list[str]], target: list[list[str]]) -> None:
        """Count spans of a batch of sentences (predicted and gold tag strings, one per original word)."""
        if len(preds) != len(target):
            raise ValueError(f"got {len(preds)} predicted sentences but {len(target)} gold sentences")
        other = len(self.entity_types)
        k = other + 1
        type_tp, type_pred, type_gold = [0] * k, [0] * k, [0] * k
        for i, (pred, gold) in enumerate(zip(preds, target, strict=True)):
            if isinstance(pred, str) or isinstance(gold, str):
                raise TypeError(f"sentence {i}: expected a list of tag strings, got a single string")
            if len(pred) != len(gold):
                raise ValueError(
                    f"sentence {i} of the batch: {len(pred)} predicted tags but {len(gold)} gold tags"
                )
            pred_spans = bio_chunks(pred)
            gold_spans = bio_chunks(gold)
            # Spans of one sentence end at distinct positions, so lists have no duplicates: set ops are exact.
            for t, _, _ in pred_spans:
                type_pred[self._type_index.get(t, other)] += 1
            for t, _, _ in gold_spans:
                type_gold[self._type_index.get(t, other)] += 1
            for t, _, _ in set(pred_spans).intersection(gold_spans):
                type_tp[self._type_index.get(t, other)] += 1
        device = self.type_tp.device
        self.type_tp += torch.tensor(type_tp, dtype=torch.long, device=device)
        self.type_pred += torch.tensor(type_pred, dtype=torch.long, device=device)
        self.type_gold += torch.tensor(type_gold, dtype=torch.long, device=device)
        self.tp += sum(type_tp)
        self.n_pred += sum(type_pred)
        self.n_gold += sum(type_gold)

    def compute(self) -> dict[str, Tensor]:
        """Micro ``{"precision", "recall", "f1"}``; 0.0 where a denominator is 0, as seqeval's default does."""
        p, r, f = _prf(int(self.tp.item()), int(self.n_pred.item()), int(self.n_gold.item()))
        device = self.tp.device
        return {
            "precision": _float_tensor(p, device),
            "recall": _float_tensor(r, device),
            "f1": _float_tensor(f, device),
        }

    def per_type(self, include_empty: bool = False) -> list[dict]:
        """Per-type rows ``{"type","precision","recall","f1","support"}``, as seqeval's classification_report.

        Types without any gold or predicted span are left out unless ``include_empty`` (seqeval lists only
        types it saw); ``<other>`` pools all types outside ``entity_types`` and appears only if it has counts.
        Under DDP this syncs states, so every rank must call it (like ``compute``).
        """
        with synced_states(self):
            tps = self.type_tp.tolist()
            preds = self.type_pred.tolist()
            golds = self.type_gold.tolist()
        rows = []
        names = [*self.entity_types, OTHER_TYPE]
        for j, (name, tp, n_pred, n_gold) in enumerate(zip(names, tps, preds, golds, strict=True)):
            is_other = j == len(self.entity_types)
            if not (n_pred or n_gold) and (is_other or not include_empty):
                continue
            p, r, f = _prf(tp, n_pred, n_gold)
            rows.append({"type": name, "precision": p, "recall": r, "f1": f, "support": n_gold})
        return rows


class SentenceAccuracy(torchmetrics.Metric):
    """Frame (sentence) accuracy: the intent is right AND every word's tag is right.

    Reported by joint intent/slot papers because a dialogue system acts on the whole frame; one wrong slot
    makes the frame wrong even when intent accuracy and slot F1 look good.
    """

    full_state_update = False
    is_differentiable = False
    higher_is_better = True

    correct: Tensor
    total: Tensor

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("correct", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, intent_correct: Tensor, pred_tags: list[list[str]], gold_tags: list[list[str]]) -> None:
        """``intent_correct``: bool ``[B]``; tags: per-sentence word tag strings."""
        intent_ok = torch.as_tensor(intent_correct).reshape(-1).bool().tolist()
        if not (len(intent_ok) == len(pred_tags) == len(gold_tags)):
            raise ValueError(
                f"batch sizes differ: intent_correct {len(intent_ok)}, pred_tags {len(pred_tags)}, "
                f"gold_tags {len(gold_tags)}"
            )
        correct = 0
        for i, (ok, pred, gold) in enumerate(zip(intent_ok, pred_tags, gold_tags, strict=True)):
            if len(pred) != len(gold):
                raise ValueError(
                    f"sentence {i} of the batch: {len(pred)} predicted tags but {len(gold)} gold tags"
                )
            correct += bool(ok and list(pred) == list(gold))
        self.correct += correct
        self.total += len(intent_ok)

    def compute(self) -> Tensor:
        total = int(self.total.item())
        return _float_tensor(int(self.correct.item()) / total if total else 0.0, self.correct.device)


def report_from_confusion(confmat: Tensor, labels: Sequence[str]) -> list[dict]:
    """Per-class rows ``{"label","precision","recall","f1","support"}`` from a confusion matrix.

    Rows of ``confmat`` are gold classes and columns predictions (torchmetrics ``MulticlassConfusionMatrix``
    convention), so recall reads along a row, precision down a column, and support is the row sum. Built from the
    (already DDP-summed) matrix rather than from separately averaged metrics so every number is exact.
    Zero denominators give 0.0, as sklearn/seqeval do by default.
    """
    cm = torch.as_tensor(confmat).detach().to("cpu", torch.float64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"confmat must be square [C, C], got shape {tuple(cm.shape)}")
    if cm.shape[0] != len(labels):
        raise ValueError(f"confmat has {cm.shape[0]} classes but {len(labels)} labels were given")
    tp = cm.diagonal().tolist()
    gold = cm.sum(dim=1).tolist()
    pred = cm.sum(dim=0).tolist()
    rows = []
    for label, t, g, p_ in zip(labels, tp, gold, pred, strict=True):
        precision, recall, f1 = _prf(t, p_, g)
        rows.append(
            {"label": label, "precision": precision, "recall": recall, "f1": f1, "support": int(round(g))}
        )
    return rows
