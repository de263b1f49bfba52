"""CAIS (Chinese smart-speaker utterances) with the offline English encoder: the vocabulary as shipped vs added
characters, how their embedding rows start and how fast they learn. One fit (and, with ``--test``, one test) per call::

    flock /tmp/chatft-cpu.lock python benchmarks/cais.py --variant mean --seed 0 --out runs/cais-bench
    flock /tmp/chatft-cpu.lock python benchmarks/cais.py --variant mean --seed 1 --test --out runs/cais-bench

``--data`` is the CAIS folder as published (``{train,valid,test}/ch.<split>`` + ``.intent``, see
``../shared/data/cais/README.md``); it is converted with ``data convert --from columns`` into ``<out>/data``
(valid becomes dev). Every variant trains ``configs/atis.yaml`` unchanged except:

* ``shipped``: ``--data.extend_vocab false`` (the encoder's vocabulary: ~59 % of the characters are [UNK]);
* ``mean`` / ``unk``: characters added, new rows from the mean embedding / the [UNK] row, trained in the one
  embedding matrix at the encoder's learning rate (``--model.added_token_lr null``);
* ``min1``: as ``mean``, with the characters seen once in train added too (``--data.extend_vocab_min_count 1``);
* ``lr1e-3`` / ``lr3e-3``: as ``mean``, the new rows a parameter of their own at that learning rate, no weight
  decay (``--model.added_token_lr``; 1e-3 is the default);
* ``crf-clip``: the default (``lr1e-3``) with a CRF and gradients clipped to norm 1.0
  (``--model.use_crf true --trainer.gradient_clip_val 1.0``, the options ATIS's dev chose).

Choices are made on valid (``--test`` is for the winner only; when ``<out>/results.jsonl`` already has that
variant and seed from a valid-only call, its checkpoint is tested without fitting again). Each call appends its
JSON line to ``<out>/results.jsonl``.

Results (2026-12-02, 2-core shared CPU VM, each call under the CPU lock; fit = 8 epochs, 2,000 steps):
see docs/results.md, "Chinese with an English encoder (CAIS)".
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from seeds import KEYS, run_seed  # noqa: E402

VARIANTS = {
    "shipped": ["--data.extend_vocab", "false"],
    # Added rows in the one embedding matrix, at the encoder's learning rate (the first release's default).
    "mean": ["--model.added_token_init", "mean", "--model.added_token_lr", "null"],
    "unk": ["--model.added_token_init", "unk", "--model.added_token_lr", "null"],
    "min1": ["--data.extend_vocab_min_count", "1", "--model.added_token_lr", "null"],
    # Added rows as a parameter of their own, at their own learning rate (no weight decay).
    "lr1e-3": ["--model.added_token_lr", "1e-3"],
    "lr3e-3": ["--model.added_token_lr", "3e-3"],
    # The default (lr1e-3) with the CRF and clipped gradients that ATIS's dev chose (docs/results.md).
    "crf-clip": ["--model.use_crf", "true", "--trainer.gradient_clip_val", "1.0"],
}


def convert(cais: Path, out: Path) -> Path:
    """CAIS in chatft's JSON Lines layout (done once per ``out``)."""
    data = out / "data"
    if not (data / "train.jsonl").is_file():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "chatft",
                "data",
                "convert",
                "--from",
                "columns",
                "--train",
                str(cais / "train" / "ch.train"),
                "--dev",
                str(cais / "valid" / "ch.valid"),
                "--test",
                str(cais / "test" / "ch.test"),
                "--output",
                str(data),
            ],
            check=True,
        )
    return data


def test(ckpt: str, fit_args: list[str], root: Path) -> dict:
    """``chatft test`` of ``ckpt``: the test metrics of its report."""
    cmd = [sys.executable, "-m", "chatft", "test", *fit_args, "--ckpt_path", ckpt]
    cmd += ["--trainer.default_root_dir", str(root), "--trainer.enable_progress_bar", "false"]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    report = json.loads((root / "test_report.json").read_text())
    return {k: report["metrics"][f"test/{k}"] for k in KEYS if f"test/{k}" in report["metrics"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=sorted(VARIANTS), required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test", action="store_true", help="also test the dev-selected checkpoint")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/cais"))
    parser.add_argument("--out", type=Path, default=Path("runs/cais-bench"))
    parser.add_argument("--config", default="configs/atis.yaml")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    data = convert(args.data, args.out)
    fit_args = ["--config", args.config, "--data.data_dir", str(data), *VARIANTS[args.variant]]
    log = args.out / "results.jsonl"
    earlier = [json.loads(line) for line in log.read_text().splitlines()] if log.is_file() else []
    done = [r for r in earlier if (r["variant"], r["seed"]) == (args.variant, args.seed)]
    if args.test and done:
        result = dict(done[-1])
        result["test"] = test(
            result["checkpoint"], fit_args, args.out / args.variant / f"seed{args.seed}" / "test"
        )
    else:
        result = run_seed(args.seed, args.out / args.variant, fit_args, dev_only=not args.test)
    result["variant"] = args.variant
    line = json.dumps(result)
    with log.open("a") as f:
        f.write(line + "\n")
    print(line, flush=True)


if __name__ == "__main__":
    main()
