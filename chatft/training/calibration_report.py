"""The calibration part of the test report: ECE before/after temperature scaling and a reliability diagram.

The confidences and hits come from the two torchmetrics ``MulticlassCalibrationError`` objects of the test
metrics (15 bins, L1), gathered over processes, so the picture and the logged ``test/ece_*`` agree and are
exact under DDP. ECE is measured on in-scope utterances (out-of-scope ones have no intent to be confident in).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import nn

from chatft.core.oos import OOSState, ece_note, expected_calibration_error, reliability_bins

N_BINS = 15


def _gathered(metric) -> tuple[np.ndarray, np.ndarray]:
    """(confidences, hits) of a calibration metric, synced across processes (every rank must call this)."""
    from torchmetrics.utilities import dim_zero_cat

    from chatft.compat.torchmetrics_hooks import calibration_states, synced_states

    with synced_states(metric):
        # A list before syncing (empty on a rank without data), one tensor after.
        conf, hits = calibration_states(metric)
        if isinstance(conf, list):
            if not conf:
                return np.zeros(0), np.zeros(0)
            conf, hits = dim_zero_cat(conf), dim_zero_cat(hits)
        return conf.double().cpu().numpy(), hits.double().cpu().numpy()


def sorted_ece(conf: np.ndarray, hits: np.ndarray) -> float:
    """ECE (15 bins, L1) in float64 over gathered values taken in sorted order, so the number does not depend on
    the order the ranks' values arrive in (torchmetrics sums in arrival order). The logged ``test/ece_*`` and
    the report's both come from here, so they are the same number."""
    order = np.lexsort((hits, conf))
    return expected_calibration_error(conf[order], hits[order], N_BINS)


def ece_values(metrics: nn.ModuleDict) -> dict[str, float]:
    """``ece_uncalibrated``, ``ece_calibrated`` and ``ece_n`` (the in-scope utterances they were measured on);
    both ECEs are NaN below :data:`~chatft.core.oos.MIN_ECE_SAMPLES` utterances (12 right answers would read
    as a perfect 0.000000). Every rank must call this (each metric is gathered once)."""
    out: dict[str, float] = {}
    n = 0
    for key in ("ece_uncalibrated", "ece_calibrated"):
        conf, hits = _gathered(metrics[key])
        n = len(conf)
        out[key] = sorted_ece(conf, hits) if ece_note(n) is None else float("nan")
    out["ece_n"] = float(n)
    return out


def calibration_report(metrics: nn.ModuleDict, state: OOSState) -> dict:
    """Temperature, ECE before/after (with their sample size; see :func:`ece_values`) and the reliability bins
    of both; the OOS decision and its dev table, and the notes of how they were set."""
    out: dict = {"temperature": float(state.temperature)}
    for name in ("uncalibrated", "calibrated"):
        key = f"ece_{name}"
        if key not in metrics:
            continue
        conf, hits = _gathered(metrics[key])
        mean_conf, acc, count = reliability_bins(conf, hits, N_BINS)
        note = ece_note(len(conf))
        out[key] = sorted_ece(conf, hits) if note is None else None
        out["ece_n"] = len(conf)
        if note is not None:
            out["ece_note"] = note
        out[f"bins_{name}"] = {
            "confidence": mean_conf.tolist(),
            "accuracy": acc.tolist(),
            "count": count.astype(int).tolist(),
        }
    out["oos"] = {
        "mode": state.mode,
        "method": state.method,
        "threshold": state.threshold,
        "fallback_intent": state.fallback_intent,
        "ambiguity": state.ambiguity,
        "decision": state.describe(),
        "notes": list(state.notes),
        "dev": state.dev,
    }
    return out


def save_reliability_png(report: dict, path: Path) -> None:
    """Reliability diagram: accuracy per confidence bin before and after temperature scaling."""
    if "bins_calibrated" not in report:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 4.5), sharey=True)
    width = 1.0 / N_BINS
    centres = (np.arange(N_BINS + 1) + 0.5) * width
    for ax, name, title in (
        (axes[0], "uncalibrated", "before (T = 1)"),
        (axes[1], "calibrated", f"after (T = {report['temperature']:.2f})"),
    ):
        bins = report[f"bins_{name}"]
        count = np.asarray(bins["count"])
        acc = np.asarray(bins["accuracy"])
        keep = count > 0
        ax.bar(centres[keep], acc[keep], width=width, edgecolor="black", label="accuracy")
        ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
        ax.set_xlim(0, 1 + width)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence")
        ece = report[f"ece_{name}"]
        shown = f"ECE {ece:.4f}" if ece is not None else f"{report['ece_n']} utterances: no ECE"
        ax.set_title(f"{title}: {shown}")
    axes[0].set_ylabel("accuracy")
    axes[0].legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
