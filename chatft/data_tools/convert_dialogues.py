"""``python -m chatft data convert --from woz``: WOZ 2.0 / DSTC2 JSON -> a dialogue folder.

The folder (:mod:`chatft.dialogue.dialogues`) gets ``train.jsonl``, ``dev.jsonl``, ``test.jsonl`` when there is
a test split, and ``schema.json`` (the ontology's slots and values, or, without ``--ontology``, the slots seen in
the data with open values). Example::

    python -m chatft data convert --from woz --train ../shared/data/woz2/train.json \\
        --dev ../shared/data/woz2/validate.json --ontology ../shared/data/woz2/ontology.json --output data/woz

Splits: ``--train/--dev/--test`` per split, or ``--input`` for all of them; a dev split not given is carved
from train, and with ``--input`` a test split too (:mod:`chatft.data_tools.carve`, seeded; a dialogue is
carved whole). A ``--train`` without ``--test`` is not carved a test split: a benchmark keeps its test set
aside (WOZ 2.0 does), and the dialogue format's test split is optional.

Every input file is read and checked before anything is written, and the files are written into a temporary
folder next to the output and then moved in: malformed input ends in one line naming the file and the
dialogue/turn, exit 2, and leaves the output folder as it was.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from chatft.core.errors import ConfigError, DataFormatError
from chatft.core.formats import SPLITS
from chatft.data_tools.carve import carve, parse_fractions
from chatft.data_tools.notes import summary_lines
from chatft.data_tools.sources import files_in
from chatft.data_tools.woz import read_ontology, read_woz, schema_from_dialogues
from chatft.dialogue.dialogues import (
    SCHEMA_FILE,
    SPLIT_FILES,
    Dialogue,
    Schema,
    write_dialogues,
    write_schema,
)

__all__ = ["DialogueConvertResult", "convert_woz", "print_dialogue_summary"]


@dataclass
class DialogueConvertResult:
    """What ``convert --from woz`` wrote: the dialogues of each split, the schema, the reader's notes."""

    splits: dict[str, list[Dialogue]]
    schema: Schema
    notes: Counter
    files: dict[str, Path] = field(default_factory=dict)


def _read(
    paths: list[str], prefix: str | None, schema: Schema | None, notes: Counter, seen: dict[str, Path]
) -> list[Dialogue]:
    """The dialogues of every file in ``paths``; ids ``{prefix}-{dialogue_idx}`` (the file's stem when
    ``prefix`` is None, or when one split has several files). ``seen``: id -> file, across every split."""
    files = [f for p in paths for f in files_in(Path(p).expanduser(), (".json",))]
    out: list[Dialogue] = []
    for path in files:
        name = prefix if prefix is not None and len(files) == 1 else path.stem
        for d in read_woz(path, name, schema, notes):
            if d.id in seen:
                raise DataFormatError(
                    f"{path}: dialogue id {d.id!r} already read from {seen[d.id]} (a dialogue_idx used twice, or "
                    "two input files with the same name)"
                )
            seen[d.id] = path
            out.append(d)
    return out


def _write(out: Path, result: DialogueConvertResult) -> None:
    """Write every file into a temporary folder beside ``out``, then move them in (a stale test split goes)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        for split, dialogues in result.splits.items():
            if dialogues:
                write_dialogues(tmp / SPLIT_FILES[split], dialogues)
        write_schema(tmp / SCHEMA_FILE, result.schema)
        out.mkdir(exist_ok=True)
        for split in SPLITS:
            target = out / SPLIT_FILES[split]
            if (tmp / SPLIT_FILES[split]).exists():
                os.replace(tmp / SPLIT_FILES[split], target)
                result.files[split] = target
            elif target.exists():
                target.unlink()  # a stale split from an earlier run would be read as this data's
        os.replace(tmp / SCHEMA_FILE, out / SCHEMA_FILE)
        result.files["schema"] = out / SCHEMA_FILE
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def convert_woz(
    output: str,
    input: list[str] | None = None,
    train: list[str] | None = None,
    dev: list[str] | None = None,
    test: list[str] | None = None,
    split: str | None = None,
    seed: int = 0,
    ontology: str | None = None,
    quiet: bool = False,
) -> DialogueConvertResult:
    """Convert WOZ 2.0 / DSTC2 JSON to a dialogue folder and print a summary (see the module docstring)."""
    if input and (train or dev or test):
        raise ConfigError("give --input (all splits from it) or --train/--dev/--test, not both")
    if not input and not train:
        raise ConfigError("nothing to convert: give --input FILE... or --train FILE...")
    out = Path(output).expanduser()
    if (
        (out / "train" / "seq.in").exists()
        or (out / "train.tsv").exists()
        or ((out / SPLIT_FILES["train"]).exists() and not (out / SCHEMA_FILE).exists())
    ):
        raise ConfigError(
            f"{out}: already holds NLU data (train.jsonl without schema.json); choose a new folder"
        )
    schema = read_ontology(Path(ontology).expanduser()) if ontology else None
    notes: Counter = Counter()
    seen: dict[str, Path] = {}
    if input:
        sources = {"train": _read(input, None, schema, notes, seen)}
    else:
        sources = {
            s: _read(paths, s, schema, notes, seen)
            for s, paths in zip(SPLITS, (train, dev, test), strict=True)
            if paths
        }
    if not sources["train"]:
        raise ConfigError("no training dialogues: the train input is an empty list")
    carved = [s for s in SPLITS[1:] if s not in sources and (s == "dev" or input)]
    if carved:
        names = ["train", *carved]
        fractions = parse_fractions(split or ("0.8,0.1,0.1" if len(carved) == 2 else "0.9,0.1"), names)
        pool = sources["train"]
        parts = carve(["dialogue"] * len(pool), fractions, seed)
        sources = {
            **sources,
            **{name: [pool[i] for i in idx] for name, idx in zip(names, parts, strict=True)},
        }
    elif split is not None:
        raise ConfigError("--split: dev (and test, with --input) were given, so there is nothing to carve")
    splits = {s: sources[s] for s in SPLITS if s in sources}
    if schema is None:
        schema = schema_from_dialogues([d for ds in splits.values() for d in ds])
    result = DialogueConvertResult(splits, schema, notes)
    _write(out, result)
    if not quiet:
        print_dialogue_summary(result, sys.stdout)
    return result


def print_dialogue_summary(result: DialogueConvertResult, stream) -> None:
    """One line per split, one for the schema, then the reader's notes (what it could not place)."""
    for s in SPLITS:
        dialogues = result.splits.get(s, [])
        where = f" -> {result.files[s]}" if s in result.files else " (empty: not written)"
        turns = sum(len(d.turns) for d in dialogues)
        print(f"{s}: {len(dialogues)} dialogues, {turns} turns{where}", file=stream)
    informable = ", ".join(
        f"{slot} ({'open' if values is None else f'{len(values)} values'})"
        for slot, values in result.schema.informable.items()
    )
    requestable = ", ".join(result.schema.requestable) or "none"
    print(
        f"schema: informable {informable}; requestable {requestable} -> {result.files['schema']}", file=stream
    )
    for line in summary_lines(result.notes):
        print(line, file=stream)
