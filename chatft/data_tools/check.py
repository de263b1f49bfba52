"""``python -m chatft data check DIR``: the validation ``fit`` runs on a data folder, without training.

Exit 0 and one summary line when the data would train (warnings, such as a missing test split, printed
too); exit 2 with one ``file:line`` line when ``fit`` would refuse it. Rasa data (``data/nlu.yml``, a Rasa
project folder) is converted as ``fit`` converts it (:mod:`chatft.data_tools.ingest`), into a temporary
folder, and that is checked; the conversion's summary (splits, notes, warnings) goes to stderr. A dialogue
folder (``schema.json`` beside the splits) is checked by :mod:`chatft.data_tools.dialogue_check`.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from chatft.core.tags import entity_types
from chatft.data_tools.dataset import FOLDER_ARGUMENT, Dataset, read_dataset
from chatft.data_tools.dialogue_check import check_dialogues
from chatft.data_tools.dialogue_folder import DialogueFolder
from chatft.data_tools.ingest import convert_into, rasa_input
from chatft.data_tools.notes import summary_lines
from chatft.dialogue.dialogues import is_dialogue_folder


def check(data_dir: str) -> Dataset | DialogueFolder:
    """Check a data folder as ``fit`` would (format, every split, tags, slots in all splits or none).

    Args:
        data_dir: Folder with the data (jointbert, tsv or jsonl layout), Rasa data (nlu.yml, a project), or a
            dialogue folder (with ``schema.json``: values, slots and requests against the schema, ids, removals).
    """
    path = Path(data_dir).expanduser()
    if is_dialogue_folder(path):
        return check_dialogues(data_dir)
    if rasa_input(path) is not None:
        return _check_rasa(data_dir)
    data = read_dataset(data_dir, FOLDER_ARGUMENT)
    _report(data, str(data.data_dir), data.format)
    return data


def _check_rasa(data_dir: str) -> Dataset:
    """Convert as ``fit`` would, into a temporary folder, and check what came out."""
    fmt, source = rasa_input(Path(data_dir).expanduser())
    with tempfile.TemporaryDirectory() as tmp:
        folder, result = convert_into(fmt, source, tmp)
        for line in [*summary_lines(result.notes), *(f"warning: {w}" for w in result.warnings)]:
            print(line, file=sys.stderr)
        data = read_dataset(folder)
        _report(data, data_dir, f"{fmt}, converted as fit converts it")
    return data


def _report(data: Dataset, name: str, fmt: str) -> None:
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
    print(f"ok: {name} ({fmt}): {sizes} examples; {intents} intents{slots} in train")
