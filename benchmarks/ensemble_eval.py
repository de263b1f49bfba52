"""Score chatft checkpoints and their logit-average ensemble on a data folder's splits: is an ensemble of
several seeds' models the stronger teacher that ``--model.distill_from '[a.ckpt, b.ckpt, ...]'`` assumes?

    python benchmarks/ensemble_eval.py --data ../shared/data/atis --splits dev test -- A.ckpt B.ckpt C.ckpt

Each checkpoint's intent logits and word slot scores come from :func:`chatft.training.distill.word_targets`
(its own tokenizer and ``max_length``, the inference path), the ensemble's from
:func:`~chatft.training.distill.average_targets` over them: exactly the targets a student of the ensemble
learns. Slots are decoded with each model's slot decoder (Viterbi over its CRF, or its BIO-constrained
softmax); the ensemble's decoder has the mean of the members' start, transition and end scores (the CRF a
``--model.distill_crf`` student of the ensemble learns). Slot F1 is micro-averaged over spans chunked as
seqeval does (:func:`chatft.core.tags.bio_chunks`); sentence accuracy needs the intent and every tag right.
The checkpoints must share their label lists. Prints one Markdown row per model and split; ``--json`` writes
the numbers. Choose on dev.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from chatft.core.decoding import SlotDecoder
from chatft.core.formats import read_split
from chatft.core.tags import bio_chunks
from chatft.model.decoding import slot_decoder_of
from chatft.model.inference import load_for_inference
from chatft.training.distill import average_targets, mean_decoder, word_targets


def scores(
    intent_logits: list[np.ndarray],
    slot_rows: list[np.ndarray | None],
    seen: list[int],
    decoder: SlotDecoder | None,
    intent_labels,
    slot_labels,
    examples: list,
) -> dict:
    """Intent accuracy, span F1 (None without slots) and sentence accuracy of one model's outputs on
    ``examples``; words past the ``seen`` ones (cut by the model's ``max_length``) are tagged ``O``."""
    right_intents = right_sentences = 0
    gold_spans = predicted_spans = true_spans = 0
    for logits, rows, n, ex in zip(intent_logits, slot_rows, seen, examples, strict=True):
        intent_ok = intent_labels[int(np.argmax(logits))] == ex.intent
        tags = list(ex.tags or [])
        if decoder is not None and rows is not None:
            path = decoder.decode_batch(rows[None, :n], [n])[0] if n else []
            predicted = [slot_labels[t] for t in path] + ["O"] * (len(rows) - n)
        else:
            predicted = tags
        gold, pred = set(bio_chunks(tags)), set(bio_chunks(predicted))
        gold_spans, predicted_spans, true_spans = (
            gold_spans + len(gold),
            predicted_spans + len(pred),
            true_spans + len(gold & pred),
        )
        right_intents += intent_ok
        right_sentences += intent_ok and predicted == tags
    p = true_spans / predicted_spans if predicted_spans else 0.0
    r = true_spans / gold_spans if gold_spans else 0.0
    return {
        "intent_acc": right_intents / len(examples),
        "slot_f1": None if decoder is None else 2 * p * r / (p + r) if p + r else 0.0,
        "sent_acc": right_sentences / len(examples),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="a chatft data folder")
    parser.add_argument("--splits", nargs="+", default=["dev"], help="splits to score (default: dev)")
    parser.add_argument("--json", help="write the numbers here")
    parser.add_argument("checkpoints", nargs="*", help="two or more chatft checkpoints with the same labels")
    args = parser.parse_args(argv)
    swallowed = [s for s in args.splits if s.endswith(".ckpt") or Path(s).is_file()]
    if swallowed and not args.checkpoints:  # argparse gives every word after --splits to it
        parser.error(
            f"--splits took the checkpoints ({swallowed[0]} ...): put -- before them: --splits dev -- A.ckpt B.ckpt"
        )
    if len(args.checkpoints) < 2:
        parser.error("give two or more checkpoints (an ensemble of one is the model itself)")
    try:
        models = [load_for_inference(path, device="cpu") for path in args.checkpoints]
    except (ValueError, OSError) as err:  # chatft's checkpoint errors are ValueErrors
        sys.exit(f"ensemble_eval.py: {err}")
    labels = (models[0].intent_labels, models[0].slot_labels)
    for path, m in zip(args.checkpoints, models, strict=True):
        if (m.intent_labels, m.slot_labels) != labels:
            sys.exit(f"ensemble_eval.py: {path}: its label lists differ from {args.checkpoints[0]}'s")
    decoders = [slot_decoder_of(m.model) for m in models]
    names = [*args.checkpoints, f"ensemble of {len(models)} (mean logits)"]
    out: dict = {"checkpoints": args.checkpoints, "splits": {}}
    print("| model | split | intent acc | slot F1 | sentence acc |\n| --- | --- | ---: | ---: | ---: |")
    for split in args.splits:
        try:
            examples = read_split(args.data, split)
        except (ValueError, OSError) as err:  # chatft's data errors name the file and line
            sys.exit(f"ensemble_eval.py: {err}")
        words = [ex.words for ex in examples]
        n_words = [len(w) for w in words]
        each = [word_targets(m, words, n_words) for m in models]
        rows = [*each, average_targets(each)]
        deciders = [*decoders, mean_decoder(decoders)]
        out["splits"][split] = []
        for name, targets, decoder in zip(names, rows, deciders, strict=True):
            result = scores(
                [t[0].numpy() for t in targets],
                [None if t[1] is None else t[1].numpy() for t in targets],
                [t[2] for t in targets],
                decoder,
                *labels,
                examples,
            )
            out["splits"][split].append({"model": name, **result})
            f1 = "n/a" if result["slot_f1"] is None else f"{result['slot_f1']:.4f}"
            print(
                f"| {name} | {split} | {result['intent_acc']:.4f} | {f1} | {result['sent_acc']:.4f} |",
                flush=True,
            )
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
