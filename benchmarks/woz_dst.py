"""WOZ 2.0 dialogue state tracking: the learned tracker (fit + validate per seed) and a string-matching baseline.

    flock /tmp/chatft-cpu.lock python benchmarks/woz_dst.py --seeds 0 1 --out runs/woz-dst

1. Converts ``../shared/data/woz2`` (train.json, validate.json, ontology.json) into a chatft dialogue folder
   (``OUT/data``: train.jsonl, dev.jsonl = validate, schema.json) with :func:`chatft.data_tools.woz.read_woz`.
2. Scores a rule baseline on dev, torch-free: each turn, every listed value of a slot found in the user's words
   (:func:`chatft.dialogue.values.find_value`: exact or loose, the last mention wins) overwrites the slot;
   "any"/"don't care"/"doesn't matter" next to a slot word sets ``dontcare``; otherwise the slot is carried.
3. For each seed: ``python -m chatft fit --config configs/woz.yaml`` (timed), then ``validate`` of the best
   checkpoint (autoregressive: the tracker's own previous state feeds each turn).

Prints one JSON line per result and writes ``OUT/results.json``. ``--skip_fit`` runs only the baseline.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WOZ = REPO.parent / "shared" / "data" / "woz2"
DONTCARE_WORDS = re.compile(
    r"\b(any|anything|anywhere|don'?t care|doesn'?t matter|no preference)\b", re.IGNORECASE
)
SLOT_WORDS = {
    "food": ("food", "type", "kind"),
    "area": ("area", "part", "town", "where"),
    "price range": ("price", "priced", "cost"),
}


def convert(out: Path) -> Path:
    from chatft.data_tools.woz import read_ontology, read_woz
    from chatft.dialogue.dialogues import write_dialogues, write_schema

    out.mkdir(parents=True, exist_ok=True)
    schema = read_ontology(WOZ / "ontology.json")
    notes: Counter = Counter()
    write_dialogues(out / "train.jsonl", read_woz(WOZ / "train.json", "train", schema, notes))
    write_dialogues(out / "dev.jsonl", read_woz(WOZ / "validate.json", "dev", schema, notes))
    write_schema(out / "schema.json", schema)
    return out


def rule_baseline(data: Path) -> dict[str, float]:
    from chatft.dialogue.dialogues import DONTCARE, read_dialogues, read_schema
    from chatft.dialogue.dst_scores import DSTCounts, turn_score
    from chatft.dialogue.values import find_value, words_of

    schema = read_schema(data / "schema.json")
    slots = tuple(schema.informable)
    counts = DSTCounts(slots)
    for dialogue in read_dialogues(data / "dev.jsonl"):
        state: dict[str, str] = {}
        for turn in dialogue.turns:
            words = words_of(turn.user)
            for slot in slots:
                best = None
                for value in schema.informable[slot] or ():
                    found = find_value(value, words)
                    if found is not None and found[2] != "part" and (best is None or found[0] > best[0]):
                        best = (found[0], value)
                if best is not None:
                    state[slot] = best[1]
                elif DONTCARE_WORDS.search(turn.user) and any(
                    w in turn.user.lower() for w in SLOT_WORDS.get(slot, ())
                ):
                    state[slot] = DONTCARE
            counts.add(turn_score(turn.state, state, slots))
    return {k: round(v, 4) for k, v in counts.scores().items() if k != "request_acc"}


def run(cmd: list[str]) -> str:
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(proc.stdout[-3000:] + proc.stderr[-3000:])
    return proc.stdout


def fit_and_validate(data: Path, out: Path, seed: int, extra: list[str]) -> dict:
    root = out / f"seed{seed}"
    chatft = [sys.executable, "-m", "chatft"]
    common = [
        "--config",
        "configs/woz.yaml",
        "--data.data_dir",
        str(data),
        "--trainer.default_root_dir",
        str(root),
    ]
    start = time.perf_counter()
    fit_out = run(
        [
            *chatft,
            "fit",
            *common,
            "--seed_everything",
            str(seed),
            "--trainer.enable_progress_bar",
            "false",
            *extra,
        ]
    )
    fit_s = time.perf_counter() - start
    best = re.search(r"best checkpoint: (\S+)", fit_out).group(1)
    val_out = run([*chatft, "validate", *common, "--ckpt_path", best])
    metrics = {
        m.group(1): float(m.group(2)) for m in re.finditer(r"^(val/\S+)\s+([0-9.]+)$", val_out, re.MULTILINE)
    }
    return {"seed": seed, "fit_s": round(fit_s, 1), "best": best, **metrics}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1])
    parser.add_argument("--out", default="runs/woz-dst")
    parser.add_argument("--skip_fit", action="store_true")
    args, extra = parser.parse_known_args()
    out = Path(args.out)
    data = convert(out / "data")
    results = [{"model": "rule baseline (value string match + carry)", **rule_baseline(data)}]
    print(json.dumps(results[-1]), flush=True)
    if not args.skip_fit:
        for seed in args.seeds:
            results.append(
                {"model": "learned tracker (MiniLM-L6)", **fit_and_validate(data, out, seed, extra)}
            )
            print(json.dumps(results[-1]), flush=True)
    path = out / "results.json"
    if path.is_file():  # a later run with other seeds adds its rows
        old = json.loads(path.read_text(encoding="utf-8"))
        seeds = {r.get("seed") for r in results[1:]}
        results[1:1] = [r for r in old[1:] if r.get("seed") not in seeds]
    path.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
