"""One Markdown row per variant from ``benchmarks/seeds.py`` output folders: mean ± std over seeds.

    python benchmarks/ablation_table.py "recipe=runs/r2/base" "label smoothing 0.1=runs/r2/ls01"
    python benchmarks/ablation_table.py --test "teacher + aug=runs/stu-aug,runs/stu-aug12"

Each argument is ``LABEL=FOLDER[,FOLDER...]``; ``FOLDER/results.json`` is what ``seeds.py`` wrote, and the
seeds of several folders (seed 0 in one run, seeds 1 and 2 in a later one) are merged into one row, in seed
order; a seed found twice is an error (two runs of it would be averaged as if they were two seeds). The
columns are the seeds, the dev intent accuracy / slot F1 / sentence accuracy as mean ± sample std, each
seed's sentence accuracy, the kept epochs and the mean fit time; ``--test`` adds the three test metrics (mean ±
std), which ``seeds.py`` writes unless ``--dev-only``. Intent-only data (CLINC150) has no slot F1: ``n/a``.
Torch-free: it only reads JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

KEYS = ("intent_acc", "slot_f1", "sent_acc")


def merged(folders: list[str]) -> list[dict]:
    """The per-seed results of ``folders`` (``seeds.py`` outputs), one list in seed order."""
    results: dict[int, dict] = {}
    for folder in folders:
        path = Path(folder) / "results.json"
        if not path.is_file():
            raise SystemExit(f"{path}: not found (FOLDER is a benchmarks/seeds.py --out folder)")
        for result in json.loads(path.read_text()):
            if result["seed"] in results:
                raise SystemExit(f"{path}: seed {result['seed']} is also in another folder of the same row")
            results[result["seed"]] = result
    return [results[seed] for seed in sorted(results)]


def mean_std(values: list[float]) -> str:
    """``mean ± std`` in points (x100), or the one value where there is no spread to report."""
    points = [100 * v for v in values]
    if len(points) == 1:
        return f"{points[0]:.2f}"
    return f"{statistics.mean(points):.2f} ± {statistics.stdev(points):.2f}"


def row(label: str, results: list[dict], test: bool = False) -> str:
    splits = ("dev", "test") if test else ("dev",)
    for split in splits:
        if any(split not in r for r in results):
            raise SystemExit(f"{label}: a seed has no {split} metrics (a --dev-only run?): drop --test")
    seeds = ",".join(str(r["seed"]) for r in results)
    metrics = [
        mean_std([r[split][key] for r in results]) if all(key in r[split] for r in results) else "n/a"
        for split in splits
        for key in KEYS
    ]
    per_seed = " / ".join(f"{100 * r['dev']['sent_acc']:.1f}" for r in results)
    epochs = ",".join(str(r["best_epoch"]) for r in results)
    minutes = statistics.mean(r["fit_seconds"] for r in results) / 60
    return f"| {label} | {seeds} | " + " | ".join(metrics) + f" | {per_seed} | {epochs} | {minutes:.1f} min |"


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "variants", nargs="+", help="LABEL=FOLDER[,FOLDER...] (FOLDER/results.json from seeds.py)"
    )
    parser.add_argument("--test", action="store_true", help="add the test metrics' columns")
    args = parser.parse_args(argv)
    columns = ["dev intent acc", "dev slot F1", "dev sent acc"]
    if args.test:
        columns += ["test intent acc", "test slot F1", "test sent acc"]
    per_seed = "dev sent acc per seed" if args.test else "sent acc per seed"  # dev's either way
    lines = [
        "| variant | seeds | " + " | ".join(columns) + f" | {per_seed} | kept epoch | fit time |",
        "| --- | --- | " + " | ".join("---:" for _ in columns) + " | ---: | --- | ---: |",
    ]
    for spec in args.variants:
        label, _, folders = spec.rpartition("=")
        if not label:
            raise SystemExit(
                f"{spec!r}: expected LABEL=FOLDER[,FOLDER...] (the row's label, then its folders)"
            )
        lines.append(row(label, merged(folders.split(",")), args.test))
    text = "\n".join(lines) + "\n"
    print(text, end="")
    return text


if __name__ == "__main__":
    main()
