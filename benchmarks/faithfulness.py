"""How faithful are chatft's word attributions? ERASER comprehensiveness and sufficiency, and the cost of explain.

    # faithfulness on a seeded subsample of a test split, every method and the random baseline (5 seeds)
    python benchmarks/faithfulness.py faith --ckpt ATIS.ckpt --data /work/shared/data/atis --n 400
    python benchmarks/faithfulness.py faith --ckpt CLINC.ckpt --data /work/equiv/clinc150 --n 300
    # p50 cost of one explain next to one plain prediction (1 thread; PyTorch, and ONNX with --onnx)
    python benchmarks/faithfulness.py cost --ckpt ATIS.ckpt --onnx ATIS-ONNX --data /work/shared/data/atis
    # real test errors with their attributions (for the guide)
    python benchmarks/faithfulness.py errors --ckpt ATIS.ckpt --data /work/shared/data/atis --n 6

``faith``: for each utterance (the predicted intent explained; out-of-scope gold utterances, ``oos``, left out
as "in scope" asks), ERASER's comprehensiveness (probability drop when the top k % words are removed; higher
is better) and sufficiency (drop when only they are kept; lower is better), averaged over k = 10..50 %
(:func:`chatft.core.attribution.eraser_scores`), then averaged over the utterances; random attributions are
the mean of seeds 0-4. Probabilities are the predictors' (calibrated when the model was). Acceptance (issue 26):
the default method's comprehensiveness >= 2x random's and its sufficiency below random's, on both sets.

Measured 2026-12-02 on the 2-core shared CPU VM (each command under ``flock /tmp/chatft-cpu.lock``; numbers
in docs/results.md, "Word attributions"), all-MiniLM-L6-v2 checkpoints of /work/equiv/after, seed 0:

    ATIS (400 of 893)         occlusion 0.3491 / 0.0093   IG 0.3590 / 0.0186   random 0.0993 / 0.2348
    CLINC150 (300 of 4,500)   occlusion 0.8088 / 0.0959   IG 0.8200 / 0.1126   random 0.3239 / 0.6068
    (comprehensiveness / sufficiency)

    cost, p50 ms, 1 thread, 60 ATIS test utterances: PyTorch predict 15.9, explain occlusion 73.5, explain
    integrated_gradients 1426.1; ONNX predict 8.5, explain occlusion 47.4
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from chatft.core.attribution import eraser_scores, random_scores  # noqa: E402
from chatft.core.formats import read_split  # noqa: E402
from chatft.core.text import join_words  # noqa: E402

RANDOM_SEEDS = (0, 1, 2, 3, 4)


def sample(data: str, n: int, seed: int):
    """A seeded subsample of the test split's in-scope utterances (``oos`` gold intents left out)."""
    examples = [ex for ex in read_split(data, "test") if ex.intent != "oos"]
    rng = np.random.default_rng(seed)
    picked = sorted(rng.choice(len(examples), size=min(n, len(examples)), replace=False).tolist())
    return [examples[i] for i in picked], len(examples)


def faith(args) -> dict:
    import torch

    from chatft.serving.predictor import Predictor

    torch.manual_seed(0)
    predictor = Predictor.from_checkpoint(args.ckpt)
    examples, total = sample(args.data, args.n, args.seed)
    texts = [join_words(list(ex.words))[0] for ex in examples]
    preds = predictor.batch(texts, resolve=False)
    words = [p.words for p in preds]
    labels = predictor.intent_labels
    intents = [labels.index(p.intents_top_k[0][0]) for p in preds]  # the model's best-ranked intent
    scores: dict[str, list[list[float]]] = {}
    seconds: dict[str, float] = {}
    for method in args.methods:
        t0 = time.perf_counter()
        scores[method] = [
            predictor.attribute(w, method, i, [])[0] for w, i in zip(words, intents, strict=True)
        ]
        seconds[method] = time.perf_counter() - t0
    rows = {}

    def measure(all_scores):
        comp, suff = [], []
        for lo in range(0, len(words), 64):
            c, s = eraser_scores(
                words[lo : lo + 64], all_scores[lo : lo + 64], intents[lo : lo + 64], predictor.word_scores
            )
            comp += c
            suff += s
        return float(np.mean(comp)), float(np.mean(suff))

    for method in args.methods:
        comp, suff = measure(scores[method])
        rows[method] = {"comprehensiveness": comp, "sufficiency": suff, "seconds": seconds[method]}
    randoms = [
        measure([random_scores(len(w), 1000 * seed + u) for u, w in enumerate(words)])
        for seed in RANDOM_SEEDS
    ]
    rows["random"] = {
        "comprehensiveness": float(np.mean([c for c, _ in randoms])),
        "sufficiency": float(np.mean([s for _, s in randoms])),
        "per_seed": randoms,
    }
    rnd = rows["random"]
    print(f"{args.data}: {len(examples)} of {total} in-scope test utterances (seed {args.seed})")
    print(
        "| method | comprehensiveness (higher better) | x random | sufficiency (lower better) | attribution s/utt |"
    )
    print("|---|---:|---:|---:|---:|")
    for method, row in rows.items():
        per = f"{row['seconds'] / len(examples):.3f}" if "seconds" in row else "-"
        ratio = row["comprehensiveness"] / rnd["comprehensiveness"]
        print(
            f"| {method} | {row['comprehensiveness']:.4f} | {ratio:.2f} | {row['sufficiency']:.4f} | {per} |"
        )
    return {"data": args.data, "n": len(examples), "of": total, "seed": args.seed, "rows": rows}


def p50_ms(fn, texts, warmup: int = 5) -> float:
    for text in texts[:warmup]:
        fn(text)
    times = []
    for text in texts:
        t0 = time.perf_counter()
        fn(text)
        times.append(1000 * (time.perf_counter() - t0))
    return statistics.median(times)


def cost(args) -> dict:
    import torch

    torch.set_num_threads(1)
    from chatft.serving.predictor import Predictor

    examples, _ = sample(args.data, args.n, args.seed)
    texts = [join_words(list(ex.words))[0] for ex in examples]
    out = {}
    predictor = Predictor.from_checkpoint(args.ckpt)
    out["pytorch predict"] = p50_ms(predictor, texts)
    for method in args.methods:
        out[f"pytorch explain {method}"] = p50_ms(lambda t, m=method: predictor.explain(t, m), texts)
    if args.onnx:
        from chatft.serving.onnx_predictor import OnnxPredictor

        onnx = OnnxPredictor(args.onnx, threads=1)
        out["onnx predict"] = p50_ms(onnx, texts)
        out["onnx explain occlusion"] = p50_ms(lambda t: onnx.explain(t, "occlusion"), texts)
    print(f"p50 ms per utterance, 1 thread, {len(texts)} test utterances of {args.data} (seed {args.seed}):")
    print("| call | p50 ms |")
    print("|---|---:|")
    for name, ms in out.items():
        print(f"| {name} | {ms:.1f} |")
    return out


def errors(args) -> dict:
    """ATIS test utterances whose intent is wrong, with each method's intent scores for the predicted intent
    and for the gold one (printed as word(score) lines)."""
    from chatft.serving.predictor import Predictor

    predictor = Predictor.from_checkpoint(args.ckpt)
    examples = read_split(args.data, "test")
    texts = [join_words(list(ex.words))[0] for ex in examples]
    preds = predictor.batch(texts, resolve=False)
    wrong = [(ex, p) for ex, p in zip(examples, preds, strict=True) if p.intent != ex.intent]
    rng = np.random.default_rng(args.seed)
    picked = sorted(rng.choice(len(wrong), size=min(args.n, len(wrong)), replace=False).tolist())
    print(
        f"{len(wrong)} of {len(examples)} test utterances have a wrong intent; {len(picked)} picked (seed {args.seed})"
    )
    out = []
    for k in picked:
        ex, pred = wrong[k]
        entry = {"text": pred.text, "gold": ex.intent, "predicted": pred.intent, "explanations": {}}
        print(f"\n{pred.text!r}: gold {ex.intent}, predicted {pred.intent} ({pred.intent_confidence:.3f})")
        for method in args.methods:
            for intent in (None, ex.intent if ex.intent in predictor.intent_labels else None):
                if intent is None and entry["explanations"].get(method):
                    continue
                e = predictor.explanation(pred, method, intent)["intent"]
                shown = " ".join(f"{w}({s:+.2f})" for w, s in zip(pred.words, e["scores"], strict=True))
                print(f"  {method:>20} {e['name']} ({e['probability']:.3f}): {shown}")
                entry["explanations"].setdefault(method, []).append(e)
        out.append(entry)
    return {"errors": out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("faith", "cost", "errors"))
    parser.add_argument("--ckpt", required=True, help="checkpoint written by fit")
    parser.add_argument("--data", required=True, help="data folder with a test split")
    parser.add_argument("--onnx", help="export folder of the same checkpoint (cost only)")
    parser.add_argument(
        "--n", type=int, default=400, help="utterances (a seeded subsample of the test split)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--methods", nargs="+", default=["occlusion", "integrated_gradients"])
    parser.add_argument("--json", help="also write the numbers here")
    args = parser.parse_args()
    result = {"faith": faith, "cost": cost, "errors": errors}[args.what](args)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
