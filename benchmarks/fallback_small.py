"""Your own bot on day one: calibration and the default fallback on a small bot with no out-of-scope data.

    python benchmarks/fallback_small.py clinc-banking /tmp/fallback-runs/banking --seed 0
    python benchmarks/fallback_small.py atis100 /tmp/fallback-runs/atis100 --seed 0

``clinc-banking``: CLINC150's banking domain (15 intents, ``domains.json``), 10 training utterances per intent
drawn from CLINC's ``train`` with ``random.Random(seed)``, written as a CSV and converted with ``python -m
chatft data convert --from csv`` as a new user would (default carving: 0.8/0.1/0.1, so dev holds one
utterance per intent); ``fit`` runs on that folder with ``configs/atis.yaml`` and nothing else, so it never
sees an out-of-scope utterance. The test set, read once after ``fit``, is the domain's CLINC ``test``
utterances plus the 1,000 ``oos_test`` ones. ``atis100``: 100 ATIS training utterances
(``benchmarks/small_sample.py``), ATIS dev and test whole (no out-of-scope data: ECE and acceptance only).

Reported on test, for the decision stored in the checkpoint by ``fit`` (``stored``, applied as every front end
applies it, :class:`chatft.core.decoding.Decoder`), for T = 1 and no fallback (``no_fallback_T1``, what a bot
without out-of-scope data got before), and for the same weights calibrated as ``fit --oos.pool true`` does
(``pool``: score chosen on dev; ``pool_msp``: the confidence only): in-scope ECE (15 bins; the in-scope test
size is printed beside it), AUROC of the decision's score (in-scope positive), the share of out-of-scope
utterances rejected, and the share of in-scope utterances accepted with the right intent. ``--json`` writes
them; ``--dump`` keeps the dev/test/pool logits.

Measured 2026-12-02 on the shared 2-core CPU box (fit 67-76 s each; ``configs/atis.yaml``, MiniLM-L6):

=====================  ======  ==========  =====  ===========  =================
bot (seed)             T       ECE (n)     AUROC  OOS rejected in-scope accepted
                                                               and right
=====================  ======  ==========  =====  ===========  =================
banking 15x10 (0)      1 [1]   0.031 (450) 0.966  49.8 %       89.3 % (acc 90.7)
banking 15x10 (1)      1 [1]   0.040 (450) 0.969  46.8 %       92.9 % (acc 93.3)
banking 15x10 (2)      1 [1]   0.032 (450) 0.974  61.9 %       89.1 % (acc 90.4)
ATIS 100 (0)           1.557   0.063 (893) --     --           83.9 % (acc 85.2)
=====================  ======  ==========  =====  ===========  =================

[1] dev holds 15 utterances: T = 1 and the default thresholds of then (confidence < 0.3 or top-1 minus top-2
< 0.1). ATIS 100: T fitted on 478 dev utterances (ECE 0.108 at T = 1), confidence threshold 0.5198 chosen on dev.

Rerun 2026-12-05 with that day's recipe and default threshold (0.7, chosen again with
``benchmarks/fallback_default.py``; 0.35 had fallen to 30-33 % rejected): banking seeds 0 / 1 / 2 reject
72.0 / 68.3 / 69.9 % of ``oos_test`` and accept 89.3 / 92.4 / 90.2 % of in-scope utterances right
(docs/results.md, "A small bot without out-of-scope data").
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CLINC = Path(os.environ.get("CHATFT_CLINC", "/work/shared/data/clinc150"))
ATIS = Path(os.environ.get("CHATFT_ATIS", "/work/shared/data/atis"))
#: The label of the other CLINC domains' utterances in a banking bot's evaluation (``--other-domains``).
OTHER = "<other domain>"


def run(cmd: list[str]) -> None:
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


def prepare_clinc(
    out: Path,
    seed: int,
    domain: str = "banking",
    split: str = "test",
    per_intent: int = 10,
    oos_pool: bool = False,
    other_domains: bool = False,
) -> tuple[Path, list[tuple[list[str], str]]]:
    """The user's folder (converted from a seeded CSV sample of ``domain``'s CLINC ``train`` utterances; with
    ``oos_pool``, by ``data convert --oos-pool``) and the evaluation utterances ``(words, intent)``: the
    domain's ``split`` plus ``oos_<split>``, and with ``other_domains`` the other nine domains' ``split``
    utterances labelled :data:`OTHER` (out of scope for this bot, and not from the pool's source)."""
    data = json.loads((CLINC / "data_full.json").read_text(encoding="utf-8"))
    intents = json.loads((CLINC / "domains.json").read_text(encoding="utf-8"))[domain]
    rng = random.Random(seed)
    rows = []
    for intent in intents:
        pool = [text for text, label in data["train"] if label == intent]
        rows += [(text, intent) for text in rng.sample(pool, per_intent)]
    out.mkdir(parents=True, exist_ok=True)
    sample = out / "sample.csv"
    with sample.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "intent"])
        writer.writerows(rows)
    data_dir = out / "data"
    if not (data_dir / "train.jsonl").is_file():
        run([sys.executable, "-m", "chatft", "data", "convert", "--from", "csv", "--input", str(sample),
             "--output", str(data_dir), *(["--oos-pool"] if oos_pool else [])])  # fmt: skip
    wanted = set(intents)
    evaluation = [(t.split(), y) for t, y in data[split] if y in wanted] + [
        (t.split(), "oos") for t, _ in data[f"oos_{split}"]
    ]
    if other_domains:
        evaluation += [(t.split(), OTHER) for t, y in data[split] if y not in wanted]
    return data_dir, evaluation


def prepare_atis(out: Path, seed: int, n: int = 100) -> tuple[Path, list[tuple[list[str], str]]]:
    from chatft.core.formats import read_split

    data_dir = out / "data"
    run(
        [
            sys.executable,
            "benchmarks/small_sample.py",
            str(ATIS),
            str(data_dir),
            "--n",
            str(n),
            "--seed",
            str(seed),
        ]
    )
    return data_dir, [(list(ex.words), ex.intent) for ex in read_split(ATIS, "test")]


def best_checkpoint(root: Path) -> Path:
    found = sorted(root.rglob("best-*.ckpt"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise SystemExit(f"no best-*.ckpt under {root}")
    return found[-1]


def logits_of(loaded, words: list[list[str]], intent_ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
    from chatft.core.features import tokenize_examples
    from chatft.training.calibration import collect

    feats = tokenize_examples(loaded.tokenizer, words, loaded.max_length, intents=intent_ids)
    logits, pooled, _ = collect(loaded.model, feats, loaded.tokenizer.pad_token_id or 0, "cpu", 64)
    return logits, pooled


def measure(state, logits, pooled, gold, is_oos, is_other=None) -> dict:
    """Test numbers of one decision (``state``; None: plain softmax, nothing rejected), as the Decoder applies it.

    ``is_other``: utterances of other domains, reported apart (``other_rejected``) and left out of the rest."""
    from chatft.core.decoding import Decoder
    from chatft.core.oos import auroc, expected_calibration_error

    decoder = Decoder(tuple(str(i) for i in range(logits.shape[1])), oos=state)
    probs, rejected = decoder.intents(logits, pooled)
    scores = state.score(logits, pooled) if state is not None else probs.max(-1)
    pred, conf = probs.argmax(-1), probs.max(-1)
    right = pred == gold
    other = np.zeros(len(gold), bool) if is_other is None else is_other
    ins = ~is_oos & ~other
    out = {
        "temperature": None if state is None else state.temperature,
        "decision": None if state is None else state.describe(),
        "notes": [] if state is None else state.notes,
        "in_scope_acc_no_fallback": float(right[ins].mean()),
        "in_scope_ece": expected_calibration_error(conf[ins], right[ins]),
        "in_scope_mean_confidence": float(conf[ins].mean()),
        "in_scope_accepted_and_right": float((right & ~rejected)[ins].mean()),
        "in_scope_rejected": float(rejected[ins].mean()),
    }
    if is_oos.any():
        out["auroc"] = auroc(scores[ins], scores[is_oos])
        out["oos_rejected"] = float(rejected[is_oos].mean())
    if other.any():
        out["other_rejected"] = float(rejected[other].mean())
        out["other_auroc"] = auroc(scores[ins], scores[other])
    return out


def evaluate(ckpt: Path, data_dir: Path, test: list[tuple[list[str], str]], dump: Path | None) -> dict:
    """Test numbers of the decision ``fit`` stored, and of the same weights recalibrated with ``--oos.pool``."""
    import torch

    from chatft.core.formats import read_split
    from chatft.model.inference import load_for_inference
    from chatft.training.calibration import calibrate, pool_utterances

    torch.set_grad_enabled(False)
    loaded = load_for_inference(ckpt)
    labels = list(loaded.intent_labels)
    index = {name: i for i, name in enumerate(labels)}
    words = [w for w, _ in test]
    gold = np.array([index.get(y, -1) for _, y in test])
    is_oos = np.array([y == "oos" for _, y in test])
    is_other = np.array([y == OTHER for _, y in test])
    logits, pooled = logits_of(loaded, words, [0] * len(words))
    out = {
        "checkpoint": str(ckpt),
        "test_in_scope": int((~is_oos & ~is_other).sum()),
        "test_oos": int(is_oos.sum()),
        "test_other": int(is_other.sum()),
    }
    out["stored"] = measure(loaded.oos, logits, pooled, gold, is_oos, is_other)
    out["no_fallback_T1"] = measure(None, logits, pooled, gold, is_oos, is_other)
    # The same weights, calibrated as fit --oos.pool true would (dev, train features, the shipped pool).
    dev, train = read_split(data_dir, "dev"), read_split(data_dir, "train")
    dev_logits, dev_pooled = logits_of(loaded, [list(e.words) for e in dev], [0] * len(dev))
    _, train_pooled = logits_of(loaded, [list(e.words) for e in train], [0] * len(train))
    dev_gold = np.array([index.get(e.intent, 0) for e in dev])  # unseen in train: <unk>
    train_gold = np.array([index.get(e.intent, 0) for e in train])
    neg_logits, neg_pooled = logits_of(loaded, [t.split() for t in pool_utterances()], [0] * 200)
    oos_index = index.get("oos")
    pool_state = calibrate(
        dev_logits, dev_gold, dev_pooled, train_pooled, train_gold, oos_index=oos_index,
        negative_logits=neg_logits, negative_features=neg_pooled,
    )  # fmt: skip
    out["pool"] = measure(pool_state, logits, pooled, gold, is_oos, is_other)
    # What fit stores with this code, on the same weights (the calibration runs after training and changes no
    # weight): evaluates a run fitted before a default threshold changed (--skip-fit).
    current = calibrate(dev_logits, dev_gold, dev_pooled, train_pooled, train_gold, oos_index=oos_index)
    out["current"] = measure(current, logits, pooled, gold, is_oos, is_other)
    pool_msp = calibrate(
        dev_logits, dev_gold, dev_pooled, train_pooled, train_gold, oos_index=oos_index, method="msp",
        negative_logits=neg_logits, negative_features=neg_pooled,
    )  # fmt: skip
    out["pool_msp"] = measure(pool_msp, logits, pooled, gold, is_oos, is_other)
    if dump is not None:
        np.savez(
            dump,
            labels=np.array(labels),
            dev_logits=dev_logits,
            dev_gold=dev_gold,
            train_gold=train_gold,
            pool_logits=neg_logits,
            test_logits=logits,
            test_gold=gold,
            test_oos=is_oos,
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bot", choices=("clinc-banking", "atis100"))
    parser.add_argument("out", type=Path, help="work folder (data, run, results)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0); fit keeps its own")
    parser.add_argument("--skip-fit", action="store_true", help="evaluate the run already in OUT")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    parser.add_argument("--dump", type=Path, default=None, help="write dev/test logits (.npz) here")
    parser.add_argument("--oos-pool", action="store_true", help="convert with data convert --oos-pool")
    parser.add_argument(
        "--other-domains",
        action="store_true",
        help="also score the other CLINC domains' utterances as out of scope",
    )
    parser.add_argument("fit_args", nargs="*", help="extra fit options after --, e.g. -- --oos.pool true")
    # Split at "--" by hand: argparse gives the positionals' empty fit_args before it reaches options placed
    # after them, and then refuses "-- --oos.pool true" as unrecognized arguments.
    argv = sys.argv[1:]
    own, fit_args = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    args = parser.parse_args(own)
    args.fit_args = [*args.fit_args, *fit_args]
    if args.bot == "clinc-banking":
        data_dir, test = prepare_clinc(
            args.out, args.seed, oos_pool=args.oos_pool, other_domains=args.other_domains
        )
    else:
        data_dir, test = prepare_atis(args.out, args.seed)
    root = args.out / "run"
    t0 = time.perf_counter()
    if not args.skip_fit:
        run([sys.executable, "-m", "chatft", "fit", "--config", "configs/atis.yaml", "--data.data_dir", str(data_dir),
             "--trainer.default_root_dir", str(root), *args.fit_args])  # fmt: skip
    fit_s = time.perf_counter() - t0
    result = {"bot": args.bot, "seed": args.seed, "fit_seconds": round(fit_s, 1), "fit_args": args.fit_args}
    result.update(evaluate(best_checkpoint(root), data_dir, test, args.dump))
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
