"""The learned tracker in ONNX equals PyTorch on every WOZ 2.0 validation turn; per-turn latency (1 thread)::

    flock /tmp/chatft-cpu.lock python benchmarks/woz_onnx.py CKPT --data_dir DIR --out runs/woz-onnx

``DIR`` is a dialogue folder (``python -m chatft data convert --from woz`` writes one from WOZ 2.0); its
``dev.jsonl`` is WOZ's ``validate`` split. Exports ``CKPT`` with ``python -m chatft export``'s function, then runs
every dialogue turn by turn, one turn per call as a deployed bot does (each turn reads the tracker's own
previous state), with :class:`TrackerPredictor` (PyTorch, ``torch.set_num_threads(1)``) and
:class:`OnnxTracker` (onnxruntime, one intra-op thread). Compares each turn's state, changes and requests, and
times each ``update`` call (tokenization, forward pass and numpy decoding) after 20 warm-up turns. Also gives
both backends' joint goal accuracy against the gold states (the ``val/joint_goal_acc`` that ``validate``
reports). Prints one JSON line; exit 1 when any turn differs.

Result (2026-12-02, 2-vCPU VM): see docs/results.md, "Dialogue state tracking in ONNX".
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def run(tracker, dialogues) -> tuple[list[list], list[float]]:
    """Every dialogue's updates, one turn per call, and each call's seconds."""
    updates, seconds = [], []
    for dialogue in dialogues:
        state: dict = {}
        ups = []
        for turn in dialogue.turns:
            start = time.perf_counter()
            update = tracker.update(state, turn.system, turn.user)
            seconds.append(time.perf_counter() - start)
            ups.append(update)
            state = update.state
        updates.append(ups)
    return updates, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ckpt")
    parser.add_argument("--data_dir", type=Path, required=True, help="a dialogue folder with dev.jsonl")
    parser.add_argument("--split", default="dev", help="dev (WOZ validate) or test")
    parser.add_argument("--out", type=Path, default=Path("runs/woz-onnx"), help="export folder to write")
    parser.add_argument("--limit", type=int, default=None, help="only the first N dialogues (a smoke run)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    from chatft.dialogue.dialogues import read_dialogues
    from chatft.dialogue.dst_scores import turn_score
    from chatft.serving.export import export
    from chatft.serving.onnx_tracker import OnnxTracker
    from chatft.serving.tracker_predictor import TrackerPredictor

    dialogues = read_dialogues(args.data_dir / f"{args.split}.jsonl")[: args.limit]
    start = time.perf_counter()
    folder = export(args.ckpt, str(args.out))
    export_s = time.perf_counter() - start
    backends = {
        "pytorch": TrackerPredictor.from_checkpoint(args.ckpt),
        "onnx": OnnxTracker(folder, threads=1),
    }
    warm = [(t.system, t.user) for d in dialogues for t in d.turns][:20]
    results, latency = {}, {}
    for name, tracker in backends.items():
        tracker.history(warm)
        results[name], seconds = run(tracker, dialogues)
        latency[name] = {
            "p50_ms": round(1000 * percentile(seconds, 50), 2),
            "p90_ms": round(1000 * percentile(seconds, 90), 2),
            "mean_ms": round(1000 * sum(seconds) / len(seconds), 2),
        }
    schema = backends["pytorch"].schema
    turns = same = 0
    joint = {name: 0 for name in backends}
    different = []
    for d, want, got in zip(dialogues, results["pytorch"], results["onnx"], strict=True):
        for i, (turn, w, g) in enumerate(zip(d.turns, want, got, strict=True)):
            turns += 1
            if (w.state, w.changed, w.requests) == (g.state, g.changed, g.requests):
                same += 1
            elif len(different) < 5:
                different.append({"dialogue": d.id, "turn": i, "pytorch": w.state, "onnx": g.state})
            for name, u in (("pytorch", w), ("onnx", g)):
                joint[name] += turn_score(turn.state, u.state, schema.slots, turn.requests, u.requests).joint
    manifest = json.loads((Path(folder) / "manifest.json").read_text(encoding="utf-8"))
    result = {
        "split": args.split,
        "dialogues": len(dialogues),
        "turns": turns,
        "same_turns": same,
        "different": different,
        "joint_goal_acc": {k: round(v / turns, 4) for k, v in joint.items()},
        "latency_1_thread": latency,
        "export_s": round(export_s, 1),
        "max_abs_logit_diff_at_export": manifest["check"]["max_abs_logit_diff_vs_pytorch"],
        "checkpoint": str(args.ckpt),
    }
    print(json.dumps(result), flush=True)
    sys.exit(0 if same == turns else 1)


if __name__ == "__main__":
    main()
