"""``python -m chatft data convert``: other formats -> chatft's JSON Lines layout ``DIR/{train,dev,test}.jsonl``.

Rasa inputs also give ``DIR/entities.json`` (synonyms, regexes, lookup tables: :mod:`chatft.core.entity_resources`),
which ``fit`` embeds in the checkpoint.

Inputs come as ``--input PATH...`` (every split carved from them, or taken from the file for formats that
carry splits, like CLINC150) or per split as ``--train PATH... [--dev PATH...] [--test PATH...]``; a split
not given is carved from train, stratified by intent (:mod:`chatft.data_tools.carve`). Every example lands
in exactly one split, in input order; only texts that are empty after stripping are dropped (and counted).
Example::

    python -m chatft data convert --from rasa-yaml --input data/nlu.yml --output data/chatft
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from chatft.core.entity_resources import ENTITIES_FILE, EntityResources
from chatft.core.errors import ConfigError
from chatft.core.formats import SPLITS, Example
from chatft.core.oos_pool import POOL_INTENT, pool_utterances, pool_words
from chatft.core.tags import bio_chunks
from chatft.data_tools import brackets, clinc, columns, csv_table, rasa_json, rasa_yaml, spans_jsonl
from chatft.data_tools.carve import MIN_DEV_UTTERANCES, carve, parse_fractions
from chatft.data_tools.notes import summary_lines
from chatft.data_tools.records import Record, SpanReport, to_example

#: ``--from`` values and what each reads (docs/guides/your-data.md shows each).
FORMATS = ("rasa-yaml", "rasa-json", "brackets", "spans-jsonl", "csv", "clinc", "columns")


@dataclass
class ConvertResult:
    """What ``convert`` wrote: the examples of each split, the span report, the readers' notes and warnings."""

    splits: dict[str, list[Example]]
    report: SpanReport
    notes: Counter
    files: dict[str, Path] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: Synonyms, regexes and lookup tables written to ``entities.json`` (None: none in the input).
    entities: EntityResources | None = None


def _reader(
    fmt: str, options: dict, resources: EntityResources | None = None
) -> Callable[[Path, Counter], list[Record]]:
    """The reader of ``fmt`` with the options it takes (an option it does not take is a one-line error);
    the Rasa readers add their synonyms, regexes and lookup tables to ``resources``."""
    takes = {
        "rasa-yaml": (rasa_yaml.read, ("roles", "lenient")),
        "rasa-json": (rasa_json.read, ("roles",)),
        "brackets": (brackets.read, ("column", "intent_column", "intent", "lenient")),
        "spans-jsonl": (spans_jsonl.read, ("column", "intent_column", "intent")),
        "csv": (csv_table.read, ("text_column", "label_column", "delimiter")),
        "clinc": (clinc.read, ()),
        "columns": (columns.read, ("intent",)),
    }
    if fmt not in takes:
        raise ConfigError(f"--from {fmt!r}: unknown format; expected one of {', '.join(FORMATS)}")
    read, allowed = takes[fmt]
    given = {k: v for k, v in options.items() if v is not None and v is not False}
    extra = sorted(set(given) - set(allowed))
    if extra:
        flags = ", ".join("--" + k.replace("_", "-") for k in extra)
        raise ConfigError(f"{flags}: not an option of --from {fmt}")
    if fmt in ("rasa-yaml", "rasa-json") and resources is not None:
        given["resources"] = resources
    return partial(read, **given)


def _read_all(read, paths: list[str] | None, notes: Counter) -> list[Record]:
    return [r for p in paths or [] for r in read(Path(p).expanduser(), notes)]


def _default_fractions(carved: list[str]) -> str:
    return "0.8,0.1,0.1" if len(carved) == 2 else "0.9,0.1"


def _slot_types(examples: list[Example]) -> set[str]:
    return {typ for ex in examples for typ, _, _ in bio_chunks(ex.tags or ())}


def dev_warnings(
    examples: dict[str, list[Example]], carved: list[str], pool_size: int, split_given: bool = False
) -> list[str]:
    """One line when the dev split is too small to choose a checkpoint on (see ``MIN_DEV_UTTERANCES``).

    An empty dev split is only worth a line when it was carved by the default fractions (a ``--split`` with
    no dev asked for it).
    """
    n = len(examples.get("dev", []))
    if n >= MIN_DEV_UTTERANCES:
        return []
    origin = f" carved from {pool_size}" if "dev" in carved else ""
    if n == 0:
        if "dev" not in carved or split_given:
            return []
        return [
            f"dev: 0 utterances{origin}: fit needs a dev split (give one with --dev, a larger --split, or train "
            "without validation: --trainer.limit_val_batches 0)"
        ]
    return [
        f"dev: {n} utterance{'s' if n != 1 else ''}{origin} (fewer than {MIN_DEV_UTTERANCES}): checkpoint choice, "
        f"early stopping and calibration on so few are noisy (one utterance = {100 / n:.1f} points of dev "
        "accuracy)"
    ]


def write_jsonl(path: Path, examples: list[Example]) -> None:
    """One ``{"words", "tags", "intent"}`` object per line (``tags`` left out for intent-only data)."""
    with path.open("w", encoding="utf-8", newline="\n") as f:
        for ex in examples:
            obj = {"words": list(ex.words)}
            if ex.tags is not None:
                obj["tags"] = list(ex.tags)
            obj["intent"] = ex.intent
            f.write(json.dumps(obj, ensure_ascii=False) + "\n")


def convert(
    from_: str,
    output: str,
    input: list[str] | None = None,
    train: list[str] | None = None,
    dev: list[str] | None = None,
    test: list[str] | None = None,
    split: str | None = None,
    seed: int = 0,
    strict_spans: bool = False,
    roles: str | None = None,
    column: str | None = None,
    intent_column: str | None = None,
    intent: str | None = None,
    text_column: str | None = None,
    label_column: str | None = None,
    delimiter: str | None = None,
    lenient: bool = False,
    oos_pool: bool = False,
    quiet: bool = False,
) -> ConvertResult:
    """Convert annotated data to ``output/{train,dev,test}.jsonl`` and print a summary.

    Args:
        from_: Input format: rasa-yaml, rasa-json, brackets, spans-jsonl (doccano, Label Studio), csv, clinc,
            columns (CoNLL-style token/tag rows, BIO or BIOES; intents from ``# intent: X`` or ``FILE.intent``).
        output: Folder to write ``train.jsonl``, ``dev.jsonl``, ``test.jsonl`` into (made if missing).
        input: Files or folders to carve every split from (or that carry their own splits, like CLINC150).
        train: Files or folders of the training split (instead of ``input``).
        dev: Files or folders of the dev split (carved from train when not given).
        test: Files or folders of the test split (carved from train when not given).
        split: Fractions for carving, train first: ``0.8,0.1,0.1`` when dev and test are carved, ``0.9,0.1``
            when only one is.
        seed: Seed of the carving (same seed, same splits).
        strict_spans: Make a span that does not fall on word boundaries an error instead of snapping it to
            the words it overlaps, and nested or overlapping spans an error instead of keeping the longer one.
        roles: rasa-yaml/rasa-json: ``drop`` (default) or ``keep`` entity roles (kept as ``entity.role``).
        column: brackets: the annotated text's column or key; spans-jsonl: the text's key.
        intent_column: brackets/spans-jsonl: the intent's column or key.
        intent: brackets/spans-jsonl/columns: a fixed intent for every utterance (when the input has none).
        text_column: csv: the text column's name (or 1-based number).
        label_column: csv: the label column's name (or 1-based number).
        delimiter: csv: the delimiter (sniffed when not given; ``tab`` for a tab).
        lenient: rasa-yaml/brackets: keep a broken annotation (``[50(amount)``, ``{"entity": ...}`` without
            ``[text]``) as literal words and warn, instead of stopping with an error.
        oos_pool: Add chatft's 200 generic out-of-scope utterances (CLINC150's ``oos_train`` and ``oos_val``,
            CC BY 3.0) to the training split as the intent ``oos``, so the model learns to reject messages
            unlike any of the data's intents (dev and test stay the data's own).
        quiet: Print nothing (the result is returned).
    """
    resources = EntityResources()
    read = _reader(
        from_,
        {
            "roles": roles,
            "column": column,
            "intent_column": intent_column,
            "intent": intent,
            "text_column": text_column,
            "label_column": label_column,
            "delimiter": delimiter,
            "lenient": lenient,
        },
        resources,
    )
    if input and (train or dev or test):
        raise ConfigError("give --input (all splits from it) or --train/--dev/--test, not both")
    if not input and not train:
        raise ConfigError("nothing to convert: give --input PATH... or --train PATH...")
    notes: Counter = Counter()
    if input:
        records = _read_all(read, input, notes)
        own = [r for r in records if r.split is not None]
        sources = {s: [r for r in own if r.split == s] for s in SPLITS} if own else {"train": records}
    else:
        if from_ == "clinc":
            raise ConfigError("--from clinc reads its own splits: give --input data_full.json")
        sources = {
            s: _read_all(read, paths, notes)
            for s, paths in zip(SPLITS, (train, dev, test), strict=True)
            if paths
        }
    report = SpanReport()
    examples = {
        s: [ex for ex in (to_example(r, report, strict_spans) for r in recs) if ex is not None]
        for s, recs in sources.items()
    }
    if not examples.get("train"):
        raise ConfigError("no training examples: the train input has no utterances")
    carved = [s for s in SPLITS[1:] if s not in sources]
    pool_size = len(examples["train"])
    if carved:
        names = ["train", *carved]
        fractions = parse_fractions(split or _default_fractions(carved), names)
        pool = examples["train"]
        parts = carve([ex.intent for ex in pool], fractions, seed)
        for name, idx in zip(names, parts, strict=True):
            examples[name] = [pool[i] for i in idx]
    elif split is not None:
        raise ConfigError("--split: every split was given, so there is nothing to carve")
    # Slot tags everywhere or nowhere: data without a single slot annotation is written intent-only.
    if all(ex.tags is not None for exs in examples.values() for ex in exs) and not any(
        _slot_types(exs) for exs in examples.values()
    ):
        examples = {s: [Example(ex.words, None, ex.intent) for ex in exs] for s, exs in examples.items()}
        if from_ not in ("csv", "clinc"):
            notes["no slot annotations anywhere: written intent-only (no tags)"] += 1
    if oos_pool:
        examples["train"] = examples["train"] + pool_examples(examples["train"])
        added = f"generic out-of-scope utterances added to train as intent {POOL_INTENT!r} (--oos-pool)"
        notes[added] += len(pool_utterances())
    out = Path(output).expanduser()
    if (out / "train" / "seq.in").exists() or (out / "train.tsv").exists():
        raise ConfigError(
            f"{out}: already holds data in another layout (train/seq.in or train.tsv); choose a new folder"
        )
    out.mkdir(parents=True, exist_ok=True)
    result = ConvertResult(
        examples, report, notes, warnings=dev_warnings(examples, carved, pool_size, split is not None)
    )
    for s in SPLITS:
        path = out / f"{s}.jsonl"
        if examples.get(s):
            write_jsonl(path, examples[s])
            result.files[s] = path
        elif path.exists():
            path.unlink()  # a stale split from an earlier run would be read as this data's
    write_entities(result, resources, out)
    if not quiet:
        print_summary(result, sys.stdout)
    return result


def pool_examples(train: list[Example]) -> list[Example]:
    """The shipped out-of-scope utterances as training examples shaped like ``train``'s (all-``O`` tags when
    ``train`` has tags, none when it is intent-only)."""
    tagged = any(ex.tags is not None for ex in train)
    out = []
    for words in map(tuple, pool_words()):
        out.append(Example(words, tuple("O" for _ in words) if tagged else None, POOL_INTENT))
    return out


def write_entities(result: ConvertResult, resources: EntityResources, out: Path) -> None:
    """``out/entities.json`` with the Rasa synonyms, regexes and lookup tables (removed when there are none, so
    a stale one is not embedded by ``fit``); regexes and lookups named like no slot type are noted: Rasa's
    RegexEntityExtractor and chatft use only those named like an entity of the examples."""
    path = out / ENTITIES_FILE
    if not resources:
        path.unlink(missing_ok=True)
        return
    types = set().union(*(_slot_types(exs) for exs in result.splits.values()))
    for name in dict.fromkeys([n for n, _ in resources.regexes] + [n for n, _ in resources.lookups]):
        if name not in types:
            result.notes[
                f"regex/lookup {name!r}: no slot of that type in the examples (not used, as in Rasa)"
            ] += 1
    result.files["entities"] = resources.save(out)
    result.entities = resources


def print_summary(result: ConvertResult, stream) -> None:
    """One line per split, then what happened to spans and texts, and the readers' notes."""
    for s in SPLITS:
        exs = result.splits.get(s, [])
        where = f" -> {result.files[s]}" if s in result.files else " (empty: not written)"
        print(
            f"{s}: {len(exs)} examples, {len({ex.intent for ex in exs})} intents, "
            f"{len(_slot_types(exs))} slot types{where}",
            file=stream,
        )
    if result.entities is not None:
        res = result.entities
        print(
            f"entities: {len(res.synonyms)} synonyms, {len(res.regexes)} regexes, {len(res.lookups)} lookup tables "
            f"-> {result.files['entities']}",
            file=stream,
        )
    rep = result.report
    skipped = sum(rep.skipped.values())
    why = "".join(f"; {n} {reason}" for reason, n in rep.skipped.items())
    if any(ex.tags is not None for exs in result.splits.values() for ex in exs):
        print(
            f"spans: {rep.kept} kept ({rep.snapped} snapped to word boundaries), {skipped} skipped{why}",
            file=stream,
        )
    if rep.empty_texts:
        print(f"dropped: {rep.empty_texts} empty texts", file=stream)
    for line in summary_lines(result.notes):
        print(line, file=stream)
    for warning in result.warnings:
        print(f"warning: {warning}", file=stream)
    for kind, shown in rep.examples.items():
        total = rep.snapped if kind == "snapped" else rep.skipped[kind]
        label = "spans snapped to word boundaries" if kind == "snapped" else f"spans skipped ({kind})"
        print(
            f"warning: {total} {label} (--strict-spans makes this an error); first: " + "; ".join(shown),
            file=stream,
        )
