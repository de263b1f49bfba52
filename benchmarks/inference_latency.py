"""Inference speed of a checkpoint on this machine: PyTorch ``Predictor`` vs onnxruntime ``OnnxPredictor``.

    python benchmarks/inference_latency.py --ckpt runs/atis/lightning_logs/version_0/checkpoints/best-….ckpt

Measures, on the utterances of ``--text`` (default: ATIS test ``seq.in``, else the demo test split):

* single-utterance latency: ``predictor(text)`` one call at a time, ``--n`` calls after ``--warmup``;
  p50/p95/mean in milliseconds (tokenization, model, decoding and result assembly all included);
* batch throughput: ``predictor.batch(all texts, batch_size)`` in utterances per second (best of ``--repeats``;
  :func:`interleaved_throughput` is the steadier protocol for comparing models, used by ``compress.py``).

The ONNX model is exported to a temporary folder unless ``--onnx DIR`` names an export. Prints a Markdown table,
the machine and versions, and how often the two predictors agree (intents and tags); ``--json PATH`` also
writes the numbers. Trains nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DEFAULT_TEXTS = [REPO.parent / "shared/data/atis/test/seq.in", REPO / "chatft/resources/demo/test/seq.in"]


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def single_latency(predictor, texts: list[str], n: int, warmup: int) -> dict:
    """``predictor(text)`` one call at a time: p50/p95/mean milliseconds of ``n`` calls after ``warmup``."""
    for text in texts[:warmup]:
        predictor(text)
    latencies = []
    for i in range(n):
        text = texts[i % len(texts)]
        t0 = time.perf_counter()
        predictor(text)
        latencies.append((time.perf_counter() - t0) * 1000)
    return {
        "p50_ms": percentile(latencies, 0.50),
        "p95_ms": percentile(latencies, 0.95),
        "mean_ms": statistics.fmean(latencies),
    }


def batch_throughput(predictor, texts: list[str], batch_size: int, repeats: int) -> float:
    """Utterances per second of ``predictor.batch(texts)``, best of ``repeats`` runs after a warm-up."""
    predictor.batch(texts[: batch_size * 2], batch_size=batch_size)  # warm the batch path
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        predictor.batch(texts, batch_size=batch_size)
        best = min(best, time.perf_counter() - t0)
    return len(texts) / best


def interleaved_throughput(
    predictors: dict[str, object], texts: list[str], batch_size: int, repeats: int
) -> dict[str, float]:
    """Utterances per second of each predictor's ``batch(texts)``: the median of ``repeats`` runs taken
    round-robin (A B C A B C ...), after one warm-up each.

    On a shared VM the speed drifts by ~15 % over minutes; timing all repeats of one model, then all of the
    next, lets that drift land on one row and not the other, so ratios between rows moved by as much.
    Interleaved, every row sees the same drift; the median ignores a single disturbed run.
    """
    for predictor in predictors.values():
        predictor.batch(texts[: batch_size * 2], batch_size=batch_size)
    seconds: dict[str, list[float]] = {name: [] for name in predictors}
    for _ in range(repeats):
        for name, predictor in predictors.items():
            t0 = time.perf_counter()
            predictor.batch(texts, batch_size=batch_size)
            seconds[name].append(time.perf_counter() - t0)
    return {name: len(texts) / statistics.median(s) for name, s in seconds.items()}


def measure(predictor, texts: list[str], n: int, warmup: int, batch_size: int, repeats: int) -> dict:
    return {
        **single_latency(predictor, texts, n, warmup),
        "throughput_utt_s": batch_throughput(predictor, texts, batch_size, repeats),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt", required=True, help="checkpoint written by fit")
    parser.add_argument(
        "--onnx", default=None, help="export folder (default: export --ckpt to a temp folder)"
    )
    parser.add_argument("--text", default=None, help="one utterance per line (default: ATIS test seq.in)")
    parser.add_argument("--n", type=int, default=200, help="single-utterance calls to time")
    parser.add_argument("--warmup", type=int, default=20, help="untimed calls first")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size of the throughput run")
    parser.add_argument("--repeats", type=int, default=3, help="throughput runs (the best is reported)")
    parser.add_argument(
        "--threads", type=int, default=None, help="intra-op threads for torch and onnxruntime"
    )
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args(argv)

    import onnxruntime
    import torch

    from chatft.core.text import read_utterances
    from chatft.serving.export import export_onnx
    from chatft.serving.onnx_predictor import OnnxPredictor
    from chatft.serving.predictor import Predictor

    text_path = Path(args.text) if args.text else next(p for p in DEFAULT_TEXTS if p.is_file())
    texts = [t for t in read_utterances(text_path) if t.strip()]
    if args.threads:
        torch.set_num_threads(args.threads)
    predictor = Predictor.from_checkpoint(args.ckpt, device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        onnx_dir = Path(args.onnx) if args.onnx else export_onnx(args.ckpt, Path(tmp) / "onnx")
        onnx_predictor = OnnxPredictor(onnx_dir, threads=args.threads)
        results = {}
        for name, p in (("PyTorch Predictor", predictor), ("OnnxPredictor", onnx_predictor)):
            with torch.inference_mode():
                results[name] = measure(p, texts, args.n, args.warmup, args.batch_size, args.repeats)
        a, b = predictor.batch(texts), onnx_predictor.batch(texts)
    agree_intent = sum(x.intent == y.intent for x, y in zip(a, b, strict=True)) / len(texts)
    agree_tags = sum(x.tags == y.tags for x, y in zip(a, b, strict=True)) / len(texts)
    machine = {
        "cpu": cpu_name(),
        "logical_cpus_usable": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
    }
    report = {
        "checkpoint": str(args.ckpt),
        "encoder": predictor.loaded.hparams.get("encoder"),
        "use_crf": bool(predictor.loaded.hparams.get("use_crf")),
        "max_length": predictor.max_length,
        "texts": str(text_path),
        "n_texts": len(texts),
        "n_single": args.n,
        "batch_size": args.batch_size,
        "results": results,
        "agreement": {"intent": agree_intent, "tags": agree_tags},
        "machine": machine,
    }
    print(f"{len(texts)} utterances from {text_path}; {args.n} single calls; batch size {args.batch_size}")
    print(f"machine: {machine['cpu']}, {machine['logical_cpus_usable']} logical CPUs usable, torch threads "
          f"{machine['torch_threads']}, torch {machine['torch']}, onnxruntime {machine['onnxruntime']}")  # fmt: skip
    print()
    print("| predictor | p50 latency (ms) | p95 latency (ms) | batch throughput (utt/s) |")
    print("| --- | ---: | ---: | ---: |")
    for name, r in results.items():
        print(f"| {name} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['throughput_utt_s']:.0f} |")
    print()
    print(f"ONNX vs PyTorch agreement: intents {agree_intent:.4f}, tag sequences {agree_tags:.4f}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return report


if __name__ == "__main__":
    main()
