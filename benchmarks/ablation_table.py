"""One Markdown row per variant from ``benchmarks/seeds.py --dev-only`` output folders: dev mean ± std over seeds.

    python benchmarks/ablation_table.py "recipe=runs/r2/base" "label smoothing 0.1=runs/r2/ls01"

Each argument is ``LABEL=FOLDER``; ``FOLDER/results.json`` is what ``seeds.py`` wrote. The columns are the
seeds, the dev intent accuracy / slot F1 / sentence accuracy as mean ± sample std, each seed's sentence
accuracy, the kept epochs and the mean fit time. Torch-free: it only reads JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

KEYS = ("intent_acc", "slot_f1", "sent_acc")


def row(label: str, results: list[dict]) -> str:
    def ms(key: str) -> str:
        vals = [100 * r["dev"][key] for r in results]
        if len(vals) == 1:  # one seed: no spread to report
            return f"{vals[0]:.2f}"
        return f"{statistics.mean(vals):.2f} ± {statistics.stdev(vals):.2f}"

    seeds = ",".join(str(r["seed"]) for r in results)
    per_seed = " / ".join(f"{100 * r['dev']['sent_acc']:.1f}" for r in results)
    epochs = ",".join(str(r["best_epoch"]) for r in results)
    minutes = statistics.mean(r["fit_seconds"] for r in results) / 60
    return (
        f"| {label} | {seeds} | "
        + " | ".join(ms(k) for k in KEYS)
        + f" | {per_seed} | {epochs} | {minutes:.1f} min |"
    )


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="+", help="LABEL=FOLDER (FOLDER/results.json from seeds.py)")
    args = parser.parse_args(argv)
    lines = [
        "| variant | seeds | dev intent acc | dev slot F1 | dev sent acc | sent acc per seed | kept epoch | fit time |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for spec in args.variants:
        label, _, folder = spec.rpartition("=")
        lines.append(row(label, json.loads((Path(folder) / "results.json").read_text())))
    text = "\n".join(lines) + "\n"
    print(text, end="")
    return text


if __name__ == "__main__":
    main()
