"""How well ``data audit`` finds annotation errors: inject label noise with a fixed seed, audit, score.

    python benchmarks/audit_noise.py inject --data ../shared/data/atis --out /work/runs/atis-noisy
    python -m chatft data audit --config configs/atis.yaml --data.data_dir /work/runs/atis-noisy \\
        --output /work/runs/atis-noisy/suspects.jsonl
    python benchmarks/audit_noise.py score --noisy /work/runs/atis-noisy --suspects /work/runs/atis-noisy/suspects.jsonl

``inject`` copies a JointBERT-layout dataset and, in its training split only, flips the intent of ``--rate``
(5 %) of the utterances to another intent of the split (uniformly), and changes the type of one slot span
(``B-x I-x`` -> ``B-y I-y``, ``y`` uniform among the split's other slot types) in ``--rate`` of the utterances
that have a slot; the two sets are drawn independently from ``random.Random(seed)``. What was changed is
written to ``OUT/injected.json``. ``score`` reads it with the suspects and reports, for intents and for
slots, precision and recall among the top *n* suspects of that kind, *n* being the number injected (a slot
suspect counts when it is on the injected line and its words overlap the changed span), and the same over
every suspect flagged. Torch-free: only the audit itself trains.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chatft.core.formats import read_split  # noqa: E402
from chatft.core.tags import bio_chunks  # noqa: E402


def inject(data: Path, out: Path, rate: float = 0.05, seed: int = 0) -> dict:
    """Write a noisy copy of ``data`` to ``out``; returns (and writes) what was injected."""
    train = read_split(data, "train", "jointbert")
    rng = random.Random(seed)
    n = round(rate * len(train))
    intents = sorted({ex.intent for ex in train})
    labels = [ex.intent for ex in train]
    tags = [list(ex.tags) for ex in train]
    injected: dict = {"seed": seed, "rate": rate, "intent": [], "slot": []}
    for i in sorted(rng.sample(range(len(train)), n)):
        new = rng.choice([x for x in intents if x != labels[i]])
        injected["intent"].append({"line": i + 1, "given": new, "true": labels[i]})
        labels[i] = new
    types = sorted({typ for t in tags for typ, _, _ in bio_chunks(t)})
    with_slots = [i for i, t in enumerate(tags) if bio_chunks(t)]
    for i in sorted(rng.sample(with_slots, n)):
        typ, start, end = rng.choice(bio_chunks(tags[i]))
        new = rng.choice([x for x in types if x != typ])
        tags[i][start:end] = [f"B-{new}"] + [f"I-{new}"] * (end - start - 1)
        injected["slot"].append({"line": i + 1, "start": start, "end": end, "given": new, "true": typ})
    if out.exists():
        shutil.rmtree(out)
    for split in ("dev", "test"):
        if (data / split).is_dir():
            shutil.copytree(data / split, out / split)
    (out / "train").mkdir(parents=True)
    shutil.copyfile(data / "train" / "seq.in", out / "train" / "seq.in")
    (out / "train" / "seq.out").write_text("".join(" ".join(t) + "\n" for t in tags), encoding="utf-8")
    (out / "train" / "label").write_text("".join(x + "\n" for x in labels), encoding="utf-8")
    (out / "injected.json").write_text(json.dumps(injected, indent=1) + "\n", encoding="utf-8")
    return injected


def _region(record: dict) -> tuple[int, int]:
    g, s = record["given"], record["suggested"]
    return min(g["start"], s["start"]), max(g["end"], s["end"])


def score(injected: dict, records: list[dict]) -> dict:
    """Precision and recall of the injected errors among the top-n suspects of each kind (and all flagged)."""
    out: dict = {}
    for kind in ("intent", "slot"):
        truth = injected[kind]
        flagged = [r for r in records if r["kind"] == kind]

        def hit(record: dict, error: dict, kind=kind) -> bool:
            if record["line"] != error["line"]:
                return False
            if kind == "intent":
                return True
            start, end = _region(record)
            return start < error["end"] and error["start"] < end

        for name, chosen in (("top_n", flagged[: len(truth)]), ("flagged", flagged)):
            true_pos = sum(any(hit(r, e) for e in truth) for r in chosen)
            found = sum(any(hit(r, e) for r in chosen) for e in truth)
            out[f"{kind}_{name}"] = {
                "n": len(chosen),
                "precision": round(true_pos / len(chosen), 4) if chosen else 0.0,
                "recall": round(found / len(truth), 4) if truth else 0.0,
            }
        out[f"{kind}_injected"] = len(truth)
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("inject", help="write a noisy copy of a JointBERT-layout dataset")
    a.add_argument("--data", required=True, type=Path)
    a.add_argument("--out", required=True, type=Path)
    a.add_argument("--rate", type=float, default=0.05)
    a.add_argument("--seed", type=int, default=0)
    s = sub.add_parser("score", help="precision/recall of the injected errors among the audit's suspects")
    s.add_argument("--noisy", required=True, type=Path, help="the folder inject wrote")
    s.add_argument("--suspects", required=True, type=Path, help="the JSON Lines file data audit wrote")
    args = p.parse_args(argv)
    if args.command == "inject":
        injected = inject(args.data, args.out, args.rate, args.seed)
        print(
            f"{args.out}: {len(injected['intent'])} intents flipped, {len(injected['slot'])} slot types "
            f"changed (seed {args.seed}); list in {args.out / 'injected.json'}"
        )
        return
    injected = json.loads((args.noisy / "injected.json").read_text(encoding="utf-8"))
    records = [json.loads(line) for line in args.suspects.read_text(encoding="utf-8").splitlines()]
    result = score(injected, records)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
