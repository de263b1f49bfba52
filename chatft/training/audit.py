"""``python -m chatft data audit``: find likely annotation errors in the training split by K-fold cross-validation.

    python -m chatft data audit --config configs/atis.yaml --data.data_dir ../shared/data/atis \\
        --output suspects.jsonl [--folds 5] [--epochs 8]

The training split is cut into ``--folds`` parts, stratified by intent. For each part, a model is trained on
the other parts by an ordinary ``python -m chatft fit`` process (the same ``--config`` and ``--data.*``,
``--model.*``, ``--trainer.*`` overrides, so an accelerator, DDP or precision setting applies to every fold;
the dev split, when there is one, picks each fold's best checkpoint as in ``fit``), and then predicts the
part it never saw. That gives every training utterance *out-of-fold* intent and word-tag probabilities;
:mod:`chatft.core.label_issues` ranks the labels that disagree with them (cleanlab's confident learning) and
the suspects are written as JSON Lines, most suspicious first, with a short table on the terminal.

An intent (or tag) that occurs in one fold only cannot be judged by a model that never saw it: such
utterances (words) are left out of the audit and counted in the summary.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chatft.core.errors import ConfigError
from chatft.core.formats import Example, has_split
from chatft.core.label_issues import (
    format_table,
    intent_suspects,
    remap_columns,
    slot_suspects,
    suspect_record,
)

#: Epochs per fold. ATIS (4478 training utterances, ~150 utterances/s on 2 CPU cores) audits in about 20
#: minutes with 5 folds: each fold trains on 4/5 of the data for this many epochs (docs/results.md, "Data audit").
DEFAULT_EPOCHS = 8
DEFAULT_FOLDS = 5

__all__ = ["HeldOut", "fold_assignments", "held_out_probabilities", "main", "write_fold_data"]


def fold_assignments(intents: Sequence[str], folds: int, seed: int = 0) -> list[int]:
    """The fold (0..folds-1) of each utterance, stratified by intent so every fold sees every common intent."""
    from sklearn.model_selection import StratifiedKFold

    if folds < 2:
        raise ConfigError(f"--folds must be >= 2, got {folds}")
    if len(intents) < folds:
        raise ConfigError(f"--folds {folds}: the training split has only {len(intents)} utterances")
    out = [0] * len(intents)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    import warnings

    with warnings.catch_warnings():
        # "The least populated class has only 1 member": expected, such intents are reported as not audited.
        warnings.simplefilter("ignore")
        for k, (_, held) in enumerate(splitter.split(np.zeros(len(intents)), list(intents))):
            for i in held:
                out[i] = k
    return out


def _jsonl(examples: Sequence[Example]) -> str:
    rows = []
    for ex in examples:
        row: dict = {"words": list(ex.words), "intent": ex.intent}
        if ex.tags is not None:
            row["tags"] = list(ex.tags)
        rows.append(json.dumps(row, ensure_ascii=False))
    return "\n".join(rows) + "\n"


def write_fold_data(folder: Path, train: Sequence[Example], dev: Sequence[Example] | None) -> Path:
    """A JSON Lines dataset (``train.jsonl`` and, when given, ``dev.jsonl``) that ``fit`` reads."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.jsonl").write_text(_jsonl(train), encoding="utf-8")
    if dev:
        (folder / "dev.jsonl").write_text(_jsonl(dev), encoding="utf-8")
    return folder


@dataclass
class HeldOut:
    """A fold model's predictions on utterances it never saw, in the fold model's own label spaces.

    ``intent_probs`` is ``[n, len(intent_labels)]``; ``tag_probs[i]`` is ``[kept words, len(slot_labels)]``
    (words cut by ``max_length`` have no row); ``predicted_tags[i]`` covers every word (cut ones ``O``).
    """

    intent_labels: tuple[str, ...]
    slot_labels: tuple[str, ...]
    intent_probs: np.ndarray
    tag_probs: list[np.ndarray]
    predicted_tags: list[list[str]]


def held_out_probabilities(
    ckpt_path: str | Path, examples: Sequence[Example], device: str = "cpu", batch_size: int = 64
) -> HeldOut:
    """Intent and word-tag probabilities of a checkpoint on ``examples``, decoded as ``test`` decodes.

    Runs the predictors' loop (:func:`chatft.core.inference_loop.decode_words`) on the examples' own words. Probabilities are the ones the predictors report (:mod:`chatft.core.decoding`): softmax without
    ``<unk>``, or CRF posterior marginals. The checkpoint's calibration is left out (intent probabilities are
    not temperature-scaled): in ``threshold`` mode it gives the OOS intent probability 0, which would flag
    every utterance labelled with it.
    """
    from chatft.core.decoding import Decoder
    from chatft.core.inference_loop import decode_words
    from chatft.model.decoding import slot_decoder_of
    from chatft.model.inference import load_for_inference

    loaded = load_for_inference(ckpt_path, device=device)
    decoder = Decoder(loaded.intent_labels, loaded.slot_labels, slot_decoder_of(loaded.model))  # no oos
    decoded = decode_words(
        [ex.words for ex in examples],
        loaded.tokenizer,
        loaded.logits,
        decoder,
        loaded.max_length,
        loaded.tokenizer.pad_token_id or 0,
        batch_size,
        word_probabilities=True,
    )
    n_tags = len(loaded.slot_labels)
    return HeldOut(
        loaded.intent_labels,
        loaded.slot_labels,
        np.array([d.intent_probs for d in decoded]).reshape(len(examples), len(loaded.intent_labels)),
        [d.tag_probs if d.tag_probs is not None else np.zeros((0, n_tags)) for d in decoded],
        [d.tags for d in decoded],
    )


@dataclass
class OutOfFold:
    """Every training utterance's out-of-fold probabilities, in the full training split's label spaces."""

    intent_probs: np.ndarray
    intent_audited: np.ndarray
    tag_probs: list[np.ndarray]
    predicted_tags: list[list[str]]
    tags_not_audited: int = 0


def merge_held_out(
    examples: Sequence[Example],
    held: Sequence[tuple[Sequence[int], HeldOut]],
    intent_labels: Sequence[str],
    slot_labels: Sequence[str],
) -> OutOfFold:
    """Put each fold's predictions (``(indices, HeldOut)``) into the full split's label spaces.

    A label the fold's model never saw cannot be judged: such an utterance's intent is marked not audited,
    and such a word (or one cut by ``max_length``) gets probability 1 for its given tag, so it is never
    flagged and counted in ``tags_not_audited``.
    """
    n = len(examples)
    out = OutOfFold(np.zeros((n, len(intent_labels))), np.zeros(n, dtype=bool), [None] * n, [None] * n)  # type: ignore[list-item]
    tag_index = {t: j for j, t in enumerate(slot_labels)}
    for indices, h in held:
        known_intents, known_tags = set(h.intent_labels), set(h.slot_labels)
        probs = remap_columns(h.intent_probs, h.intent_labels, intent_labels)
        for row, i in enumerate(indices):
            out.intent_probs[i] = probs[row]
            out.intent_audited[i] = examples[i].intent in known_intents
            if not slot_labels:
                continue
            tags = examples[i].tags or ()
            words = np.zeros((len(tags), len(slot_labels)))
            words[: len(h.tag_probs[row])] = remap_columns(h.tag_probs[row], h.slot_labels, slot_labels)
            for w, tag in enumerate(tags):
                if w >= len(h.tag_probs[row]) or tag not in known_tags:
                    words[w] = 0.0
                    words[w, tag_index[tag]] = 1.0
                    out.tags_not_audited += 1
            out.tag_probs[i] = words
            out.predicted_tags[i] = list(h.predicted_tags[row])
    return out


def rank_records(examples: Sequence[Example], oof: OutOfFold, intent_labels, slot_labels) -> list[dict]:
    """Intent and slot suspects as JSON Lines records, lowest self-confidence first (ties: intent, line)."""
    suspects = intent_suspects(
        [ex.intent for ex in examples], oof.intent_probs, intent_labels, oof.intent_audited
    )
    if slot_labels:
        suspects += slot_suspects(
            [ex.words for ex in examples],
            [ex.tags for ex in examples],
            oof.tag_probs,
            oof.predicted_tags,
            slot_labels,
        )
    suspects.sort(key=lambda s: (s.score, s.kind != "intent", s.index))
    return [suspect_record(s, examples[s.index].words) for s in suspects]


#: The audit's own options (the rest of the command line goes to each fold's ``fit``).
AUDIT_OPTIONS = ("--output", "--folds", "--epochs", "--seed", "--top", "--workdir")


def _audit_cli_class():
    """:class:`ChatftCLI` plus the audit's options: ``--help`` lists them with every fit option."""
    from chatft.training.lightning_cli import ChatftCLI

    class AuditCLI(ChatftCLI):
        def add_arguments_to_parser(self, parser) -> None:
            super().add_arguments_to_parser(parser)
            parser.add_argument("--output", type=str, required=True, help="JSON Lines file of suspects")
            parser.add_argument("--folds", type=int, default=DEFAULT_FOLDS, help="cross-validation folds")
            parser.add_argument(
                "--epochs",
                type=int,
                default=DEFAULT_EPOCHS,
                help="epochs per fold (wins over --trainer.max_epochs)",
            )
            parser.add_argument("--seed", type=int, default=0, help="seed of the fold split")
            parser.add_argument("--top", type=int, default=10, help="suspects shown in the terminal table")
            parser.add_argument(
                "--workdir",
                type=str | None,
                default=None,
                help="keep each fold's data and run here (default: a temporary folder, removed at the end)",
            )

    return AuditCLI


def fit_arguments(argv: Sequence[str], own: Sequence[str] = AUDIT_OPTIONS) -> list[str]:
    """``argv`` without the audit's own options (``--opt VALUE`` or ``--opt=VALUE``): what each fold's fit gets."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in own:
            skip = True
        elif arg.split("=", 1)[0] not in own:
            out.append(arg)
    return out


def _run_fold(k: int, fit_args: list[str], data_dir: Path, root: Path, epochs: int) -> Path:
    """Train fold ``k`` with a ``fit`` process; the checkpoint it kept (best on dev, else last)."""
    ckpt_dir = root / "checkpoints"
    cmd = [
        sys.executable,
        "-m",
        "chatft",
        "fit",
        *fit_args,
        "--data.data_dir",
        str(data_dir),
        "--trainer.max_epochs",
        str(epochs),
        "--trainer.default_root_dir",
        str(root),
        "--checkpoint.dirpath",
        str(ckpt_dir),
    ]
    rc = subprocess.run(cmd).returncode
    if rc != 0:
        raise ConfigError(f"data audit: fold {k + 1}'s fit exited with code {rc} (its output is above)")
    best = sorted(ckpt_dir.glob("best-*.ckpt"))
    chosen = best[-1] if best else ckpt_dir / "last.ckpt"
    if not chosen.is_file():
        raise ConfigError(f"data audit: fold {k + 1}'s fit saved no checkpoint in {ckpt_dir}")
    return chosen


def audit(
    dm, trainer, fit_args: list[str], folds: int, epochs: int, seed: int, workdir: Path
) -> tuple[list[dict], dict]:
    """Run the K folds for the data module ``dm`` and rank the suspects; returns the records and a summary.

    ``fit_args`` are the fit options each fold's ``fit`` process gets (the data folder, epochs and run
    folder are set per fold).
    """
    if dm.data_dir is None:
        raise ConfigError("data audit: set --data.data_dir to the dataset to audit")
    dm.check_splits("fit", validating=trainer.limit_val_batches != 0)
    train = dm.split_examples("train")
    validating = trainer.limit_val_batches != 0 and has_split(dm.data_dir, "dev", dm.format)
    dev = dm.split_examples("dev") if validating else None
    intent_labels = list(dm.intent_labels[1:])  # without <unk>
    slot_labels = list(dm.slot_labels[1:])
    device = str(trainer.strategy.root_device)
    assignment = fold_assignments([ex.intent for ex in train], folds, seed)
    held: list[tuple[list[int], HeldOut]] = []
    started = time.perf_counter()
    for k in range(folds):
        inside = [i for i, f in enumerate(assignment) if f != k]
        outside = [i for i, f in enumerate(assignment) if f == k]
        print(
            f"data audit: fold {k + 1}/{folds}: training on {len(inside)} utterances, "
            f"predicting {len(outside)}",
            flush=True,
        )
        data_dir = write_fold_data(workdir / f"fold-{k + 1}" / "data", [train[i] for i in inside], dev)
        ckpt = _run_fold(k, fit_args, data_dir, workdir / f"fold-{k + 1}" / "run", epochs)
        held.append((outside, held_out_probabilities(ckpt, [train[i] for i in outside], device=device)))
    oof = merge_held_out(train, held, intent_labels, slot_labels)
    records = rank_records(train, oof, intent_labels, slot_labels)
    summary = {
        "utterances": len(train),
        "folds": folds,
        "epochs": epochs,
        "seconds": round(time.perf_counter() - started, 1),
        "intent_suspects": sum(r["kind"] == "intent" for r in records),
        "slot_suspects": sum(r["kind"] == "slot" for r in records),
        "intents_not_audited": int((~oof.intent_audited).sum()),
        "tags_not_audited": oof.tags_not_audited,
    }
    return records, summary


def main(argv: list[str], prog: str = "python -m chatft data audit") -> None:
    """Entry point of ``python -m chatft data audit`` (``argv``: the options after ``audit``)."""
    from chatft.training.lightning_cli import lightning_cli

    # Parsed and instantiated as fit would be: a bad option or bad data stops here, before any fold trains.
    cli = lightning_cli(list(argv), run=False, prog=prog, cli_class=_audit_cli_class())
    args = cli.config
    if args.epochs < 1:
        raise ConfigError(f"--epochs must be >= 1, got {args.epochs}")
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="chatft-audit-"))
    try:
        records, summary = audit(
            cli.datamodule, cli.trainer, fit_arguments(argv), args.folds, args.epochs, args.seed, workdir
        )
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    output.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    print(format_table(records, args.top))
    print(
        f"data audit: {summary['utterances']} training utterances, {summary['folds']} folds x "
        f"{summary['epochs']} epochs in {summary['seconds'] / 60:.1f} min: {summary['intent_suspects']} intent "
        f"and {summary['slot_suspects']} slot suspects written to {output}"
        + (
            f"; not audited (label in one fold only): {summary['intents_not_audited']} intents, "
            f"{summary['tags_not_audited']} word tags"
            if summary["intents_not_audited"] or summary["tags_not_audited"]
            else ""
        ),
        flush=True,
    )
