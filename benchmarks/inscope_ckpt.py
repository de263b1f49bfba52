"""Copy a run's best checkpoint without its out-of-scope decision, so ``test`` reports plain in-scope accuracy.

    python benchmarks/inscope_ckpt.py RUN_ROOT        # writes RUN_ROOT/inscope.ckpt

``fit`` fits a fallback on dev (confidence and margin thresholds) and ``test`` counts an utterance it rejects
as wrong. The few-shot CLINC150 folders (``benchmarks/clinc_fewshot.py``) have no out-of-scope utterances and
their target metric is in-scope accuracy (the share of in-scope test utterances whose highest-scoring intent
is right), so the decision (the checkpoint's ``chatft_oos`` entry) is dropped; the weights are unchanged and
the temperature never changes the argmax. (``fit --oos.fallback false`` gives the same from the start.)
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch


def main(root: Path) -> Path:
    best = sorted(root.glob("lightning_logs/version_*/checkpoints/best-*.ckpt"))[-1]
    ckpt = torch.load(best, map_location="cpu", weights_only=False)
    ckpt.pop("chatft_oos", None)
    out = root / "inscope.ckpt"
    torch.save(ckpt, out)
    print(f"stripped {best} -> {out}")
    return out


if __name__ == "__main__":
    main(Path(sys.argv[1]))
