"""SetFit's whole recipe on an intent data set: contrastive pairs, then a logistic head on the frozen encoder.

    python benchmarks/setfit_head.py --data runs/fs/clinc10 --steps 500

chatft's ``--contrastive.enabled true`` runs SetFit's *first* half (the cosine-similarity pair stage,
:mod:`chatft.training.contrastive`) and then fine-tunes encoder and heads together; measured on 10-shot
CLINC150 that was worse on dev than no stage at all (docs/results.md, "Few-shot intents"). SetFit's own
second half is different: the adapted encoder is *frozen* and only a logistic-regression head is fitted on its
normalised mean-pooled embeddings. This script measures exactly that, outside the Lightning fit, so the
question "is SetFit's second half what the few-shot recipe lacks?" is answered before anything is built into
``fit``:

1. read the training split (chatft's readers), tokenize with the encoder's tokenizer;
2. ``--steps N`` optimizer steps of the pair stage (chatft's own ``sentence_pairs`` and ``train_on_pairs``:
   ``--iterations`` rounds of one positive and one negative partner per utterance, shuffled, the first
   ``N x --batch-size`` kept; ``--steps 0``: the pretrained encoder as it is), in fp32 as in ``fit``. (Not
   under bfloat16 autocast: tried on MiniLM-L6, 10-shot CLINC150, the stage's loss did not fall in 150 steps
   (means of the first and last 15: 0.131 -> 0.122 in bf16, 0.127 -> 0.071 in fp32), and 500 bf16 steps left a head at 0.864 dev
   accuracy against 0.909 with no stage; why was not investigated);
3. L2-normalised mean-pooled embeddings of train, dev and test, dropout off;
4. scikit-learn's ``LogisticRegression`` for each ``--C``; prints dev and test accuracy per C. Choose on dev.

Intent-only: the slot tags are not read. Accuracy is over every utterance of the split (a folder written by
``benchmarks/clinc_fewshot.py`` holds in-scope utterances only, so this is in-scope accuracy there).
``--json`` writes the numbers and the settings.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression

from chatft.core.errors import DataFormatError
from chatft.core.features import pad_batch, tokenize_examples
from chatft.core.formats import read_split
from chatft.core.pairs import sentence_pairs
from chatft.model.encoders import load_encoder, load_tokenizer
from chatft.training.contrastive import mean_pooled, train_on_pairs


def tokenized(tokenizer, examples: list, max_length: int, intents: dict[str, int]):
    """A split's examples as chatft features and their intent ids (unseen intents: -1, always wrong)."""
    labels = [intents.get(e.intent, -1) for e in examples]
    features = tokenize_examples(
        tokenizer, [list(e.words) for e in examples], max_length, intents=[max(0, y) for y in labels]
    )
    return features, np.array(labels)


@torch.no_grad()
def embed(encoder, features, pad_id: int, batch_size: int = 128) -> np.ndarray:
    """``[N, H]`` L2-normalised mean-pooled embeddings, fp32, dropout off (sorted by length for speed)."""
    encoder.eval()
    order = sorted(range(len(features)), key=lambda i: len(features[i].input_ids))
    out = np.zeros((len(features), encoder.config.hidden_size), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        batch = pad_batch([features[i] for i in idx], pad_id)
        ids, mask = torch.from_numpy(batch["input_ids"]), torch.from_numpy(batch["attention_mask"])
        out[idx] = F.normalize(mean_pooled(encoder, ids, mask).float(), dim=-1).numpy()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="setfit_head.py", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", type=Path, required=True, help="data folder with train, dev and test splits"
    )
    parser.add_argument("--encoder", default="sentence-transformers/all-MiniLM-L6-v2")
    parser.add_argument("--steps", type=int, default=500, help="pair-stage optimizer steps (0: no stage)")
    parser.add_argument("--iterations", type=int, default=20, help="pair rounds drawn before the step cap")
    parser.add_argument("--batch-size", type=int, default=16, help="pairs per step")
    parser.add_argument("--learning-rate", type=float, default=2e-5)
    parser.add_argument("--warmup-ratio", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--C", type=float, nargs="+", default=[1.0, 10.0, 100.0], help="inverse L2 strengths")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    tokenizer = load_tokenizer(args.encoder)
    encoder = load_encoder(args.encoder)
    if not args.data.is_dir():
        parser.error(f"--data {args.data}: no such folder (a data folder with train, dev and test splits)")
    try:
        splits = {split: read_split(args.data, split) for split in ("train", "dev", "test")}
    except DataFormatError as err:  # one line naming the file, as fit gives it
        parser.error(str(err))
    intents = {name: i for i, name in enumerate(sorted({e.intent for e in splits["train"]}))}
    (train, y_train), (dev, y_dev), (test, y_test) = (
        tokenized(tokenizer, splits[split], args.max_length, intents) for split in ("train", "dev", "test")
    )
    pad_id = tokenizer.pad_token_id

    started = time.perf_counter()
    losses: list[float] = []
    if args.steps:
        pairs = sentence_pairs(y_train.tolist(), args.iterations, args.seed)[: args.steps * args.batch_size]
        losses = train_on_pairs(
            encoder, train, pairs, pad_id, args.batch_size, args.learning_rate, args.warmup_ratio
        )
        print(
            f"pair stage: {len(pairs)} pairs, {len(losses)} steps, loss {losses[0]:.4f} -> "
            f"{np.mean(losses[-10:]):.4f}, {time.perf_counter() - started:.0f} s",
            flush=True,
        )
    stage_s = time.perf_counter() - started
    started = time.perf_counter()
    x_train, x_dev, x_test = (embed(encoder, f, pad_id) for f in (train, dev, test))
    embed_s = time.perf_counter() - started

    rows = []
    for c in args.C:
        started = time.perf_counter()
        head = LogisticRegression(C=c, max_iter=2000).fit(x_train, y_train)
        dev_acc = float((head.predict(x_dev) == y_dev).mean())
        test_acc = float((head.predict(x_test) == y_test).mean())
        rows.append(
            {"C": c, "dev_acc": dev_acc, "test_acc": test_acc, "head_s": time.perf_counter() - started}
        )
        print(
            f"C={c:g}: dev {dev_acc:.4f} ({int(round(dev_acc * len(y_dev)))} of {len(y_dev)}), "
            f"test {test_acc:.4f} ({int(round(test_acc * len(y_test)))} of {len(y_test)})",
            flush=True,
        )
    print(
        f"stage {stage_s:.0f} s, embeddings {embed_s:.0f} s; train {len(train)}, dev {len(dev)}, test {len(test)}"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
        args.json.write_text(
            json.dumps(
                {
                    "settings": settings,
                    "rows": rows,
                    "stage_s": stage_s,
                    "embed_s": embed_s,
                    "losses_first_last10": [losses[:1], losses[-10:]],
                    "machine": platform.processor() or platform.machine(),
                    "torch": torch.__version__,
                    "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
