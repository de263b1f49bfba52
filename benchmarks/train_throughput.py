"""Training throughput of chatft's step on ATIS: fixed padding vs dynamic padding vs length buckets.

    python benchmarks/train_throughput.py --data ../shared/data/atis --steps 40 --repeats 3

Each mode trains ``--steps`` optimizer steps through the real Lightning Trainer + IntentSlotModule, in its
own subprocess (so peak memory is per mode), after ``--warmup`` untimed steps. Modes:

* ``fixed50``: every utterance padded to 50 tokens, random batches (JointBERT's way);
* ``dynamic``: padded to the longest in the batch, random batches;
* ``bucketed``: padded to the longest in the batch, batches of similar lengths (chatft's default);
* ``bucketed-foreach`` (optional, ``--modes``): bucketed with the foreach AdamW chatft used before it
  switched to fused AdamW (and, until 2026-12-04, for clipped ``bf16-mixed`` runs).

``--precision bf16-mixed`` runs every mode in bfloat16 autocast (Lightning's precision plugin), to compare
with the default fp32 on CPUs that have bf16 instructions (AVX-512 BF16, AMX):

    python benchmarks/train_throughput.py --encoder all-mpnet-base-v2 --modes bucketed --precision bf16-mixed

``--gradient-clip-val 1.0`` clips as ``configs/atis.yaml`` does.

Prints utterances/s, real (non-pad) tokens/s, achieved training FLOP/s (6 x non-embedding parameters per
real token; attention's seq^2 term left out, so this under-counts slightly) against a dense fp32 matmul
measured in the same run, and peak RSS. The machine is shared and noisy: look at the ratios, medians of
``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path


def matmul_gflops(n: int = 1024, seconds: float = 3.0) -> float:
    """Dense fp32 matmul rate of this process's torch threads (GFLOP/s)."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
    return 2 * n**3 * count / (time.perf_counter() - start) / 1e9


def run_mode(
    mode: str,
    data: str,
    encoder: str,
    steps: int,
    warmup: int,
    batch_size: int,
    seed: int,
    precision: str = "32-true",
    gradient_clip_val: float | None = None,
) -> dict:
    """Train ``warmup + steps`` steps in this process and time the last ``steps``."""
    import lightning as L
    import torch

    from chatft.model.batching import Collator
    from chatft.training.datamodule import IntentSlotDataModule
    from chatft.training.module import IntentSlotModule

    class PadTo(Collator):
        def __init__(self, pad_id: int, length: int) -> None:
            super().__init__(pad_id)
            self.length = length

        def __call__(self, features):
            batch = super().__call__(features)
            pad = self.length - batch["input_ids"].size(1)
            if pad > 0:
                batch["input_ids"] = torch.nn.functional.pad(batch["input_ids"], (0, pad), value=self.pad_id)
                batch["attention_mask"] = torch.nn.functional.pad(batch["attention_mask"], (0, pad))
            return batch

    class Timer(L.Callback):
        def __init__(self) -> None:
            self.t0 = None
            self.utts = self.tokens = self.padded = 0

        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            if trainer.global_step == warmup and self.t0 is None:
                self.t0 = time.perf_counter()
            if self.t0 is not None:
                self.utts += batch["input_ids"].size(0)
                self.tokens += int(batch["attention_mask"].sum())
                self.padded += batch["input_ids"].numel()

        def on_train_end(self, trainer, module):
            self.seconds = time.perf_counter() - self.t0

    if mode.endswith("-foreach"):  # the optimizer chatft used before fused AdamW, for comparison
        import chatft.training.optimizer

        chatft.training.optimizer.adamw = lambda params, lr, fused=True: torch.optim.AdamW(
            params, lr=lr, foreach=True
        )
    L.seed_everything(seed, verbose=False)
    dm = IntentSlotDataModule(
        data,
        batch_size=batch_size,
        max_length=64,
        tokenizer=encoder,
        bucket_by_length=mode.startswith("bucketed"),
        seed=seed,
    )
    if mode == "fixed50":
        original = dm._loader

        def loader(split, *args):
            dl = original(split, *args)
            dl.collate_fn = PadTo(dm.tokenizer.pad_token_id, 50)
            return dl

        dm._loader = loader
    model = IntentSlotModule(encoder=encoder, intent_labels=dm.intent_labels, slot_labels=dm.slot_labels)
    timer = Timer()
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=warmup + steps,
        precision=precision,
        gradient_clip_val=gradient_clip_val,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=[timer],
        use_distributed_sampler=False,
    )
    trainer.fit(model, datamodule=dm)
    embed = sum(p.numel() for n, p in model.model.encoder.named_parameters() if "embeddings" in n)
    non_embedding = sum(p.numel() for p in model.model.parameters()) - embed
    flops = 6 * non_embedding * timer.tokens
    return {
        "mode": mode,
        "precision": precision,
        "utt_per_s": timer.utts / timer.seconds,
        "tokens_per_s": timer.tokens / timer.seconds,
        "pad_share": 1 - timer.tokens / timer.padded,
        "gflops": flops / timer.seconds / 1e9,
        "seconds": timer.seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", default=str(Path(__file__).resolve().parents[1].parent / "shared/data/atis")
    )
    parser.add_argument("--encoder", default="sentence-transformers/all-MiniLM-L6-v2")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--modes", default="fixed50,dynamic,bucketed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--precision",
        default="32-true",
        help="Lightning precision of every mode, e.g. bf16-mixed (CPUs with AVX-512 BF16 or AMX run it faster)",
    )
    parser.add_argument(
        "--gradient-clip-val",
        type=float,
        default=None,
        help="clip gradients to this norm, as configs/atis.yaml does (1.0); default: no clipping",
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one mode, print JSON
    args = parser.parse_args()
    if args.one:
        print(
            json.dumps(
                run_mode(
                    args.one,
                    args.data,
                    args.encoder,
                    args.steps,
                    args.warmup,
                    args.batch_size,
                    args.seed,
                    args.precision,
                    args.gradient_clip_val,
                )
            )
        )
        return
    import torch

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs; "
        f"{args.encoder}, precision {args.precision}, clip {args.gradient_clip_val}, batch {args.batch_size}, {args.steps} timed steps after {args.warmup}, {args.repeats} repeats"
    )
    results: dict[str, list[dict]] = {}
    matmuls = []
    for r in range(args.repeats):
        matmuls.append(matmul_gflops())
        for mode in args.modes.split(","):
            cmd = [
                sys.executable,
                __file__,
                "--one",
                mode,
                "--data",
                args.data,
                "--encoder",
                args.encoder,
                "--steps",
                str(args.steps),
                "--warmup",
                str(args.warmup),
                "--batch-size",
                str(args.batch_size),
                "--seed",
                str(args.seed + r),
                "--precision",
                args.precision,
            ]
            if args.gradient_clip_val is not None:
                cmd += ["--gradient-clip-val", str(args.gradient_clip_val)]
            out = (
                subprocess.run(cmd, check=True, capture_output=True, text=True)
                .stdout.strip()
                .splitlines()[-1]
            )
            results.setdefault(mode, []).append(json.loads(out))
            print(f"  repeat {r} {mode:9s} {results[mode][-1]['utt_per_s']:7.1f} utt/s", flush=True)
    mm = statistics.median(matmuls)
    print(f"\ndense fp32 matmul: {mm:.1f} GFLOP/s (median of {len(matmuls)})\n")
    print(
        "| mode | utterances/s | real tokens/s | padding share | training GFLOP/s | % of matmul | peak RSS MB |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    med = {}
    for mode, rows in results.items():
        m = {k: statistics.median(row[k] for row in rows) for k in rows[0] if k not in ("mode", "precision")}
        med[mode] = m
        print(
            f"| {mode} | {m['utt_per_s']:.1f} | {m['tokens_per_s']:.0f} | {m['pad_share']:.0%} | "
            f"{m['gflops']:.1f} | {m['gflops'] / mm:.0%} | {m['peak_rss_mb']:.0f} |"
        )
    if "fixed50" in med:
        for mode in med:
            print(f"{mode} / fixed50 throughput: {med[mode]['utt_per_s'] / med['fixed50']['utt_per_s']:.2f}x")


if __name__ == "__main__":
    main()
