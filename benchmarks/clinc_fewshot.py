"""CLINC150 with k training utterances per in-scope intent, sampled exactly as DialoGLUE samples them.

    python benchmarks/clinc_fewshot.py /work/shared/data/clinc150 /tmp/clinc10 --k 10
    python -m chatft fit --config configs/atis.yaml --data.data_dir /tmp/clinc10 \
        --trainer.default_root_dir runs/c10
    python benchmarks/inscope_ckpt.py runs/c10
    python -m chatft test --config configs/atis.yaml --data.data_dir /tmp/clinc10 \
        --ckpt_path runs/c10/inscope.ckpt

The sampling (DialoGLUE's few-shot CLINC, ``train_10``): ``np.random.seed(0)`` once, then for each in-scope
intent in sorted order ``np.random.choice(indices, k, replace=False)``, where ``indices`` are the positions of
that intent's utterances in CLINC's ``train`` list, in file order. The draws share one random stream, so the
order of the intents and of the indices is part of the recipe; :func:`sample_indices` is the whole of it.

Dev is CLINC's ``val`` (3,000) and test its ``test`` (4,500), whole, **in-scope only**: the target metric is
test in-scope accuracy (DialoGLUE's best published 10-shot figure, 93.97), and a few-shot training set has no
out-of-scope class to predict, so the ``oos_*`` lists are dropped from every split. ``test/intent_acc`` of
the written folder is then exactly the in-scope accuracy: the share of the 4,500 in-scope test utterances
whose highest-scoring intent is the gold one, once the out-of-scope decision that ``fit`` fits on dev is
dropped (``benchmarks/inscope_ckpt.py``, or ``fit --oos.fallback false``): with it, ``test`` counts a rejected
in-scope utterance as wrong (5-shot with the contrastive stage, seed 0: 0.8244 with it, 0.8522 without). The
folder is written by chatft's own converter (``data convert --from clinc``) from a ``data_full.json`` of the
same shape, so it is the layout ``fit`` reads for any CLINC150 data.

Torch-free: only the sampling and a ``python -m chatft data convert`` subprocess.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np


def sample_indices(intents: list[str], k: int, seed: int = 0) -> list[int]:
    """Positions of the k-shot training utterances in ``intents`` (the train list's labels, in file order).

    DialoGLUE's rule: one numpy stream seeded with ``seed``; for each intent in sorted order,
    ``np.random.choice(indices_of_intent, k, replace=False)``. Returned in that draw order (intent by intent,
    each intent's indices as drawn), so the written training split is reproducible line for line.
    Raises ValueError naming the intent when one has fewer than ``k`` utterances.
    """
    by_intent: dict[str, list[int]] = {}
    for i, intent in enumerate(intents):
        by_intent.setdefault(intent, []).append(i)
    np.random.seed(seed)  # DialoGLUE seeds numpy's global stream; a Generator would draw other indices
    chosen: list[int] = []
    for intent in sorted(by_intent):
        indices = by_intent[intent]
        if len(indices) < k:
            raise ValueError(f"intent {intent!r} has {len(indices)} training utterances, fewer than k={k}")
        chosen += [int(i) for i in np.random.choice(indices, k, replace=False)]
    return chosen


def few_shot_json(full: dict, k: int, seed: int = 0) -> dict:
    """A ``data_full.json``-shaped dict: k-shot in-scope ``train``, whole in-scope ``val``/``test``, no oos."""
    train = full["train"]
    picked = sample_indices([intent for _, intent in train], k, seed)
    return {
        "train": [train[i] for i in picked],
        "val": full["val"],
        "test": full["test"],
        "oos_train": [],
        "oos_val": [],
        "oos_test": [],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clinc", type=Path, help="folder holding CLINC150's data_full.json")
    parser.add_argument("output", type=Path, help="chatft data folder to write (train/dev/test.jsonl)")
    parser.add_argument("--k", type=int, default=10, help="training utterances per intent (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="numpy seed (DialoGLUE: 0)")
    args = parser.parse_args(argv)
    full = json.loads((args.clinc / "data_full.json").read_text(encoding="utf-8"))
    subset = few_shot_json(full, args.k, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "data_full.json"
        source.write_text(json.dumps(subset), encoding="utf-8")
        cmd = [sys.executable, "-m", "chatft", "data", "convert", "--from", "clinc", "--input", str(source)]
        subprocess.run([*cmd, "--output", str(args.output)], check=True)


if __name__ == "__main__":
    main()
