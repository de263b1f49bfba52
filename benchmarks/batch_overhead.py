"""How much of ``OnnxPredictor.batch`` is the model: session.run time vs everything else, per export folder.

    python benchmarks/batch_overhead.py exports/atis exports/atis-3layers --data ../shared/data/atis

Runs ``predictor.batch(test texts, batch_size=32)`` with 2 intra-op threads ``--repeats`` times,
round-robin over the folders, and prints for each the median wall time of a pass, the median time inside
``session.run``, and the rest: splitting words, tokenizing, padding, numpy decoding and building the
``Prediction`` objects, work that does not shrink with the encoder's layers. ``--profile`` adds a cProfile
of one pass of the last folder (cumulative time of the chatft functions). Torch-free, trains nothing.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", help="export folders (python -m chatft export)")
    parser.add_argument("--data", required=True, help="data folder with a test split")
    parser.add_argument("--repeats", type=int, default=7, help="timed passes per folder (median reported)")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of one pass")
    args = parser.parse_args(argv)

    from chatft.core.formats import read_split
    from chatft.serving.onnx_predictor import OnnxPredictor

    texts = [" ".join(e.words) for e in read_split(args.data, "test")]
    predictors = {f: OnnxPredictor(f, threads=2) for f in args.folders}
    inside = dict.fromkeys(args.folders, 0.0)
    for folder, predictor in predictors.items():
        run = predictor.session.run

        def timed(*a, _run=run, _folder=folder, **k):
            t0 = time.perf_counter()
            out = _run(*a, **k)
            inside[_folder] += time.perf_counter() - t0
            return out

        predictor.session.run = timed
        predictor.batch(texts[:64], batch_size=32)  # warm-up
    walls: dict[str, list[float]] = {f: [] for f in args.folders}
    runs: dict[str, list[float]] = {f: [] for f in args.folders}
    for _ in range(args.repeats):
        for folder, predictor in predictors.items():
            inside[folder] = 0.0
            t0 = time.perf_counter()
            predictor.batch(texts, batch_size=32)
            walls[folder].append(time.perf_counter() - t0)
            runs[folder].append(inside[folder])
    report = {}
    for folder in args.folders:
        wall, run = statistics.median(walls[folder]), statistics.median(runs[folder])
        report[folder] = {
            "wall_ms": 1000 * wall,
            "session_run_ms": 1000 * run,
            "rest_ms": 1000 * (wall - run),
        }
        print(
            f"{folder}: {len(texts)} utterances, pass {1000 * wall:.0f} ms, session.run {1000 * run:.0f} ms, "
            f"rest {1000 * (wall - run):.0f} ms ({100 * (wall - run) / wall:.1f} %), {len(texts) / wall:.0f} utt/s"
        )
    if args.profile:
        profile = cProfile.Profile()
        profile.enable()
        predictors[args.folders[-1]].batch(texts, batch_size=32)
        profile.disable()
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(r"chatft|encode_batch", 25)
        print(out.getvalue())
    return report


if __name__ == "__main__":
    main()
