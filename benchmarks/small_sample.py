"""Write a seeded sample of a JointBERT-layout training split, with the full dev and test splits beside it.

    python benchmarks/small_sample.py ../shared/data/atis /tmp/atis100 --n 100 --seed 0

Used to check the recipe on small data (docs/results.md, "Small data"): train on the sample, compare the default
recipe with hand-tuned epoch counts with ``benchmarks/seeds.py --dev-only``. Torch-free.
"""

from __future__ import annotations

import argparse
import random
import shutil
from pathlib import Path

FILES = ("seq.in", "seq.out", "label")


def draw(total: int, n: int, seed: int) -> list[int]:
    """The ``n`` line indices of ``total`` a sample keeps: ``random.Random(seed)``, in file order."""
    return sorted(random.Random(seed).sample(range(total), n))


def write_sample(source: Path, out: Path, n: int, seed: int) -> list[int]:
    """Copy ``n`` training utterances picked with ``random.Random(seed)`` (in file order), dev and test whole."""
    lines = {f: (source / "train" / f).read_text(encoding="utf-8").splitlines() for f in FILES}
    total = len(lines["label"])
    if not 0 < n <= total:
        raise SystemExit(f"--n must be in 1..{total}")
    picked = draw(total, n, seed)
    (out / "train").mkdir(parents=True, exist_ok=True)
    for f in FILES:
        (out / "train" / f).write_text("".join(lines[f][i] + "\n" for i in picked), encoding="utf-8")
    for split in ("dev", "test"):
        if (out / split).exists():
            shutil.rmtree(out / split)
        shutil.copytree(source / split, out / split)
    return picked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="folder with train/dev/test in the JointBERT layout")
    parser.add_argument("out", type=Path, help="folder to write")
    parser.add_argument("--n", type=int, default=100, help="training utterances to keep (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    args = parser.parse_args()
    picked = write_sample(args.source, args.out, args.n, args.seed)
    print(f"{args.out}: {len(picked)} training utterances (seed {args.seed}), dev and test copied")


if __name__ == "__main__":
    main()
