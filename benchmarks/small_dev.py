"""What ``fit`` should do when the dev split carved from a small bot is too small to choose with.

    python benchmarks/small_dev.py /work/shared/data --seeds 0 --out /tmp/small_dev --lock /tmp/chatft-cpu.lock

Two small bots, each with a carved dev split (``data convert``'s default ``0.9,0.1`` carving, seeded) and a
large held-out set used only to judge the behaviours, never to choose anything:

* ``clinc-banking``: CLINC150's 15 banking intents, 10 training utterances each (150, so 15 dev);
  held-out: CLINC ``val`` utterances of those intents (300), not ``test``.
* ``atis100``: 100 ATIS training utterances (``benchmarks/small_sample.py``'s sample, so 10 dev);
  held-out: ATIS ``dev`` (500), not ``test``.

Behaviours compared, two fits per bot and seed (``configs/demo.yaml``'s recipe, MiniLM):

* ``(a) today``: the default fit: early stopping on the tiny dev, the best-on-dev checkpoint.
* ``(b) fixed``: the same schedule without early stopping (``--schedule.patience 100000``), the last epoch.
* ``(b') fixed+best``: the same fit as (b), its best-on-dev checkpoint (to separate the two effects).

Prints one row per bot/seed/behaviour (held-out sentence accuracy, intent accuracy, slot F1, epochs trained)
and writes them to ``<out>/results.jsonl``. Torch-free itself: every fit/test is a ``python -m chatft``
subprocess.

Result (2-vCPU shared VM, 2026-12-02, ``python benchmarks/small_dev.py /work/shared/data --seeds 0 1 --out
/tmp/small_dev --lock /tmp/chatft-cpu.lock``; seed 0 only, seed 1 was stopped at the deadline):

    clinc-banking  s0 (a) today        epochs   22  sent_acc 0.9400  intent_acc 0.9400
    clinc-banking  s0 (b) fixed        epochs   60  sent_acc 0.9433  intent_acc 0.9433
    clinc-banking  s0 (b') fixed+best  epochs   60  sent_acc 0.9367  intent_acc 0.9367
    atis100        s0 (a) today        epochs   47  sent_acc 0.5160  intent_acc 0.8640  slot_f1 0.8201
    atis100        s0 (b) fixed        epochs  100  sent_acc 0.5180  intent_acc 0.8760  slot_f1 0.8198
    atis100        s0 (b') fixed+best  epochs  100  sent_acc 0.5180  intent_acc 0.8760  slot_f1 0.8198

(a) stopped at epoch 21 of 60 (dev 14/15 from epoch 6 on); (b)'s last epoch was 13/15 on dev and the best
on held-out. Stratified k-fold selection of the epoch count, the third candidate, is not built.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import sys
import time
from pathlib import Path

from chatft.data_tools.carve import carve

FILES = ("seq.in", "seq.out", "label")
METRIC = re.compile(r"^(test/\S+)\s+([0-9.]+)$")


def write_split(folder: Path, rows: list[tuple[str, str, str]]) -> None:
    """JointBERT layout: ``seq.in`` (words), ``seq.out`` (tags), ``label`` (intent), one utterance a line."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(FILES):
        (folder / name).write_text("".join(r[i] + "\n" for r in rows), encoding="utf-8")


def read_jointbert(folder: Path) -> list[tuple[str, str, str]]:
    cols = [(folder / f).read_text(encoding="utf-8").splitlines() for f in FILES]
    return list(zip(*cols, strict=True))


def carve_dev(rows: list[tuple[str, str, str]], seed: int) -> tuple[list, list]:
    """``data convert``'s carving (stratified by intent, 10% dev), seeded."""
    train_idx, dev_idx = carve([r[2] for r in rows], [0.9, 0.1], seed=seed)
    return [rows[i] for i in train_idx], [rows[i] for i in dev_idx]


def clinc_banking(data: Path, seed: int, per_intent: int = 10) -> tuple[list, list]:
    """``per_intent`` seeded training utterances of each banking intent; held-out: their ``val`` ones."""
    full = json.loads((data / "clinc150" / "data_full.json").read_text())
    intents = set(json.loads((data / "clinc150" / "domains.json").read_text())["banking"])
    rng = random.Random(seed)
    train = []
    for intent in sorted(intents):
        texts = [t for t, i in full["train"] if i == intent]
        train += [(t, intent) for t in rng.sample(texts, per_intent)]
    held = [(t, i) for t, i in full["val"] if i in intents]

    def rows(pairs):
        return [(t, " ".join("O" for _ in t.split()), i) for t, i in pairs]

    return rows(train), rows(held)


def atis_sample(data: Path, seed: int, n: int = 100) -> tuple[list, list]:
    """``benchmarks/small_sample.py``'s sample (same seeded pick); held-out: ATIS ``dev``."""
    train = read_jointbert(data / "atis" / "train")
    picked = sorted(random.Random(seed).sample(range(len(train)), n))
    return [train[i] for i in picked], read_jointbert(data / "atis" / "dev")


BOTS = {"clinc-banking": clinc_banking, "atis100": atis_sample}


LOCK: list[str] = []  # ["flock", PATH] with --lock: each fit/test takes the shared machine's lock in turn


def run(cmd: list[str], log: Path) -> str:
    cmd = [*LOCK, *cmd]
    t = time.time()
    out = subprocess.run(cmd, capture_output=True, text=True)
    log.write_text(out.stdout + out.stderr)
    if out.returncode != 0:
        raise SystemExit(f"failed ({out.returncode}): {' '.join(cmd)}; see {log}")
    print(
        f"  {time.time() - t:.0f}s {' '.join(cmd[len(LOCK) + 2 : len(LOCK) + 4])} -> {log.name}",
        file=sys.stderr,
        flush=True,
    )
    return out.stdout + out.stderr


def test_metrics(ckpt: str, data_dir: Path, log: Path) -> dict[str, float]:
    text = run(
        [
            sys.executable,
            "-m",
            "chatft",
            "test",
            "--config",
            "configs/demo.yaml",
            "--data.data_dir",
            str(data_dir),
            "--ckpt_path",
            ckpt,
        ],
        log,
    )
    return {m.group(1): float(m.group(2)) for line in text.splitlines() if (m := METRIC.match(line.strip()))}


def fit(data_dir: Path, root: Path, seed: int, extra: list[str], log: Path) -> tuple[str, str, int]:
    text = run(
        [
            sys.executable,
            "-m",
            "chatft",
            "fit",
            "--config",
            "configs/demo.yaml",
            "--data.data_dir",
            str(data_dir),
            "--trainer.default_root_dir",
            str(root),
            "--seed_everything",
            str(seed),
            "--trainer.enable_progress_bar",
            "false",
            *extra,
        ],
        log,
    )
    best = re.search(r"best checkpoint: (\S+)", text).group(1)
    last = re.search(r"last checkpoint: (\S+)", text).group(1)
    # one line per validated epoch (chatft.training.callbacks.MetricsFile)
    epochs = sum(
        1 for p in root.rglob("val_metrics.jsonl") for ln in p.read_text().splitlines() if ln.strip()
    )
    return best, last, epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="folder holding clinc150/ and atis/ (/work/shared/data)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--bots", nargs="+", default=list(BOTS), choices=list(BOTS))
    parser.add_argument("--out", type=Path, default=Path("/tmp/small_dev"))
    parser.add_argument("--lock", help="run every fit/test under `flock LOCK` (a shared machine)")
    args = parser.parse_args()
    if args.lock:
        LOCK[:] = ["flock", args.lock]
    results = args.out / "results.jsonl"
    args.out.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        for bot in args.bots:
            pool, held = BOTS[bot](args.data, seed)
            train, dev = carve_dev(pool, seed)
            data_dir = args.out / f"{bot}-s{seed}" / "data"
            write_split(data_dir / "train", train)
            write_split(data_dir / "dev", dev)
            write_split(data_dir / "test", held)  # the held-out judge, read only by `test`
            print(f"{bot} seed {seed}: train {len(train)}, dev {len(dev)}, held-out {len(held)}", flush=True)
            runs = args.out / f"{bot}-s{seed}"
            best_a, _, ep_a = fit(data_dir, runs / "a", seed, [], runs / "fit-a.log")
            best_b, last_b, ep_b = fit(
                data_dir, runs / "b", seed, ["--schedule.patience", "100000"], runs / "fit-b.log"
            )
            for name, ckpt, epochs in (
                ("(a) today", best_a, ep_a),
                ("(b) fixed", last_b, ep_b),
                ("(b') fixed+best", best_b, ep_b),
            ):
                m = test_metrics(ckpt, data_dir, runs / f"test-{name[1:3].strip(')')}.log")
                row = {
                    "bot": bot,
                    "seed": seed,
                    "behaviour": name,
                    "epochs": epochs,
                    "ckpt": ckpt,
                    "train": len(train),
                    "dev": len(dev),
                    "held_out": len(held),
                    **m,
                }
                with results.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                print(
                    f"{bot:14s} s{seed} {name:16s} epochs {epochs:4d}  sent_acc {m.get('test/sent_acc', -1):.4f}  "
                    f"intent_acc {m.get('test/intent_acc', -1):.4f}  slot_f1 {m.get('test/slot_f1', -1):.4f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
