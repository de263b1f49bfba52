"""Train a recipe with several seeds, test each seed's dev-selected checkpoint once, print mean ± std.

    python benchmarks/seeds.py --seeds 0 1 2 --out runs/seeds -- --config configs/atis.yaml --data.data_dir ../shared/data/atis

Everything after ``--`` goes to ``python -m chatft fit`` (and, with the same ``--config``/``--data``
options, to ``test``). For each seed: ``fit`` with ``--seed_everything S`` and ``--data.seed S``
(training wall time measured), then ``test`` on the checkpoint that was best on dev. Writes
``<out>/results.json`` and ``<out>/results.md`` (per seed and mean ± std, dev and test), and each command's
output in ``<out>/seed<S>/fit.log`` and ``test/test.log``; a failed command stops the script with its
last lines of stderr.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

KEYS = ("intent_acc", "slot_f1", "sent_acc")


def best_dev_row(log_dir: Path, monitor: str = "val/sent_acc") -> dict:
    """The validation row the checkpoint callback kept: the highest monitored value, the later epoch on ties."""
    rows = [
        json.loads(line) for line in (log_dir / "val_metrics.jsonl").read_text().splitlines() if line.strip()
    ]
    rows = [r for r in rows if monitor in r]
    return max(rows, key=lambda r: (r[monitor], r["epoch"]))


def run_logged(cmd: list[str], log: Path, what: str) -> subprocess.CompletedProcess:
    """Run ``cmd``, keeping its stdout and stderr in ``log``; on failure exit with its last lines of stderr
    (the fit's own one-line error), not a ``CalledProcessError`` that names only the command."""
    log.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(cmd, capture_output=True, text=True)
    log.write_text(done.stdout + done.stderr, encoding="utf-8")
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        sys.exit(f"seeds.py: {what} failed (exit {done.returncode}; all of its output: {log}):\n{tail}")
    return done


def run_seed(seed: int, out: Path, fit_args: list[str], dev_only: bool = False) -> dict:
    root = out / f"seed{seed}"
    cmd = [
        sys.executable,
        "-m",
        "chatft",
        "fit",
        *fit_args,
        "--seed_everything",
        str(seed),
        "--data.seed",
        str(seed),
        "--trainer.default_root_dir",
        str(root),
        "--trainer.enable_progress_bar",
        "false",
    ]
    start = time.perf_counter()
    fit = run_logged(cmd, root / "fit.log", f"seed {seed}: chatft fit")
    seconds = time.perf_counter() - start
    best = next(
        line.split(": ", 1)[1].split(" (")[0]
        for line in fit.stdout.splitlines()
        if line.startswith("best checkpoint: ")
    )
    log_dir = Path(best).parents[1]
    dev = best_dev_row(log_dir)
    result = {
        "seed": seed,
        "fit_seconds": round(seconds, 1),
        "best_epoch": dev["epoch"],
        "checkpoint": best,
        "dev": {k: dev[f"val/{k}"] for k in KEYS if f"val/{k}" in dev},
    }
    if dev_only:  # ablations: choices are made on dev, the test split is not touched
        return result
    test_root = root / "test"
    test_cmd = [
        sys.executable,
        "-m",
        "chatft",
        "test",
        *fit_args,
        "--ckpt_path",
        best,
        "--trainer.default_root_dir",
        str(test_root),
        "--trainer.enable_progress_bar",
        "false",
    ]
    run_logged(test_cmd, test_root / "test.log", f"seed {seed}: chatft test")
    report = json.loads((test_root / "test_report.json").read_text())  # test writes into the folder named
    result["test"] = {k: report["metrics"][f"test/{k}"] for k in KEYS if f"test/{k}" in report["metrics"]}
    return result


def table(results: list[dict]) -> str:
    splits = [s for s in ("dev", "test") if s in results[0]]
    keys = [k for k in KEYS if k in results[0]["dev"]]
    cols = [(s, k) for s in splits for k in keys]
    head = "| seed | fit time | best epoch | " + " | ".join(f"{s} {k}" for s, k in cols) + " |"
    lines = [head, "|" + " --- |" * (3 + len(cols))]
    for r in results:
        lines.append(
            f"| {r['seed']} | {r['fit_seconds'] / 60:.1f} min | {r['best_epoch']} | "
            + " | ".join(f"{r[s][k]:.4f}" for s, k in cols)
            + " |"
        )

    def ms(split: str, k: str) -> str:
        vals = [r[split][k] for r in results]
        sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
        return f"{statistics.mean(vals):.4f} ± {sd:.4f}"

    mean_time = statistics.mean(r["fit_seconds"] for r in results) / 60
    lines.append(f"| mean ± std | {mean_time:.1f} min | | " + " | ".join(ms(s, k) for s, k in cols) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("runs/seeds"))
    parser.add_argument("--dev-only", action="store_true", help="ablations: skip the test split entirely")
    parser.add_argument("fit_args", nargs=argparse.REMAINDER, help="after --: arguments for chatft fit/test")
    args = parser.parse_args()
    fit_args = args.fit_args[1:] if args.fit_args[:1] == ["--"] else args.fit_args
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for seed in args.seeds:
        results.append(run_seed(seed, args.out, fit_args, args.dev_only))
        print(json.dumps(results[-1]), flush=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    md = table(results)
    (args.out / "results.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
