"""How much to annotate: train the default recipe on seeded fractions of ATIS train, dev and test whole.

    python benchmarks/data_efficiency.py run --fraction 0.01 --seed 0 --out runs/data-efficiency
    python benchmarks/data_efficiency.py run --fraction 0.05 0.1 0.25 --seed 0 --max-minutes 10
    python benchmarks/data_efficiency.py table --out runs/data-efficiency
    python benchmarks/data_efficiency.py coverage --fraction 0.01 0.05 0.1 0.25 1 --seed 0 1 2

``run`` (under the CPU lock) fits each fraction with each seed in turn (seeds outer) and does not start
another fit when one as long as the longest so far (fit and test) would end past ``--max-minutes``; fits
whose row is already written are skipped. Each fit: writes a sample of
``round(fraction * len(train))`` training utterances drawn with ``random.Random(seed)``
(``benchmarks/small_sample.py``; fraction 1 uses the source folder as it is) to ``--samples``/NAME, then
``benchmarks/seeds.py``'s ``run_seed``: ``python -m chatft fit --config configs/atis.yaml --data.data_dir
SAMPLE --seed_everything SEED --data.seed SEED`` (the recipe as shipped: the small-data schedule chooses the
epochs), and ``test`` once on the checkpoint that was best on dev. One seed sets both the sample and the
training, so seeds differ in which utterances were annotated as well as in initialisation and order.
Writes ``--out``/rows/NAME.json. ``table`` gathers the rows into ``--out``/results.json and results.md: one
line per run and, where a fraction has several seeds, their mean ± std.

``coverage`` (torch-free, no fit) says what each sample can teach at all: the intents and slot types it
holds, the share of test utterances whose intent it holds (no model gets the others right) and the share of
test slot mentions (``B-`` tags) whose type it holds.

``--oos.fallback false`` is passed to fit by default (``--fallback`` keeps it on): the fallback is fitted
after training and changes no weight, but ``test`` counts each utterance it rejects as a wrong intent, and
the 100 % figures this curve is read against (docs/results.md, "ATIS with the default encoder") were
measured without it. Nothing is chosen on test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from seeds import KEYS, run_seed  # noqa: E402
from small_sample import draw, write_sample  # noqa: E402

FRACTIONS = (0.01, 0.05, 0.10, 0.25, 1.0)


def sample_size(fraction: float, total: int) -> int:
    """Training utterances for ``fraction`` of ``total``: ``round(fraction * total)`` (Python's rounding)."""
    if not 0.0 < fraction <= 1.0:
        raise SystemExit(f"--fraction must be in (0, 1], got {fraction}")
    n = round(fraction * total)
    if n < 1:
        raise SystemExit(f"--fraction {fraction} of {total} training utterances is none; use a larger one")
    return n


def run_name(fraction: float, seed: int) -> str:
    """``atis-1pct-seed0``: the sample folder, run folder and row file of one (fraction, seed)."""
    pct = f"{fraction * 100:g}".replace(".", "p")
    return f"atis-{pct}pct-seed{seed}"


def epochs_run(log_dir: Path) -> int:
    """Epochs the fit trained: the distinct epochs of its validation rows (one validation per epoch)."""
    rows = [
        json.loads(line) for line in (log_dir / "val_metrics.jsonl").read_text().splitlines() if line.strip()
    ]
    return len({r["epoch"] for r in rows if "val/sent_acc" in r})


def coverage(train_intents, train_tags, test_intents, test_tags) -> dict:
    """What a training sample holds of what test asks for (``*_tags``: one space-separated BIO line each)."""
    intents = set(train_intents)
    types = {t[2:] for line in train_tags for t in line.split() if t != "O"}
    mentions = [t[2:] for line in test_tags for t in line.split() if t.startswith("B-")]
    return {
        "intents": len(intents),
        "slot_types": len(types),
        "test_intent_covered": sum(i in intents for i in test_intents) / len(test_intents),
        "test_mentions_covered": sum(m in types for m in mentions) / len(mentions),
    }


def coverage_table(source: Path, fractions: list[float], seeds: list[int]) -> str:
    """Markdown: :func:`coverage` of the sample each (fraction, seed) draws (``write_sample``'s draw)."""

    def read(split: str, name: str) -> list[str]:
        return (source / split / name).read_text(encoding="utf-8").splitlines()

    labels, tags = read("train", "label"), read("train", "seq.out")
    test_labels, test_tags = read("test", "label"), read("test", "seq.out")
    lines = [
        "| train share | utterances | seed | intents | slot types | test utterances, intent seen "
        "| test slot mentions, type seen |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for fraction in fractions:
        n = sample_size(fraction, len(labels))
        for seed in seeds if n < len(labels) else seeds[:1]:
            picked = draw(len(labels), n, seed)
            c = coverage([labels[i] for i in picked], [tags[i] for i in picked], test_labels, test_tags)
            lines.append(
                f"| {fraction * 100:g} % | {n} | {seed if n < len(labels) else 'all'} | {c['intents']} | "
                f"{c['slot_types']} | {c['test_intent_covered']:.1%} | {c['test_mentions_covered']:.1%} |"
            )
    return "\n".join(lines) + "\n"


def train_size(source: Path) -> int:
    return len((source / "train" / "label").read_text(encoding="utf-8").splitlines())


def plan(fractions: list[float], seeds: list[int], done: set[str]) -> list[tuple[float, int]]:
    """(fraction, seed) pairs to fit, seeds outer, skipping the names in ``done`` (rows already written)."""
    return [(f, s) for s in seeds for f in fractions if run_name(f, s) not in done]


def fits_in(elapsed: float, longest: float, max_seconds: float) -> bool:
    """Whether another fit, as long as the longest so far, ends within ``max_seconds`` (none done: yes)."""
    return not max_seconds or elapsed + longest <= max_seconds


def run(args: argparse.Namespace) -> dict:
    total = train_size(args.source)
    n = sample_size(args.fraction, total)
    name = run_name(args.fraction, args.seed)
    if n == total:
        data_dir = args.source
    else:
        data_dir = args.samples / name
        write_sample(args.source, data_dir, n, args.seed)
    fit_args = ["--config", str(args.config), "--data.data_dir", str(data_dir)]
    if not args.fallback:
        fit_args += ["--oos.fallback", "false"]
    result = run_seed(args.seed, args.out / name, fit_args)
    row = {
        "fraction": args.fraction,
        "n_train": n,
        "train_total": total,
        "epochs_run": epochs_run(Path(result["checkpoint"]).parents[1]),
        **result,
    }
    (args.out / "rows").mkdir(parents=True, exist_ok=True)
    (args.out / "rows" / f"{name}.json").write_text(json.dumps(row, indent=1) + "\n")
    print(json.dumps(row), flush=True)
    return row


def table(rows: list[dict]) -> str:
    """Markdown: one line per run (by fraction, then seed), and mean ± std where a fraction has several seeds."""
    cols = [(s, k) for s in ("dev", "test") for k in KEYS]
    head = "| train share | utterances | seed | epochs run | best epoch | fit time | "
    head += " | ".join(f"{s} {k}" for s, k in cols) + " |"
    lines = [head, "| --- | ---: | ---: | ---: | ---: | ---: |" + " ---: |" * len(cols)]
    rows = sorted(rows, key=lambda r: (r["fraction"], r["seed"]))
    for fraction in sorted({r["fraction"] for r in rows}):
        group = [r for r in rows if r["fraction"] == fraction]
        share = f"{fraction * 100:g} %"
        for r in group:
            lines.append(
                f"| {share} | {r['n_train']} | {r['seed']} | {r['epochs_run']} | {r['best_epoch']} | "
                f"{r['fit_seconds'] / 60:.1f} min | " + " | ".join(f"{r[s][k]:.4f}" for s, k in cols) + " |"
            )
        if len(group) > 1:
            cells = []
            for s, k in cols:
                vals = [r[s][k] for r in group]
                cells.append(f"{statistics.mean(vals):.4f} ± {statistics.stdev(vals):.4f}")
            minutes = statistics.mean(r["fit_seconds"] for r in group) / 60
            lines.append(
                f"| {share} | {group[0]['n_train']} | mean ± std of {len(group)} | | | {minutes:.1f} min | "
                + " | ".join(cells)
                + " |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("run", help="one fit and test (run it under the CPU lock)")
    one.add_argument(
        "--fraction", type=float, nargs="+", required=True, help=f"shares of train, e.g. {FRACTIONS}"
    )
    one.add_argument(
        "--seed", type=int, nargs="+", default=[0], help="sampling and training seeds (default 0)"
    )
    one.add_argument(
        "--max-minutes", type=float, default=0, help="start no fit that may end later (0: no limit)"
    )
    one.add_argument(
        "--source", type=Path, default=Path("../shared/data/atis"), help="JointBERT-layout folder"
    )
    one.add_argument("--config", type=Path, default=Path("configs/atis.yaml"))
    one.add_argument(
        "--samples", type=Path, default=Path("/tmp/chatft-data-efficiency"), help="samples go here"
    )
    one.add_argument("--fallback", action="store_true", help="keep the default fallback on in fit and test")
    one.add_argument("--out", type=Path, default=Path("runs/data-efficiency"))
    gather = sub.add_parser("table", help="gather the rows into results.json and results.md")
    gather.add_argument("--out", type=Path, default=Path("runs/data-efficiency"))
    cover = sub.add_parser(
        "coverage", help="what each sample holds of test's intents and slot types (no fit)"
    )
    cover.add_argument("--fraction", type=float, nargs="+", default=list(FRACTIONS))
    cover.add_argument("--seed", type=int, nargs="+", default=[0])
    cover.add_argument("--source", type=Path, default=Path("../shared/data/atis"))
    args = parser.parse_args()
    if args.command == "coverage":
        print(coverage_table(args.source, args.fraction, args.seed), end="")
        return
    if args.command == "run":
        done = {p.stem for p in (args.out / "rows").glob("*.json")}
        start, longest = time.perf_counter(), 0.0
        for fraction, seed in plan(args.fraction, args.seed, done):
            if not fits_in(time.perf_counter() - start, longest, args.max_minutes * 60):
                print(f"--max-minutes {args.max_minutes:g}: stopped before {run_name(fraction, seed)}")
                break
            began = time.perf_counter()
            run(argparse.Namespace(**{**vars(args), "fraction": fraction, "seed": seed}))
            longest = max(longest, time.perf_counter() - began)  # fit and test
        return
    rows = [json.loads(p.read_text()) for p in sorted((args.out / "rows").glob("*.json"))]
    if not rows:
        raise SystemExit(f"{args.out / 'rows'}: no rows yet; run `run` first")
    (args.out / "results.json").write_text(json.dumps(rows, indent=1) + "\n")
    md = table(rows)
    (args.out / "results.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
