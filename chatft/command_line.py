"""How a typed function becomes a command line: the parser machinery shared by every chatft command.

:mod:`chatft.cli` (the ``python -m chatft`` dispatcher) and the modules below it that parse a command line of
their own (``data convert|stats|check``, ``python -m chatft.serving.server``, LightningCLI's parser) all use
this module, so that nothing under ``chatft/`` imports the dispatcher. Options come from a function's signature
and the ``Args:`` section of its docstring, read by jsonargparse; every parser takes ``--config FILE``,
``--print_config`` and ``--help``; a mistake on the command line is one ``chatft: error: ...`` line and exit
status 2. This module imports neither torch, Lightning nor transformers.
"""

from __future__ import annotations

import difflib
import inspect
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

__all__ = [
    "PROG",
    "UsageError",
    "OneLineErrors",
    "parser_class",
    "run_function",
    "main_of",
    "suggest",
    "one_line_usage_error",
]

PROG = "python -m chatft"
#: One-line summaries of LightningCLI's commands: ``python -m chatft --help`` lists them and each command's
#: own ``--help`` starts with it (:mod:`chatft.training.lightning_cli`), so both read them from here.
LIGHTNING_SUMMARIES = {
    "fit": "train a model on a data folder; keeps the checkpoint with the best dev sentence accuracy",
    "validate": "score a checkpoint on the dev split",
    "test": "score a checkpoint on the test split and write a per-class report",
    "predict": "label a text file (one utterance per line) with a checkpoint; writes JSON Lines",
}
CONFIG_HELP = "YAML file with any of the options below (repeatable; later files and options win)"


class UsageError(SystemExit):
    """A command line that cannot run; the one line that says why has already been printed."""


def suggest(word: str, choices: Sequence[str]) -> str | None:
    """The closest of ``choices`` to ``word`` (a typo), or None when nothing is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def one_line_usage_error(message: str, options: Sequence[str], prog: str) -> str:
    """A parser error as one line: what is wrong, the closest valid option for a typo, where help is.

    ``options`` are the parser's option strings (``--model.learning_rate``, ...).
    """
    text = " ".join(message.split())
    found = re.match(r"(?i)unrecognized arguments: (.*)", text)
    if found:
        unknown = [t.split("=", 1)[0] for t in found.group(1).split() if t.startswith("-")]
        parts = []
        for option in unknown or found.group(1).split()[:1]:
            close = suggest(option, options) if option.startswith("-") else None
            parts.append(f"{option}: did you mean {close}?" if close else option)
        text = "unrecognized option " + "; ".join(parts) if unknown else f"unexpected argument {parts[0]}"
    else:
        # Config-file keys: 'Group "model" does not accept nested key "learning_rte"' and the like.
        keys = re.findall(r'key "([\w.]+)"', text)
        for key in keys:
            close = suggest(f"--{key}", options)
            if close and close != f"--{key}":
                text += f" (did you mean {close[2:]}?)"
                break
    return f"{text} (options: {prog} --help)"


class OneLineErrors:
    """Mixin for a jsonargparse parser: errors print one line on stderr and exit 2, not the whole usage.

    It also turns off argparse's abbreviations: with them ``--model.learning_rat 1`` (a typo) was taken as
    ``--model.learning_rate 1`` without a word, and a run trained at learning rate 1; a misspelt option is an
    error that names the closest valid one instead."""

    def __init__(self, *args: Any, allow_abbrev: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, allow_abbrev=allow_abbrev, **kwargs)

    def error(self, message: str, ex: Exception | None = None):
        from chatft.compat.jsonargparse_hooks import debug_mode_active, error_parser, long_options

        if not self.exit_on_error or debug_mode_active():
            return super().error(message, ex)  # jsonargparse parses in parts and catches its own errors
        parser = error_parser(self, ex)
        options = long_options(parser)
        prog = parser.prog.replace(" [options]", "")
        print(f"chatft: error: {one_line_usage_error(message, options, prog)}", file=sys.stderr, flush=True)
        raise UsageError(2)


def parser_class() -> type:
    """jsonargparse's ``ArgumentParser`` with chatft's one-line errors (imported on first use)."""
    from jsonargparse import ArgumentParser

    class ChatftArgumentParser(OneLineErrors, ArgumentParser):
        """jsonargparse's parser with chatft's one-line errors."""

    return ChatftArgumentParser


def run_function(
    fn: Callable[..., Any], argv: list[str], prog: str, summary: str = "", positional: bool = False
) -> Any:
    """Parse ``argv`` against ``fn``'s signature (``--config``, ``--print_config``, ``--help``) and call it.

    ``positional``: parameters without a default are positional arguments (``encoders install NAME``), not
    required options.

    ``fn`` may be a class whose constructor parameters are the options (a settings dataclass, declared and
    documented once): the command then builds the instance from the command line and calls it
    (``instance()``), so the class must define ``__call__`` and no public methods (jsonargparse would make
    those subcommands).
    """
    from jsonargparse import auto_cli

    doc = (inspect.getdoc(fn) or "").split("\n\nArgs:")[0].strip()
    result = auto_cli(
        fn,
        args=argv,
        as_positional=positional,
        parser_class=parser_class(),
        prog=prog,
        description=doc or summary,
        config_help=CONFIG_HELP,
        default_env=False,
    )
    return result() if isinstance(fn, type) else result


def main_of(fn: Callable[..., Any], argv: Sequence[str] | None, prog: str) -> Any:
    """``run_function`` as a program's ``main``: a mistake a user can make is one line and exit status 2."""
    from chatft.core.errors import USER_ERRORS

    try:
        return run_function(fn, list(sys.argv[1:] if argv is None else argv), prog)
    except USER_ERRORS as err:
        print(f"chatft: error: {err}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
