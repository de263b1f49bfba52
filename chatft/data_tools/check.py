"""``python -m chatft data check DIR``: the validation ``fit`` runs on a data folder, without training.

Exit 0 and one summary line when the data would train (warnings, such as a missing test split, printed
too); exit 2 with one ``file:line`` line when ``fit`` would refuse it.
"""

from __future__ import annotations

import sys

from chatft.core.tags import entity_types
from chatft.data_tools.dataset import Dataset, read_dataset


def check(data_dir: str) -> Dataset:
    """Check a data folder as ``fit`` would (format, every split, tags, slots in all splits or none).

    Args:
        data_dir: Folder with the data (jointbert, tsv or jsonl layout).
    """
    data = read_dataset(data_dir)
    for warning in data.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    train = data.splits["train"]
    sizes = ", ".join(f"{s} {len(exs)}" for s, exs in data.splits.items())
    intents = len({ex.intent for ex in train})
    slots = (
        f", {len(entity_types(t for ex in train for t in ex.tags or ()))} slot types"
        if data.has_slots
        else ""
    )
    print(f"ok: {data.data_dir} ({data.format}): {sizes} examples; {intents} intents{slots} in train")
    return data
