"""Data at scale: private memory per DDP process, cache build time cold/warm, time to the first step.

Synthetic data made from ATIS train repeated to ``--size`` utterances, every copy after the first with light
word shuffles (two neighbouring words that are both tagged ``O`` swap places, so tags stay valid); dev and
test are ATIS's own. Each command is one short measurement (run it under the CPU lock, one at a time):

    python benchmarks/data_scale.py make --size 100000
    python benchmarks/data_scale.py throughput --size 100000 --before ../main
    python benchmarks/data_scale.py build --size 100000 --phase cold --num_proc 1
    python benchmarks/data_scale.py build --size 100000 --phase warm
    python benchmarks/data_scale.py ddp --size 100000 --phase warm
    python benchmarks/data_scale.py ddp --size 100000 --phase warm --launcher torchrun

* ``make`` writes ``--root``/``SIZE`` (default ``/tmp/chatft-scale/SIZE``; never in the repository). The
  cache is ``--root``/``cache``, shared by the sizes under one root: ``cold`` empties it.
* ``build``: one process, ``IntentSlotDataModule(...).setup("fit")`` timed with the default encoder's
  tokenizer and max_length 64 (fit's data preparation). ``cold`` empties the cache first, ``warm`` reuses it;
  ``--cache off`` is the in-memory path (every process tokenizes, nothing cached).
* ``throughput``: the ``build`` rows of the results table in fresh processes, one after the other: in
  memory (this checkout, and ``--before``'s code), the cache cold with 1 and 2 processes, then warm.
* ``ddp``: ``python -m chatft fit`` with 2 CPU processes (strategy ddp, gloo), the default encoder, batch
  32, 100 steps, no validation. Each rank records ``RssAnon`` (private memory; memory-mapped Arrow pages
  are page cache, not counted) after setup (``on_train_start``), its maximum over the 100 steps, and the
  seconds from the launch until it had started, until it had parsed its options, until its data was set up
  and until its first training step; then the processes exit (no end-of-fit work). ``--phase cold`` empties
  the cache first (the build is then part of the time to the first step). ``--launcher lightning`` (the
  default) runs one ``python -m chatft fit``, whose ``trainer.fit`` starts the second process;
  ``--launcher torchrun`` starts both at once (``torchrun --standalone --nproc_per_node 2 -m chatft fit``).

``--chatft PATH`` runs another checkout's code; options that checkout does not have are not passed.

Measured 2026-12-02 on the 2-core shared CPU VM (all numbers and commands in docs/results.md, "Data at
scale"): private memory per DDP process after setup 502 MB at 100 k, 568 MB at 1 M (warm); first step
12.1 s / 17.4 s after the launch; 100 k prepared in memory in 14.75 s (the code before these changes),
cold into the cache in 13.95 s with num_proc 1 and 11.33 s with 2, warm in 0.37 s; 1 M cold with
num_proc 2 in 101.2 s. Round 2 ("Data at scale: start-up, round 2"): first step at 1 M 15.1-15.5 s with
Lightning's launcher, 8.5-12.0 s with ``--launcher torchrun`` (20 steps, two runs each).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import lightning as L

HERE = Path(__file__).resolve().parent
ATIS = HERE.parent.parent / "shared" / "data" / "atis"


def rss_anon_mb() -> float:
    """Private resident memory of this process (``RssAnon`` of /proc/self/status), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no RssAnon in /proc/self/status")


def process_age_s() -> float:
    """Seconds since this process started (``/proc/self/stat`` start time against ``/proc/uptime``; 10 ms)."""
    start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    return uptime - start_ticks / os.sysconf("SC_CLK_TCK")


def shuffled(words: list[str], tags: list[str], rng: random.Random) -> list[str]:
    """``words`` with two neighbouring ``O`` words swapped (when there are any): a light variation."""
    pairs = [k for k in range(len(words) - 1) if tags[k] == "O" and tags[k + 1] == "O"]
    words = list(words)
    if pairs:
        k = rng.choice(pairs)
        words[k], words[k + 1] = words[k + 1], words[k]
    return words


def make(size: int, out: Path, source: Path = ATIS, seed: int = 0) -> Path:
    """Write ``out/{train,dev,test}`` (JointBERT layout): ``size`` train utterances made from ATIS train."""
    rng = random.Random(seed)
    lines = {
        n: (source / "train" / n).read_text(encoding="utf-8").splitlines()
        for n in ("seq.in", "seq.out", "label")
    }
    rows = list(zip(lines["seq.in"], lines["seq.out"], lines["label"], strict=True))
    (out / "train").mkdir(parents=True, exist_ok=True)
    with (
        open(out / "train" / "seq.in", "w", encoding="utf-8") as fi,
        open(out / "train" / "seq.out", "w", encoding="utf-8") as fo,
        open(out / "train" / "label", "w", encoding="utf-8") as fl,
    ):
        for i in range(size):
            w, t, intent = rows[i % len(rows)]
            words, tags = w.split(), t.split()
            if i >= len(rows):
                words = shuffled(words, tags, rng)
            fi.write(" ".join(words) + "\n")
            fo.write(t + "\n")
            fl.write(intent + "\n")
    for split in ("dev", "test"):
        shutil.copytree(source / split, out / split, dirs_exist_ok=True)
    return out


def _accepts(name: str) -> bool:
    import inspect

    from chatft.training.datamodule import IntentSlotDataModule

    return name in inspect.signature(IntentSlotDataModule.__init__).parameters


def build(data: Path, phase: str, cache: str, cache_dir: Path, num_proc: int) -> dict:
    """Time ``IntentSlotDataModule(...)`` + ``setup("fit")`` in this process."""
    if phase == "cold":
        shutil.rmtree(cache_dir, ignore_errors=True)
    from chatft.model.encoders import DEFAULT_ENCODER, load_tokenizer
    from chatft.training.datamodule import IntentSlotDataModule

    load_tokenizer(DEFAULT_ENCODER)  # read the tokenizer's files once, untimed (the page cache then has them)
    options = {"max_length": 64}
    if _accepts("cache"):
        options.update(cache=cache, cache_dir=str(cache_dir), num_proc=num_proc)
    start = time.perf_counter()
    dm = IntentSlotDataModule(str(data), **options)
    labels_s = time.perf_counter() - start
    dm.setup("fit")
    total = time.perf_counter() - start
    n = len(dm.datasets["train"]) + len(dm.datasets["dev"])
    return {
        "phase": phase,
        "cache": options.get("cache", "(none: this checkout has no cache)"),
        "num_proc": num_proc,
        "utterances": n,
        "labels_s": round(labels_s, 2),
        "setup_s": round(total, 2),
        "utterances_per_s": round(n / total),
        "rss_anon_mb": round(rss_anon_mb()),
    }


class Probe(L.Callback):
    """Lightning callback for ``ddp``: memory after setup and over the first steps, time to the first step."""

    def __init__(self) -> None:
        self.out = Path(os.environ["CHATFT_PROBE_OUT"])
        self.t0 = float(os.environ["CHATFT_PROBE_T0"])
        self.steps = int(os.environ.get("CHATFT_PROBE_STEPS", "100"))
        # Made when the CLI has parsed its options: the imports are done (the time this process started
        # is later than the launch for rank 1, which Lightning starts from rank 0's trainer.fit).
        now = time.time() - self.t0
        self.record: dict = {"started_s": round(now - process_age_s(), 1), "parsed_s": round(now, 1)}

    def setup(self, trainer, pl_module, stage) -> None:
        self.record["data_ready_s"] = round(time.time() - self.t0, 1)  # after the DataModule's setup

    def on_train_start(self, trainer, pl_module) -> None:
        self.record.update(rank=trainer.global_rank, after_setup_mb=round(rss_anon_mb()), max_steps_mb=0)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == 0:
            self.record["first_step_s"] = round(time.time() - self.t0, 1)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.record["max_steps_mb"] = max(self.record["max_steps_mb"], round(rss_anon_mb()))
        if batch_idx + 1 >= self.steps:
            self.record["steps"] = batch_idx + 1
            self.record["steps_s"] = round(time.time() - self.t0 - self.record["first_step_s"], 1)
            (self.out / f"rank{trainer.global_rank}.json").write_text(json.dumps(self.record))
            sys.stdout.flush()
            os._exit(0)  # the measurement is done: no checkpoint, no end-of-fit calibration over 1 M rows


def ddp(
    data: Path,
    phase: str,
    cache: str,
    cache_dir: Path,
    num_proc: int,
    chatft: Path,
    steps: int,
    launcher: str = "lightning",
) -> dict:
    """``python -m chatft fit`` on 2 CPU processes with :class:`Probe`; returns each rank's record.

    ``launcher``: ``lightning`` runs one ``python -m chatft fit``, whose ``trainer.fit`` starts the second
    process; ``torchrun`` starts both at once (``torchrun --standalone --nproc_per_node 2 -m chatft fit``,
    as ``python -m torch.distributed.run`` of this interpreter).
    """
    if phase == "cold":
        shutil.rmtree(cache_dir, ignore_errors=True)
    out = Path(f"/tmp/chatft-scale/probe-{os.getpid()}")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    start = [sys.executable, "-m", "chatft", "fit"]
    if launcher == "torchrun":
        start = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                 "-m", "chatft", "fit"]  # fmt: skip
    args = [
        *start,
        "--config", str(HERE.parent / "configs" / "demo.yaml"),
        "--config", str(HERE.parent / "configs" / "ddp-cpu.yaml"),
        "--data.data_dir", str(data),
        "--trainer.max_steps", str(steps),
        "--trainer.limit_val_batches", "0",
        "--trainer.enable_progress_bar", "false",
        "--trainer.default_root_dir", str(out / "run"),
        "--trainer.callbacks+=data_scale.Probe",
    ]  # fmt: skip
    if _accepts("cache"):
        args += ["--data.cache", cache, "--data.cache_dir", str(cache_dir), "--data.num_proc", str(num_proc)]
    env = dict(
        os.environ,
        PYTHONPATH=f"{HERE}:{chatft}",
        CHATFT_PROBE_OUT=str(out),
        CHATFT_PROBE_T0=str(time.time()),
        CHATFT_PROBE_STEPS=str(steps),
    )
    proc = subprocess.run(args, env=env, capture_output=True, text=True)
    ranks = [json.loads(p.read_text()) for p in sorted(out.glob("rank*.json"))]
    if len(ranks) != 2:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-6000:])
        raise SystemExit(f"ddp run failed (exit {proc.returncode}): {len(ranks)} rank records")
    shutil.rmtree(out, ignore_errors=True)
    return {"phase": phase, "cache": cache, "launcher": launcher, "ranks": ranks}


def throughput(size: int, root: Path, before: Path | None) -> None:
    """The data-preparation rows of the results table, each in a fresh process, one after the other.

    In memory (``--cache off``: what every process did before the cache) with this checkout and, with
    ``--before``, with another checkout's code; then the cache cold with 1 and 2 processes, then warm.
    """
    runs = [["--cache", "off"]]
    if before is not None:
        runs.append(["--cache", "off", "--chatft", str(before)])
    runs += [
        ["--phase", "cold", "--num_proc", "1"],
        ["--phase", "cold", "--num_proc", "2"],
        ["--phase", "warm"],
    ]
    for extra in runs:
        cmd = [sys.executable, __file__, "build", "--size", str(size), "--root", str(root), *extra]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode:
            sys.stderr.write(out.stderr[-3000:])
            raise SystemExit(f"{' '.join(extra)}: exit {out.returncode}")
        print(out.stdout.strip().splitlines()[-1], flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["make", "build", "ddp", "throughput"])
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--phase", choices=["cold", "warm"], default="warm")
    parser.add_argument("--cache", choices=["on", "off", "auto"], default="on")
    parser.add_argument("--num_proc", type=int, default=1)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument(
        "--launcher",
        choices=["lightning", "torchrun"],
        default="lightning",
        help="ddp: who starts the 2 processes (Lightning from the first one's trainer.fit, or torchrun)",
    )
    parser.add_argument("--root", type=Path, default=Path("/tmp/chatft-scale"))
    parser.add_argument("--chatft", type=Path, default=HERE.parent, help="checkout whose chatft to run")
    parser.add_argument("--before", type=Path, help="throughput: also time this checkout's in-memory path")
    args = parser.parse_args()
    sys.path.insert(0, str(args.chatft))
    data = args.root / str(args.size)
    cache_dir = args.root / "cache"
    if args.what == "make":
        start = time.perf_counter()
        make(args.size, data)
        print(json.dumps({"made": str(data), "seconds": round(time.perf_counter() - start, 1)}))
        return
    if not (data / "train" / "seq.in").is_file():
        raise SystemExit(f"{data}: not made yet (python benchmarks/data_scale.py make --size {args.size})")
    if args.what == "throughput":
        throughput(args.size, args.root, args.before)
        return
    if args.what == "build":
        result = build(data, args.phase, args.cache, cache_dir, args.num_proc)
    else:
        result = ddp(
            data, args.phase, args.cache, cache_dir, args.num_proc, args.chatft, args.steps, args.launcher
        )
    print(json.dumps({"size": args.size, "chatft": str(args.chatft), **result}))


if __name__ == "__main__":
    main()
