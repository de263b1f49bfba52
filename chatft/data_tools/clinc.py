"""CLINC150 (``data_full.json``): ``train``/``val``/``test`` and ``oos_*`` lists of ``[text, intent]``.

Its own splits are kept (``val`` becomes dev) and the out-of-scope lists are merged into them with the
label ``oos`` (after the in-scope examples, in file order); nothing is carved. Records are named
``file: key[i]``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from chatft.core.errors import DataFormatError
from chatft.data_tools.rasa_json import load_json
from chatft.data_tools.records import Record

#: CLINC key -> chatft split; ``oos_<key>`` holds the out-of-scope examples of the same split.
SPLIT_KEYS = {"train": "train", "val": "dev", "test": "test"}
OOS_LABEL = "oos"


def read(path: Path, notes: Counter) -> list[Record]:
    data = load_json(path)
    if not isinstance(data, dict) or not all(k in data for k in SPLIT_KEYS):
        raise DataFormatError(
            f"{path}: expected CLINC150's JSON with train, val and test lists (data_full.json)"
        )
    records = []
    for key, split in SPLIT_KEYS.items():
        for source in (key, f"oos_{key}"):
            rows = data.get(source, [])
            if not isinstance(rows, list):
                raise DataFormatError(f"{path}: {source!r} must be a list of [text, intent] pairs")
            for i, row in enumerate(rows):
                where = f"{path}: {source}[{i}]"
                if not (isinstance(row, list) and len(row) == 2 and all(isinstance(x, str) for x in row)):
                    raise DataFormatError(f"{where}: expected a [text, intent] pair of strings")
                intent = OOS_LABEL if source.startswith("oos_") else row[1]
                records.append(Record(row[0], intent, None, where, split))
            if source.startswith("oos_"):
                notes[f"{source} examples (label {OOS_LABEL!r})"] += len(rows)
    return records
