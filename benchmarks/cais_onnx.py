"""ONNX equals PyTorch on every CAIS test utterance, with the added characters (the extended vocabulary)::

    flock /tmp/chatft-cpu.lock python benchmarks/cais_onnx.py CKPT runs/cais-bench/data/test.jsonl --out runs/cais-onnx

Exports ``CKPT`` with ``python -m chatft export``'s function, then predicts every utterance of the JSON Lines
file (its words joined by spaces: ``split_words`` gives the same words back) with :class:`Predictor`
(PyTorch) and :class:`OnnxPredictor` (onnxruntime), and compares the token ids each tokenizer gives, the
intents, the word tags and the intent confidences. Prints one JSON line; exit 1 when anything differs.

It also gives the intent accuracy of the answers (``intent_acc``: what ``test`` reports, a fallback rejection
being wrong) and of the model's top-1 intent before the fallback decision (``intent_acc_top1``: what a
model without a reject option, as CM-Net, is scored on).

Result (2026-12-02, 2-core shared CPU VM): see docs/results.md, "Chinese with an English encoder (CAIS)".
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ckpt")
    parser.add_argument("data", type=Path, help="a JSON Lines split (words, tags, intent)")
    parser.add_argument("--out", type=Path, default=Path("runs/cais-onnx"))
    parser.add_argument(
        "--atol", type=float, default=1e-4, help="largest intent-confidence difference allowed"
    )
    args = parser.parse_args()
    from chatft.serving.export import export_onnx
    from chatft.serving.onnx_predictor import OnnxPredictor
    from chatft.serving.predictor import Predictor

    rows = [json.loads(line) for line in args.data.read_text(encoding="utf-8").splitlines() if line.strip()]
    words = [r["words"] for r in rows]
    texts = [" ".join(w) for w in words]
    torch_p = Predictor.from_checkpoint(args.ckpt)
    onnx_p = OnnxPredictor(str(export_onnx(args.ckpt, str(args.out))))
    same_ids = sum(
        onnx_p.tokenizer(w)["input_ids"] == torch_p.tokenizer(w, is_split_into_words=True)["input_ids"]
        for w in words
    )
    got, want = onnx_p.batch(texts), torch_p.batch(texts)
    same_intent = sum(a.intent == b.intent for a, b in zip(got, want, strict=True))
    same_tags = sum(a.tags == b.tags for a, b in zip(got, want, strict=True))
    max_diff = max(abs(a.intent_confidence - b.intent_confidence) for a, b in zip(got, want, strict=True))
    unk = torch_p.tokenizer.unk_token_id
    ids = [torch_p.tokenizer(w, is_split_into_words=True)["input_ids"] for w in words]
    gold = [r["intent"] for r in rows]
    result = {
        "intent_acc": sum(p.intent == g for p, g in zip(want, gold, strict=True)) / len(gold),
        "intent_acc_top1": sum(p.intents_top_k[0][0] == g for p, g in zip(want, gold, strict=True))
        / len(gold),
        "rejected": sum(p.out_of_scope for p in want),
        "utterances": len(texts),
        "vocabulary": len(torch_p.tokenizer),
        "same_token_ids": same_ids,
        "same_intent": same_intent,
        "same_tags": same_tags,
        "max_confidence_diff": max_diff,
        "unk_tokens": sum(i == unk for row in ids for i in row),
        "tokens": sum(len(row) - 2 for row in ids),
    }
    print(json.dumps(result), flush=True)
    n = len(texts)
    sys.exit(0 if (same_ids, same_intent, same_tags) == (n, n, n) and max_diff <= args.atol else 1)


if __name__ == "__main__":
    main()
