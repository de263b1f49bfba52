"""``python -m chatft data stats DIR``: what a dataset holds, and the problems worth fixing before training.

Per split: examples, intents and slot types with counts, the rarest classes, utterance length percentiles
(in words). Problems: exact duplicate texts within a split, texts in both train and dev/test (leakage),
the same text with different intents or tags (contradictions, across all splits), intents and slot types
with fewer than ``min_count`` training examples, and dev/test labels never seen in train. A table in the
terminal, ``--json`` for machines, and a PNG (class counts, length histogram) with ``--plot PATH``.
A dialogue folder (``schema.json`` beside the splits) gets its own numbers: :mod:`chatft.data_tools.dialogue_stats`.
"""

from __future__ import annotations

import json as jsonlib
import math
from collections import Counter, defaultdict
from pathlib import Path

from chatft.core.encoder_names import DEFAULT_ENCODER, resolve_encoder
from chatft.core.errors import ConfigError
from chatft.core.formats import Example
from chatft.core.tags import bio_chunks
from chatft.core.units import MIN_COUNT, MIN_SHARE, choose_units, unk_share, with_units
from chatft.data_tools.dataset import FOLDER_ARGUMENT, Dataset, read_dataset
from chatft.dialogue.dialogues import is_dialogue_folder

#: How many locations each problem lists (the total is always given).
SHOWN = 5


def _text(ex: Example) -> str:
    return " ".join(ex.words)


def _slot_counts(examples: list[Example]) -> Counter:
    return Counter(typ for ex in examples for typ, _, _ in bio_chunks(ex.tags or ()))


def percentile(sorted_values: list[int], q: float) -> int:
    """The nearest-rank percentile (a value that occurs in the data)."""
    if not sorted_values:
        return 0
    return sorted_values[max(0, math.ceil(q / 100 * len(sorted_values)) - 1)]


def split_stats(examples: list[Example], rarest: int) -> dict:
    intents = Counter(ex.intent for ex in examples)
    slots = _slot_counts(examples)
    lengths = sorted(len(ex.words) for ex in examples)
    return {
        "examples": len(examples),
        "intents": dict(intents.most_common()),
        "slot_types": dict(slots.most_common()),
        "rarest_intents": [
            [k, v] for k, v in sorted(intents.items(), key=lambda kv: (kv[1], kv[0]))[:rarest]
        ],
        "rarest_slot_types": [
            [k, v] for k, v in sorted(slots.items(), key=lambda kv: (kv[1], kv[0]))[:rarest]
        ],
        "length": {
            "min": lengths[0] if lengths else 0,
            "p50": percentile(lengths, 50),
            "p90": percentile(lengths, 90),
            "p99": percentile(lengths, 99),
            "max": lengths[-1] if lengths else 0,
        },
    }


def find_problems(data: Dataset, min_count: int) -> dict:
    """Every problem kind -> ``{"count": n, "items": [...]}`` (the first few locations or labels)."""
    problems: dict[str, dict] = {}

    def add(kind: str, count: int, items: list) -> None:
        problems[kind] = {"count": count, "items": items[:SHOWN]}

    texts: dict[str, dict[str, list[int]]] = {}
    for split, examples in data.splits.items():
        by_text: dict[str, list[int]] = defaultdict(list)
        for i, ex in enumerate(examples):
            by_text[_text(ex)].append(i)
        texts[split] = by_text
        dups = [idx for idx in by_text.values() if len(idx) > 1]
        add(
            f"duplicates in {split}",
            sum(len(idx) - 1 for idx in dups),
            [
                f"{_text(examples[idx[0]])!r} at " + ", ".join(data.where(split, i) for i in idx)
                for idx in dups
            ],
        )
    for split in ("dev", "test"):
        if split in data.splits:
            shared = [t for t in texts[split] if t in texts["train"]]
            add(
                f"train/{split} leakage",
                len(shared),
                [
                    f"{t!r} at {data.where('train', texts['train'][t][0])} and {data.where(split, texts[split][t][0])}"
                    for t in shared
                ],
            )
    labels: dict[str, dict[tuple, list[str]]] = defaultdict(lambda: defaultdict(list))
    for split, examples in data.splits.items():
        for i, ex in enumerate(examples):
            labels[_text(ex)][(ex.intent, ex.tags)].append(data.where(split, i))
    contradictions = [(t, found) for t, found in labels.items() if len(found) > 1]
    add(
        "contradictions",
        len(contradictions),
        [
            f"{t!r}: "
            + "; ".join(
                f"{intent}{' ' + ' '.join(tags) if tags else ''} at {where[0]}"
                for (intent, tags), where in found.items()
            )
            for t, found in contradictions
        ],
    )
    train = data.splits["train"]
    intents = Counter(ex.intent for ex in train)
    slots = _slot_counts(train)
    rare_i = sorted((v, k) for k, v in intents.items() if v < min_count)
    add(f"intents with < {min_count} train examples", len(rare_i), [f"{k} ({v})" for v, k in rare_i])
    if data.has_slots:
        rare_s = sorted((v, k) for k, v in slots.items() if v < min_count)
        add(f"slot types with < {min_count} train examples", len(rare_s), [f"{k} ({v})" for v, k in rare_s])
    for split in ("dev", "test"):
        if split in data.splits:
            examples = data.splits[split]
            unseen = sorted({ex.intent for ex in examples} - set(intents))
            add(f"{split} intents unseen in train", len(unseen), unseen)
            if data.has_slots:
                unseen_s = sorted(set(_slot_counts(examples)) - set(slots))
                add(f"{split} slot types unseen in train", len(unseen_s), unseen_s)
    return problems


def load_backend(name: str):
    """The ``tokenizers.Tokenizer`` of encoder ``name`` (a folder with ``tokenizer.json``, or the packaged
    default), or None when there is no local one (a hub name: ``data stats`` does not download)."""
    from tokenizers import Tokenizer

    path = Path(resolve_encoder(name)) / "tokenizer.json"
    return Tokenizer.from_file(str(path)) if path.is_file() else None


def unk_stats(data: Dataset, backend) -> dict:
    """Per split, the share of characters the tokenizer maps to ``[UNK]``: as shipped, and after ``fit`` adds
    the units chosen on train with the default options (:mod:`chatft.core.units`). What stays ``[UNK]``
    after are characters train never shows often enough: the model cannot read them."""
    before = {s: unk_share(backend, [ex.words for ex in exs]) for s, exs in data.splits.items()}
    units = choose_units(backend, before["train"], MIN_COUNT, MIN_SHARE)
    extended = with_units(backend, units) if units else backend
    after = {
        s: unk_share(extended, [ex.words for ex in exs]) if units else before[s]
        for s, exs in data.splits.items()
    }
    return {
        "units_added_by_fit": len(units),
        "splits": {
            s: {
                "chars": before[s].total,
                "unk_chars": before[s].unknown,
                "unk_share": round(before[s].share, 4),
                "unk_chars_after": after[s].unknown,
                "unk_share_after": round(after[s].share, 4),
            }
            for s in data.splits
        },
    }


def compute(data: Dataset, min_count: int = 5, rarest: int = 5, backend=None) -> dict:
    result = {
        "data_dir": str(data.data_dir),
        "format": data.format,
        "splits": {s: split_stats(exs, rarest) for s, exs in data.splits.items()},
        "problems": find_problems(data, min_count),
        "warnings": data.warnings,
    }
    if backend is not None:
        result["unk"] = unk_stats(data, backend)
    return result


def format_table(result: dict) -> str:
    """The terminal view: one row per split, the rarest classes, then each problem with its first cases."""
    splits = result["splits"]
    lines = [f"{result['data_dir']} ({result['format']})", ""]
    head = f"{'split':<6} {'examples':>8} {'intents':>7} {'slot types':>10} {'words p50/p90/p99/max':>22}"
    lines += [head, "-" * len(head)]
    for s, st in splits.items():
        ln = st["length"]
        lengths = f"{ln['p50']}/{ln['p90']}/{ln['p99']}/{ln['max']}"
        lines.append(
            f"{s:<6} {st['examples']:>8} {len(st['intents']):>7} {len(st['slot_types']):>10} {lengths:>22}"
        )
    train = splits["train"]
    lines.append("")
    lines.append("rarest intents in train: " + ", ".join(f"{k} ({v})" for k, v in train["rarest_intents"]))
    if train["slot_types"]:
        lines.append(
            "rarest slot types in train: " + ", ".join(f"{k} ({v})" for k, v in train["rarest_slot_types"])
        )
    if "unk" in result:
        unk = result["unk"]
        shares = ", ".join(
            f"{s} {100 * u['unk_share']:.1f}%"
            + (f" -> {100 * u['unk_share_after']:.1f}%" if unk["units_added_by_fit"] else "")
            for s, u in unk["splits"].items()
        )
        n = unk["units_added_by_fit"]
        tail = (
            f" (as shipped -> once fit adds {n} units: --data.extend_vocab)" if n else " (fit adds no units)"
        )
        lines.append(f"[UNK] share of characters: {shares}{tail}")
    lines += ["", "problems:"]
    for kind, p in result["problems"].items():
        lines.append(f"  {kind}: {p['count']}")
        for item in p["items"]:
            lines.append(f"    {item}")
    for warning in result["warnings"]:
        lines.append(f"warning: {warning}")
    return "\n".join(lines)


def plot(data: Dataset, result: dict, path: Path) -> None:
    """Class counts (train intents, most frequent first) and the length histogram of each split, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    intents = result["splits"]["train"]["intents"]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(max(8.0, min(0.18 * len(intents), 30.0)), 8))
    ax1.bar(range(len(intents)), list(intents.values()), color="tab:blue")
    ax1.set_xticks(range(len(intents)), list(intents), rotation=90, fontsize=6 if len(intents) > 40 else 8)
    ax1.set_ylabel("train examples")
    ax1.set_title("intents in train")
    top = max(len(ex.words) for exs in data.splits.values() for ex in exs)
    bins = range(1, top + 2)
    for split, examples in data.splits.items():
        ax2.hist([len(ex.words) for ex in examples], bins=bins, histtype="step", label=split, density=True)
    ax2.set_xlabel("words per utterance")
    ax2.set_ylabel("fraction of the split")
    ax2.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def stats(
    data_dir: str,
    json: bool = False,
    plot_path: str | None = None,
    min_count: int = 5,
    rarest: int = 5,
    tokenizer: str = DEFAULT_ENCODER,
) -> dict:
    """Print a dataset's statistics and problems (a table, or JSON with ``json``).

    Args:
        data_dir: Folder with the data (jointbert, tsv or jsonl layout), or a dialogue folder (with
            ``schema.json``: per-slot state statistics and requests).
        json: Print one JSON object instead of the table.
        plot_path: Write a PNG with the class counts and the length histogram here (NLU data only).
        min_count: Report intents and slot types with fewer training examples than this (NLU data only).
        rarest: How many of the rarest classes to list per split (NLU data only).
        tokenizer: Encoder (folder with ``tokenizer.json``, or the default) whose ``[UNK]`` share of characters
            to report per split, as shipped and with the units ``fit`` would add; ``none`` skips it (NLU data
            only).
    """
    if is_dialogue_folder(Path(data_dir).expanduser()):
        # Imported here: dialogue_stats uses this module's percentile.
        from chatft.data_tools.dialogue_folder import read_dialogue_folder
        from chatft.data_tools.dialogue_stats import dialogue_stats, format_dialogue_table

        if plot_path:
            raise ConfigError("--plot: not available for a dialogue folder (only for NLU data)")
        result = dialogue_stats(read_dialogue_folder(data_dir))
        print(jsonlib.dumps(result, ensure_ascii=False, indent=1) if json else format_dialogue_table(result))
        return result
    data = read_dataset(data_dir, FOLDER_ARGUMENT)
    backend = load_backend(tokenizer) if tokenizer.lower() != "none" else None
    result = compute(data, min_count, rarest, backend)
    if plot_path:
        plot(data, result, Path(plot_path).expanduser())
    print(jsonlib.dumps(result, ensure_ascii=False, indent=1) if json else format_table(result))
    return result
