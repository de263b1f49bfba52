"""Which ``quantize_dynamic`` options ``export --quantize int8`` uses: each variant scored on dev and timed.

    python benchmarks/quantize_options.py --ckpt /work/runs/atis-ref-calibrated/best-epoch10-step1540-calibrated.ckpt \\
        --data /work/shared/data/atis --out /work/runs/compress/qopts

Exports the checkpoint once in fp32, then writes one folder per variant (same labels, tokenizer, decoding;
only ``model.onnx`` differs) and scores each with :class:`~chatft.serving.onnx_predictor.OnnxPredictor` on
the **dev** split (the choice is made on dev; test is never read): file size, intent accuracy, slot F1,
sentence accuracy, batch throughput (batch 32, 2 threads) and p50 single-utterance latency (1 thread).

Variants: ``default`` (all op types quantize_dynamic supports: MatMul and Gather, per-tensor weights),
``per_channel`` (one scale per output channel), ``reduce_range`` (7-bit weights, for CPUs without VNNI), ``uint8_weights`` (u8 x u8
products, which onnxruntime documents as free of the u8 x s8 saturation of x86 CPUs without VNNI),
``matmul_only`` (embeddings left in fp32) and ``fused`` (onnxruntime's BERT optimizer fuses attention,
LayerNorm and GELU first, so attention quantizes as one ``QAttention`` op).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def fused(fp32: Path, out: Path, **options) -> dict:
    import onnx
    from onnxruntime.transformers import optimizer

    from chatft.serving.export import quantize_int8

    config = json.loads((fp32.parent / "encoder_config.json").read_text())
    model = optimizer.optimize_model(
        str(fp32),
        model_type="bert",
        num_heads=config["num_attention_heads"],
        hidden_size=config["hidden_size"],
        opt_level=0,
    )
    tmp = out.with_suffix(".fused.onnx")
    model.save_model_to_file(str(tmp))
    try:
        return quantize_int8(tmp, out, extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT}, **options)
    finally:
        tmp.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--variants", nargs="+", help="score only these variants (default: all)")
    parser.add_argument("--n", type=int, default=200, help="single-utterance calls timed per variant")
    args = parser.parse_args(argv)

    import torch
    from compress import score
    from inference_latency import batch_throughput, single_latency

    from chatft.core.formats import read_split
    from chatft.model.inference import load_for_inference
    from chatft.serving.export import export_onnx, quantize_int8
    from chatft.serving.onnx_predictor import OnnxPredictor

    torch.set_num_threads(2)
    examples = read_split(args.data, "dev")
    texts = [" ".join(e.words) for e in examples]
    base = export_onnx(args.ckpt, args.out / "fp32")
    encoder = load_for_inference(args.ckpt).model.encoder.config
    (base / "encoder_config.json").write_text(json.dumps(encoder.to_dict()))
    variants = {
        "fp32": None,
        "default": lambda src, dst: quantize_int8(src, dst),
        "per_channel": lambda src, dst: quantize_int8(src, dst, per_channel=True),
        "reduce_range": lambda src, dst: quantize_int8(src, dst, reduce_range=True),
        "uint8_weights": lambda src, dst: quantize_int8(src, dst, weight_type="uint8"),
        "matmul_only": lambda src, dst: quantize_int8(src, dst, op_types_to_quantize=["MatMul"]),
        "fused": fused,
    }
    print(
        "| variant | file (MB) | dev intent acc | dev slot F1 | dev sent acc | p50 1 thread (ms) | utt/s 2 threads |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    results = {}
    for name, make in variants.items():
        if args.variants and name not in args.variants:
            continue
        folder = base if make is None else args.out / name
        if make is not None:
            shutil.rmtree(folder, ignore_errors=True)
            shutil.copytree(base, folder)
            (folder / "model.onnx").unlink()
            make(base / "model.onnx", folder / "model.onnx")
        metrics = score(OnnxPredictor(folder, threads=2).batch(texts), examples)
        p50 = single_latency(OnnxPredictor(folder, threads=1), texts, args.n, 20)["p50_ms"]
        rate = batch_throughput(OnnxPredictor(folder, threads=2), texts, 32, 3)
        size = (folder / "model.onnx").stat().st_size / 1e6
        results[name] = {"file_mb": size, **metrics, "p50_ms": p50, "throughput_utt_s": rate}
        print(
            f"| {name} | {size:.1f} | {100 * metrics['intent_acc']:.2f} | {100 * metrics['slot_f1']:.2f} "
            f"| {100 * metrics['sent_acc']:.2f} | {p50:.2f} | {rate:.0f} |",
            flush=True,
        )
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
