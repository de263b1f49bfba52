"""Out-of-scope detection per score method: thresholds from dev (stored by ``fit``), numbers on test, once.

    python benchmarks/oos_eval.py --ckpt runs/clinc150/.../best-….ckpt --data /work/runs/clinc150 [--json out.json]
    python benchmarks/oos_eval.py --ckpt old.ckpt --data DIR --calibrate calibrated.ckpt   # older checkpoints

Every row of the dev table that ``fit`` stored in the checkpoint (``chatft_oos``: one per mode x score, each
with its dev temperature and threshold) is applied unchanged to the test split, which is read once: in-scope
accuracy (an in-scope utterance called out of scope is wrong), OOS recall, AUROC (in-scope positive) and
FPR@95 of the score. ``--calibrate OUT`` first fits the calibration on train/dev exactly as ``fit`` does
(:func:`chatft.training.calibration.calibrate`) and writes the checkpoint with it to OUT: for checkpoints
trained before calibration existed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np


def _split(data_dir: str, split: str, loaded, intent_vocab) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from chatft.core.features import tokenize_examples
    from chatft.core.formats import read_split
    from chatft.training.calibration import collect

    examples = read_split(data_dir, split)
    feats = tokenize_examples(
        loaded.tokenizer,
        [ex.words for ex in examples],
        loaded.max_length,
        intents=[intent_vocab.id(ex.intent) for ex in examples],
    )
    return collect(loaded.model, feats, loaded.tokenizer.pad_token_id or 0, "cpu", 64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--data", required=True, help="data folder with train/dev/test splits")
    parser.add_argument(
        "--calibrate", default=None, help="fit calibration on train/dev, write the checkpoint here"
    )
    parser.add_argument("--oos_label", default="oos")
    parser.add_argument("--json", default=None, help="also write the table as JSON here")
    args = parser.parse_args()

    import torch

    from chatft.core.labels import LabelVocab
    from chatft.core.oos import OOSState, auroc, fpr_at_tpr
    from chatft.model.inference import load_for_inference
    from chatft.training.calibration import add_to_checkpoint, calibrate

    torch.set_grad_enabled(False)
    loaded = load_for_inference(args.ckpt)
    vocab = LabelVocab.from_list(loaded.intent_labels)
    oos_index = vocab.id(args.oos_label) if args.oos_label in vocab else None
    ckpt = args.ckpt
    if args.calibrate:
        t0 = time.perf_counter()
        dev_logits, dev_feats, dev_gold = _split(args.data, "dev", loaded, vocab)
        _, train_feats, train_gold = _split(args.data, "train", loaded, vocab)
        state = calibrate(dev_logits, dev_gold, dev_feats, train_feats, train_gold, oos_index=oos_index)
        shutil.copyfile(args.ckpt, args.calibrate)
        add_to_checkpoint(args.calibrate, state)
        ckpt = args.calibrate
        print(
            f"calibrated in {time.perf_counter() - t0:.1f} s: temperature {state.temperature:.4f} -> {ckpt}"
        )
        loaded.oos, loaded.calibrated = state, True
    state = loaded.oos
    if not loaded.calibrated:
        raise SystemExit(f"{ckpt}: no calibration stored (fit it with --calibrate OUT)")

    logits, feats, gold = _split(args.data, "test", loaded, vocab)
    is_oos = gold == oos_index if oos_index is not None else np.zeros(len(gold), bool)
    rows = []
    for r in state.dev:
        method = r["method"] or "msp"
        s = OOSState.from_dict(
            {**state.to_dict(), "mode": r["mode"], "method": method, "threshold": r["threshold"],
             "temperature": r["temperature"]}
        )  # fmt: skip
        probs, out = s.decide(logits, feats)
        pred = probs.argmax(-1)
        scores = s.score(logits, feats)
        right = (pred == gold) & ~out
        row = {
            "mode": r["mode"],
            "method": r["method"],
            "chosen_on_dev": r["chosen"],
            "threshold": r["threshold"],
            "dev_in_scope_acc": r["in_scope_acc"],
            "dev_oos_recall": r["oos_recall"],
            "test_in_scope_acc": float(right[~is_oos].mean()),
            "test_oos_recall": float(out[is_oos].mean()) if is_oos.any() else None,
            "test_auroc": auroc(scores[~is_oos], scores[is_oos]) if is_oos.any() else None,
            "test_fpr95": fpr_at_tpr(scores[~is_oos], scores[is_oos]) if is_oos.any() else None,
        }
        rows.append(row)
    print("| mode | score | threshold (dev) | dev in-scope acc | dev OOS recall | test in-scope acc | test OOS recall "
          "| test AUROC | test FPR@95 |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")

    def f(v, d=4):
        return "-" if v is None else f"{v:.{d}f}"

    for r in rows:
        mark = " (chosen)" if r["chosen_on_dev"] else ""
        print(
            f"| {r['mode']}{mark} | {r['method'] or '(argmax = oos)'} | {f(r['threshold'])} | "
            f"{f(r['dev_in_scope_acc'])} | {f(r['dev_oos_recall'])} | {f(r['test_in_scope_acc'])} | "
            f"{f(r['test_oos_recall'])} | {f(r['test_auroc'])} | {f(r['test_fpr95'])} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"ckpt": str(ckpt), "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
