"""``python -m chatft data convert|stats|check|augment``: command lines for the data tools (torch-free).

Each parser is built by :mod:`chatft.command_line` like every chatft command's: jsonargparse reads the
function's signature and the ``Args:`` of its docstring, and gives ``--config FILE``, ``--print_config``,
``--help`` and one-line errors. Registered in :data:`chatft.cli.COMMANDS` as raw commands only because a few
options are spelled as the issue's command lines have them, which a signature alone cannot say:
``--from`` (a Python keyword: the parameter is ``from_``), ``data stats DIR`` (a positional folder),
``--input PATH...`` (several values after one flag), ``--strict-spans``, ``--lenient`` and ``--json`` as
flags and ``--plot`` for ``plot_path``; ``data augment`` takes one folder after ``--input`` and writes to
``--out`` (:data:`AUGMENT_SPELLED`). Every other option takes its dashed spelling too
(``--label-column`` = ``--label_column``), as messages and the docs write them. :data:`SPELLED` lists them; their help is still the docstring's ``Args:`` line,
read by ``docstring_parser`` (the library jsonargparse reads docstrings with).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from chatft.data_tools.augment import augment
from chatft.data_tools.check import check
from chatft.data_tools.convert import convert
from chatft.data_tools.stats import stats


@dataclass(frozen=True)
class Spelled:
    """A parameter whose option is not jsonargparse's ``--name VALUE``.

    ``flags``: the option strings (none: a positional argument); ``kind``: ``value``, ``values`` (one or
    more after the flag) or ``flag`` (a boolean set by the flag's presence); ``type``: of each value.
    """

    flags: tuple[str, ...]
    kind: str = "value"
    type: type = str


#: Per parameter name, the options spelled as the data commands' documented command lines have them.
SPELLED: dict[str, Spelled] = {
    "from_": Spelled(("--from",)),
    "input": Spelled(("--input",), "values"),
    "train": Spelled(("--train",), "values"),
    "dev": Spelled(("--dev",), "values"),
    "test": Spelled(("--test",), "values"),
    "strict_spans": Spelled(("--strict-spans", "--strict_spans"), "flag"),
    "lenient": Spelled(("--lenient",), "flag"),
    "oos_pool": Spelled(("--oos-pool", "--oos_pool"), "flag"),
    "json": Spelled(("--json",), "flag"),
    "plot_path": Spelled(("--plot",)),
}
#: ``data augment``'s own spellings: one ``--input`` folder (not several), ``--out`` (``--output`` too),
#: ``--per-utterance`` listed by ``--help`` as the docs write it, and ``--force`` as a flag.
AUGMENT_SPELLED: dict[str, Spelled] = {
    "input": Spelled(("--input",)),
    "per_utterance": Spelled(("--per-utterance", "--per_utterance"), type=int),
    "output": Spelled(("--out", "--output")),
    "force": Spelled(("--force",), "flag"),
}
#: Parameters a command line never sets (``quiet`` is for callers from Python).
HIDDEN = ("quiet",)


def build_parser(fn: Callable, prog: str, positional: bool = False, spelled: dict | None = None):
    """The parser of ``fn``'s command: jsonargparse's options from the signature, plus the :data:`SPELLED` ones.

    ``positional``: the parameters without a default (``data_dir``) are positional arguments; ``spelled``:
    this command's spellings, over :data:`SPELLED`'s.
    """
    import docstring_parser
    from jsonargparse import ActionConfigFile

    from chatft.command_line import CONFIG_HELP, parser_class

    doc = inspect.getdoc(fn) or ""
    helps = {p.arg_name: " ".join((p.description or "").split()) for p in docstring_parser.parse(doc).params}
    parser = parser_class()(prog=prog, description=doc.split("\n\n")[0], default_env=False)
    parser.add_argument("--config", action=ActionConfigFile, help=CONFIG_HELP)
    params = inspect.signature(fn).parameters
    spellings = {**SPELLED, **(spelled or {})}
    spelled = [name for name in params if name in spellings]
    for name in spelled:
        spelling, default = spellings[name], params[name].default
        kwargs: dict = {"dest": name, "help": helps.get(name, "")}
        if default is inspect.Parameter.empty:
            kwargs["required"] = True
        else:
            kwargs["default"] = default
        if spelling.kind == "flag":
            parser.add_argument(*spelling.flags, action="store_true", **kwargs)
        else:
            nargs = "+" if spelling.kind == "values" else None
            parser.add_argument(*spelling.flags, type=spelling.type, nargs=nargs, **kwargs)
    parser.add_function_arguments(fn, as_positional=positional, skip={*spelled, *HIDDEN})
    return parser


def underscored(argv: list[str], options: set[str]) -> list[str]:
    """``--label-column X`` -> ``--label_column X`` (also ``--a-b=X``) where the underscored spelling is an
    option: jsonargparse names options after parameters, while messages and docs write them with dashes."""
    out = []
    for token in argv:
        flag, eq, value = token.partition("=")
        alias = "--" + flag[2:].replace("-", "_") if flag.startswith("--") else flag
        out.append(alias + eq + value if alias != flag and alias in options else token)
    return out


def _run(
    fn: Callable, argv: list[str], prog: str, positional: bool = False, spelled: dict | None = None
) -> None:
    from chatft.compat.jsonargparse_hooks import long_options

    parser = build_parser(fn, prog, positional, spelled)
    cfg = parser.parse_args(underscored(argv, set(long_options(parser))))
    names = [name for name in inspect.signature(fn).parameters if name not in HIDDEN]
    fn(**{name: cfg[name] for name in names})


def convert_command(argv: list[str], prog: str) -> None:
    """``data convert --from FORMAT --input PATH... --output DIR`` (see :func:`chatft.data_tools.convert.convert`)."""
    _run(convert, argv, prog)


def stats_command(argv: list[str], prog: str) -> None:
    """``data stats DIR [--json] [--plot PATH]``."""
    _run(stats, argv, prog, positional=True)


def check_command(argv: list[str], prog: str) -> None:
    """``data check DIR``."""
    _run(check, argv, prog, positional=True)


def augment_command(argv: list[str], prog: str) -> None:
    """``data augment --input DIR --out OUTDIR [--per-utterance K] [--seed S] [--force]``."""
    _run(augment, argv, prog, spelled=AUGMENT_SPELLED)
