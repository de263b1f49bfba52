"""What a CRF costs at serving time, and what the batched forward-backward saved: an ONNX export of a CRF model.

    python benchmarks/crf_decoding.py --onnx runs/atis-crf-onnx

A CRF model's tag confidences are posterior marginals from forward-backward
(:meth:`chatft.core.decoding.SlotDecoder.probabilities_batch`). Until 2026-12-03 that ran in log space, one
utterance at a time, with T x T exponentials per word (ATIS: 121 tags); it now runs batched in probability
space with per-word scaling (``_crf_marginals_batch``). This script times both on the same export, in the
same process, round-robin (old, new, old, new ...; each reports its median) so the machine's drift hits both:

* ``decode only``: ``probabilities_batch`` on the graph's slot logits of every ``--text`` utterance, in
  batches of ``--batch-size`` (the graph runs once, untimed);
* ``predictor.batch``: :class:`~chatft.serving.onnx_predictor.OnnxPredictor` end to end (tokenize, graph,
  decoding, result assembly), utterances per second, ``--threads`` onnxruntime threads.

It also prints how far apart the two are (marginals, slot confidences) and whether tags and slots agree. Torch-free.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from chatft.core.decoding import SlotDecoder, _crf_marginals  # noqa: E402
from chatft.core.features import pad_batch, tokenize_examples  # noqa: E402
from chatft.serving.onnx_predictor import OnnxPredictor  # noqa: E402

ATIS_TEST = REPO.parent / "shared/data/atis/test/seq.in"


def log_space_one_by_one(self: SlotDecoder, emissions: np.ndarray, lengths) -> np.ndarray:
    """The code this replaced: log-space forward-backward, one utterance at a time."""
    em = np.asarray(emissions, dtype=np.float64)
    out = np.zeros(em.shape)
    for b, n in enumerate(np.asarray(lengths).tolist()):
        out[b, :n] = _crf_marginals(em[b, :n], self.start, self.trans, self.end)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--onnx", type=Path, required=True, help="export folder of a CRF model")
    parser.add_argument("--text", type=Path, default=ATIS_TEST, help="one utterance per line (ATIS test)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    predictor = OnnxPredictor(args.onnx, threads=args.threads)
    decoder = predictor.decoder.slots
    if decoder is None or decoder.mode != "crf":
        sys.exit(f"{args.onnx}: not a CRF model (decoding mode {getattr(decoder, 'mode', 'none')})")
    texts = [line for line in args.text.read_text(encoding="utf-8").splitlines() if line.strip()]
    batches = []
    for i in range(0, len(texts), args.batch_size):
        words = [t.split() for t in texts[i : i + args.batch_size]]
        features = tokenize_examples(predictor.tokenizer, words, predictor.max_length)
        _, slot_logits, _ = predictor.logits(pad_batch(features, predictor.pad_id))
        lengths = np.array([min(len(w), slot_logits.shape[1]) for w in words])
        batches.append((np.asarray(slot_logits[:, : lengths.max()], dtype=np.float64), lengths))

    new = SlotDecoder.probabilities_batch
    variants = {"log space, one by one (before)": log_space_one_by_one, "batched, scaled (now)": new}
    worst = max(
        float(np.abs(log_space_one_by_one(decoder, em, n) - new(decoder, em, n)).max()) for em, n in batches
    )
    results: dict[str, dict[str, list[float]]] = {name: {"decode": [], "batch": []} for name in variants}
    answers = {}
    try:
        for _ in range(args.repeats):
            for name, fn in variants.items():
                SlotDecoder.probabilities_batch = fn
                start = time.perf_counter()
                for em, n in batches:
                    decoder.probabilities_batch(em, n)
                results[name]["decode"].append(time.perf_counter() - start)
                start = time.perf_counter()
                answers[name] = predictor.batch(texts, batch_size=args.batch_size)
                results[name]["batch"].append(len(texts) / (time.perf_counter() - start))
    finally:
        SlotDecoder.probabilities_batch = new
    (a, b) = answers.values()
    same_tags = all(x.tags == y.tags and x.intent == y.intent for x, y in zip(a, b, strict=True))
    same_slots = all(
        [s.label for s in x.slots] == [s.label for s in y.slots] for x, y in zip(a, b, strict=True)
    )
    conf = max(
        (
            abs(s.confidence - t.confidence)
            for x, y in zip(a, b, strict=True)
            for s, t in zip(x.slots, y.slots, strict=False)  # equal lengths where same_slots
        ),
        default=0.0,
    )
    print(
        f"{len(texts)} utterances, {len(decoder.start)} tags, batch {args.batch_size}, {args.threads} threads"
    )
    print("| decoding | decode only, all utterances (ms) | OnnxPredictor.batch (utt/s) |")
    print("| --- | ---: | ---: |")
    for name, r in results.items():
        print(
            f"| {name} | {1000 * statistics.median(r['decode']):.1f} | {statistics.median(r['batch']):.0f} |"
        )
    print(
        f"max |marginal difference| {worst:.1e}; same tags and intents: {same_tags}; same slots: {same_slots}; "
        f"max slot confidence difference {conf:.1e}"
    )


if __name__ == "__main__":
    main()
