"""Convert CLINC150 ``data_full.json`` into chatft's intent-only JSON Lines layout.

    python scripts/clinc_to_jsonl.py ../shared/data/clinc150/data_full.json /work/runs/clinc150

Writes ``train.jsonl`` (train + oos_train), ``dev.jsonl`` (val + oos_val) and ``test.jsonl`` (test + oos_test),
one ``{"words": [...], "intent": "..."}`` per line (no ``tags``: intent-only). Words come from
:func:`chatft.core.text.split_words`, the splitter ``predict`` applies to raw text, so training and inference
see the same words. Out-of-scope utterances keep CLINC's label ``oos`` (chatft's default ``--data.oos_label``).
A stop-gap until ``data convert --from clinc`` lands; torch-free.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from chatft.core.text import split_words

SPLITS = {"train": ("train", "oos_train"), "dev": ("val", "oos_val"), "test": ("test", "oos_test")}


def convert(source: Path, out: Path) -> dict[str, int]:
    data = json.loads(source.read_text(encoding="utf-8"))
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name, parts in SPLITS.items():
        rows = [(text, intent) for part in parts for text, intent in data[part]]
        with (out / f"{name}.jsonl").open("w", encoding="utf-8") as f:
            for text, intent in rows:
                words = [w for w, _, _ in split_words(text)]
                f.write(json.dumps({"words": words, "intent": intent}, ensure_ascii=False) + "\n")
        counts[name] = len(rows)
    return counts


if __name__ == "__main__":
    print(convert(Path(sys.argv[1]), Path(sys.argv[2])))
