"""Smaller and faster models on one table: a teacher, its int8 export, and distilled shallower students.

    python benchmarks/compress.py --data ../shared/data/atis --out runs/compress/bench --repeats 7 \\
        --teacher runs/atis/lightning_logs/version_0/checkpoints/best-epoch10-step1540.ckpt \\
        --student "student, 3 layers, distilled=runs/compress/s3/lightning_logs/version_0/checkpoints/best-epoch11-step1680.ckpt"

(docs/results.md, "Smaller and faster models", has the full sequence: the student fits, then this with four students.)

Rows: the teacher run by the PyTorch ``Predictor`` (fp32), the teacher exported to ONNX fp32 and int8
(``python -m chatft export [--quantize int8]``), then each ``--student`` exported fp32 and int8. Columns:
parameters, file size (the checkpoint for the PyTorch row, ``model.onnx`` otherwise), the test split's
intent accuracy / slot F1 / sentence accuracy (scored with chatft's own metrics on the predictors'
outputs, so they include tokenization, numpy decoding and the checkpoint's calibration exactly as served),
single-utterance p50 latency with 1 intra-op thread and batch throughput (batch 32) with 2 threads, both
timed with the helpers of ``benchmarks/inference_latency.py``. Throughput is measured last, for all rows
together: ``--repeats`` passes over the test split taken round-robin over the rows (A B C A B C ...), the
median reported, so the VM's drift (~15 % over minutes) hits every row alike. Prints one Markdown table,
the machine, and the acceptance ratios of issue 16; ``--json`` also writes the numbers. Trains nothing.

Run it under the CPU lock on an idle machine: the timings are only comparable within one run.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def score(predictions, examples) -> dict[str, float]:
    """Test metrics of predictions, with chatft's metric objects (entity F1 = seqeval's, sentence accuracy).

    An utterance rejected as out of scope carries the fallback intent, which is never a gold intent, so it
    counts as wrong, as in ``python -m chatft test``.
    """
    import torch

    from chatft.training.metrics import SentenceAccuracy, SpanF1

    gold_tags = [list(e.tags or ()) for e in examples]
    pred_tags = [list(p.tags) for p in predictions]
    correct = torch.tensor([p.intent == e.intent for p, e in zip(predictions, examples, strict=True)])
    spans = SpanF1.from_tags(sorted({t for tags in gold_tags for t in tags}))
    spans.update(pred_tags, gold_tags)
    sent = SentenceAccuracy()
    sent.update(correct, pred_tags, gold_tags)
    return {
        "intent_acc": float(correct.float().mean()),
        "slot_f1": float(spans.compute()["f1"]),
        "sent_acc": float(sent.compute()),
    }


def count_parameters(ckpt: str | Path) -> tuple[int, int]:
    """(parameters of the model, encoder layers) of a checkpoint, read memory-mapped."""
    from chatft.model.checkpoint import load_checkpoint

    ckpt_data = load_checkpoint(ckpt, mmap=True)
    state = ckpt_data["state_dict"]
    n = sum(v.numel() for k, v in state.items() if k.startswith("model.") and v.is_floating_point())
    config = ckpt_data.get("chatft_inference", {}).get("encoder_config", {})
    return n, int(config.get("num_hidden_layers", 0))


def latency(make_predictor, texts: list[str], n: int, warmup: int) -> dict[str, float]:
    """p50 single-utterance latency with 1 thread (inference_latency's helper)."""
    from inference_latency import single_latency

    return {"p50_ms": single_latency(make_predictor(1), texts, n, warmup)["p50_ms"]}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", required=True, help="the 6-layer checkpoint (fit)")
    parser.add_argument(
        "--student",
        action="append",
        default=[],
        help="a student checkpoint, or LABEL=CHECKPOINT to name its rows (repeatable)",
    )
    parser.add_argument("--data", required=True, help="data folder with a test split")
    parser.add_argument("--out", type=Path, required=True, help="folder for the exports")
    parser.add_argument("--n", type=int, default=300, help="single-utterance calls timed per row")
    parser.add_argument("--warmup", type=int, default=30, help="untimed single calls first")
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="throughput runs per row, rows interleaved (the median is reported)",
    )
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    args = parser.parse_args(argv)

    import onnxruntime
    import torch
    from inference_latency import cpu_name, interleaved_throughput

    from chatft.core.formats import read_split
    from chatft.serving.export import export_onnx
    from chatft.serving.onnx_predictor import OnnxPredictor
    from chatft.serving.predictor import Predictor

    examples = read_split(args.data, "test")
    texts = [" ".join(e.words) for e in examples]
    rows = []
    two_threads = []  # each row's 2-thread predictor, for the interleaved throughput runs at the end

    def add(name: str, backend: str, ckpt: str, size_path: Path, make_predictor) -> None:
        params, layers = count_parameters(ckpt)
        torch.set_num_threads(2)
        predictor = make_predictor(2)
        predictions = predictor.batch(texts, batch_size=32)
        row = {
            "model": name,
            "backend": backend,
            "layers": layers,
            "parameters": params,
            "file_mb": size_path.stat().st_size / 1e6,
            **score(predictions, examples),
            **latency(make_predictor, texts, args.n, args.warmup),
            "checkpoint": str(ckpt),
        }
        rows.append(row)
        two_threads.append(predictor)
        print(json.dumps(row), flush=True)

    def torch_predictor(ckpt: str):
        loaded = Predictor.from_checkpoint(ckpt, device="cpu")

        def make(threads: int):
            torch.set_num_threads(threads)
            return loaded

        return make

    def onnx_predictor(folder: Path):
        return lambda threads: OnnxPredictor(folder, threads=threads)

    models = [("teacher", args.teacher)]
    for given in args.student:  # "LABEL=CKPT" or CKPT
        label, _, ckpt = given.rpartition("=") if "=" in given else ("", "", given)
        models.append((label or f"student, {count_parameters(ckpt)[1]} layers", ckpt))
    with torch.inference_mode():
        add("teacher", "PyTorch fp32", args.teacher, Path(args.teacher), torch_predictor(args.teacher))
        for name, ckpt in models:
            for quantize in (None, "int8"):
                slug = "".join(c if c.isalnum() else "-" for c in name).strip("-")
                folder = args.out / f"{slug}-{quantize or 'fp32'}"
                export_onnx(ckpt, folder, quantize=quantize)
                backend = f"ONNX {quantize or 'fp32'}"
                add(name, backend, ckpt, folder / "model.onnx", onnx_predictor(folder))
        torch.set_num_threads(2)
        speeds = interleaved_throughput(dict(enumerate(two_threads)), texts, 32, args.repeats)
        for i, row in enumerate(rows):
            row["throughput_utt_s"] = speeds[i]
            print(
                json.dumps({"model": row["model"], "backend": row["backend"], "throughput_utt_s": speeds[i]})
            )

    machine = {
        "cpu": cpu_name(),
        "logical_cpus": len(__import__("os").sched_getaffinity(0)),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
    }
    print()
    print(f"ATIS test ({len(texts)} utterances); machine: {machine['cpu']}, {machine['logical_cpus']} logical "
          f"CPUs, torch {machine['torch']}, onnxruntime {machine['onnxruntime']}")  # fmt: skip
    print()
    print(table(rows))
    report = {"rows": rows, "machine": machine, "acceptance": acceptance(rows)}
    print(json.dumps(report["acceptance"], indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return report


def table(rows: list[dict]) -> str:
    lines = [
        "| model | backend | layers | parameters | file (MB) | intent acc | slot F1 | sent acc "
        "| p50 latency, 1 thread (ms) | throughput, 2 threads (utt/s) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['backend']} | {r['layers']} | {r['parameters'] / 1e6:.1f} M | {r['file_mb']:.1f} "
            f"| {100 * r['intent_acc']:.2f} | {100 * r['slot_f1']:.2f} | {100 * r['sent_acc']:.2f} "
            f"| {r['p50_ms']:.1f} | {r['throughput_utt_s']:.0f} |"
        )
    return "\n".join(lines)


def acceptance(rows: list[dict]) -> dict:
    """Issue 16's ratios: int8 vs fp32 ONNX of the teacher; each student's fp32 ONNX vs the teacher's."""
    by = {(r["model"], r["backend"]): r for r in rows}
    fp32, int8 = by[("teacher", "ONNX fp32")], by[("teacher", "ONNX int8")]
    keys = ("intent_acc", "slot_f1", "sent_acc")
    out = {
        "teacher int8 vs fp32": {
            **{f"{k} delta (points)": round(100 * (int8[k] - fp32[k]), 2) for k in keys},
            "throughput ratio": round(int8["throughput_utt_s"] / fp32["throughput_utt_s"], 2),
            "file ratio": round(int8["file_mb"] / fp32["file_mb"], 3),
        }
    }
    for (model, backend), r in by.items():
        if model.startswith("student") and backend == "ONNX fp32":
            out[f"{model}: ONNX fp32 vs teacher ONNX fp32"] = {
                **{f"{k} delta (points)": round(100 * (r[k] - fp32[k]), 2) for k in keys},
                "throughput ratio": round(r["throughput_utt_s"] / fp32["throughput_utt_s"], 2),
            }
    return out


if __name__ == "__main__":
    main()
