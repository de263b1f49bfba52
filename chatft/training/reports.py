"""The test report: per-intent and per-slot-type precision/recall/F1 (JSON + text), calibration (ECE before and
after temperature scaling, the out-of-scope decision), the intent confusion figure and the reliability diagram.

:class:`TestReport` is a callback that :class:`~chatft.training.module.IntentSlotModule` registers itself
(``configure_callbacks``), so every ``test`` writes ``test_report.json``, ``test_report.txt``,
``intent_confusion.png`` and ``reliability.png`` in the run's log folder, whatever built the trainer (the CLI, a
script, DDP). It reads the module's test metrics after the epoch: the intent confusion matrix (torchmetrics
``MulticlassConfusionMatrix``), :class:`~chatft.training.metrics.SpanF1`'s per-type counts and the calibration
metrics (:mod:`chatft.training.calibration_report`), all reduced across processes, so every number is exact
under DDP.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import lightning as L
import torch
from torch import Tensor

from chatft.core.tags import UNK
from chatft.training.calibration_report import calibration_report, save_reliability_png
from chatft.training.metrics import report_from_confusion

log = logging.getLogger(__name__)

__all__ = ["TestReport", "build_report", "format_report", "save_confusion_png", "write_report"]


class TestReport(L.Callback):
    """Write the test report in ``trainer.log_dir`` when ``test`` ends (rank 0 writes; every rank computes)."""

    __test__ = False  # not a pytest test class, despite its name

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Under DDP the report's reductions and trainer.log_dir are collectives: every rank takes part in
        # them (else rank 0 waits forever), then rank 0 writes.
        report, confmat = build_report(pl_module)
        log_dir = trainer.log_dir
        if trainer.is_global_zero and log_dir:
            write_report(Path(log_dir), report, confmat, pl_module.intent_vocab.labels)
        if trainer.is_global_zero and report["calibration"].get("ece_note"):
            print(report["calibration"]["ece_note"], flush=True)


def build_report(module) -> tuple[dict, Tensor]:
    """The report dict and the intent confusion matrix, from the module's test metrics (all ranks call it)."""
    metrics = module.metrics["test"]
    values = module.compute_metrics("test")
    confmat = metrics["confusion"].compute().cpu()
    report = {
        "metrics": {k: float(v) for k, v in values.items()},
        # <unk> is never predicted; its row is shown only if gold data carries it (a label unseen in train)
        "intents": [
            row
            for row in report_from_confusion(confmat, module.intent_vocab.labels)
            if row["label"] != UNK or row["support"]
        ],
    }
    if "slot" in metrics:
        report["slots"] = metrics["slot"].per_type()
    report["calibration"] = calibration_report(metrics, module.oos_state)
    return report, confmat


def write_report(folder: Path, report: dict, confmat: Tensor, labels) -> None:
    """``test_report.json``, ``test_report.txt``, ``intent_confusion.png`` and ``reliability.png`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "test_report.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    (folder / "test_report.txt").write_text(format_report(report), encoding="utf-8")
    try:
        save_confusion_png(confmat, labels, folder / "intent_confusion.png")
        save_reliability_png(report["calibration"], folder / "reliability.png")
    except ImportError:
        log.warning("matplotlib is not installed: no confusion-matrix or reliability picture written")
    log.info("test report written to %s", folder)


def format_report(report: dict) -> str:
    """Plain-text tables of the per-intent and per-slot-type report."""
    lines = ["metrics:"]
    lines += [f"  {k:28s} {v:.6f}" for k, v in report["metrics"].items()]
    for key, name in (("intents", "label"), ("slots", "type")):
        if key not in report:
            continue
        lines += ["", f"{key}:", f"  {'':40s} {'precision':>9s} {'recall':>9s} {'f1':>9s} {'support':>8s}"]
        for row in report[key]:
            lines.append(
                f"  {row[name]:40s} {row['precision']:9.6f} {row['recall']:9.6f} {row['f1']:9.6f} {row['support']:8d}"
            )
    return "\n".join(lines) + "\n"


def save_confusion_png(confmat: Tensor, labels, path: Path) -> None:
    """Intent confusion of the intents that occur (gold or predicted): colour = share of the gold intent's row,
    text = counts (non-zero cells only).

    Drawn with torchmetrics' ``MulticlassConfusionMatrix.plot`` on the row-normalised matrix. Its own cell text
    is switched off: it writes every cell, zeros included, at 15 pt, which is unreadable beyond ~10 intents
    (ATIS tests ~20, CLINC150 150), so the counts are written here, small and only where non-zero.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from torchmetrics.classification import MulticlassConfusionMatrix

    keep = ((confmat.sum(0) + confmat.sum(1)) > 0).nonzero().flatten().tolist()
    if len(keep) < 2:  # one intent only (a tiny test split): torchmetrics draws no 1x1 matrix
        keep = sorted({*keep, next(i for i in range(len(labels)) if i not in keep)})
    cm = confmat[keep][:, keep].to(torch.float64)
    share = cm / cm.sum(1, keepdim=True).clamp(min=1)
    names = [labels[i] for i in keep]
    size = max(5.0, 0.35 * len(names) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    MulticlassConfusionMatrix(len(names)).plot(val=share, ax=ax, add_text=False, labels=names, cmap="Blues")
    ax.images[0].set_clim(0.0, 1.0)
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7, rotation=0)
    ax.set_xlabel("predicted intent", fontsize=9)
    ax.set_ylabel("gold intent", fontsize=9)
    for i, j in (cm > 0).nonzero().tolist():
        color = "white" if share[i, j] > 0.5 else "black"
        ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=6, color=color)
    ax.set_title("Intent confusion (counts; colour = row share)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
