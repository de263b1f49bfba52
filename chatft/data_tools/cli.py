"""``python -m chatft data convert|stats|check``: command lines for the data tools (torch-free).

Registered in :data:`chatft.cli.COMMANDS` as raw commands because the issue's command lines need what a
signature alone cannot give: ``--from`` (a Python keyword), ``data stats DIR`` (a positional folder),
``--input PATH...`` (several values after one flag) and ``--strict-spans`` as a flag. Each parser is still
jsonargparse's, with ``--config FILE``, ``--print_config`` and ``--help`` like every chatft command, and
each option's help is the ``Args:`` line of the function's docstring.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Callable

from chatft.data_tools.check import check
from chatft.data_tools.convert import convert
from chatft.data_tools.stats import stats

#: Function parameters whose option has another name than ``--name``.
_FLAG_NAMES = {"from_": "from", "plot_path": "plot"}


def arg_help(fn: Callable) -> dict[str, str]:
    """``{parameter: help}`` from the ``Args:`` section of ``fn``'s docstring (continuation lines joined)."""
    doc = inspect.getdoc(fn) or ""
    section = doc.split("Args:", 1)[1] if "Args:" in doc else ""
    found: dict[str, str] = {}
    name = None
    for line in section.splitlines():
        m = re.match(r"^    (\w+): (.*)$", line)
        if m:
            name = m.group(1)
            found[name] = m.group(2).strip()
        elif name and line.startswith("        "):
            found[name] += " " + line.strip()
        elif line.strip() and not line.startswith(" "):
            break
    return found


def build_parser(fn: Callable, prog: str, positional: tuple[str, ...] = (), skip: tuple[str, ...] = ()):
    """A jsonargparse parser for ``fn``: ``--config``, and one option per parameter (see module docstring)."""
    from jsonargparse import ActionConfigFile

    from chatft.cli import _parser_class

    doc = (inspect.getdoc(fn) or "").split("\n\n")[0]
    parser = _parser_class()(prog=prog, description=doc, default_env=False)
    parser.add_argument("--config", action=ActionConfigFile, help="YAML file with any of the options below")
    helps = arg_help(fn)
    hints = typing.get_type_hints(fn)
    for name, param in inspect.signature(fn).parameters.items():
        if name in skip:
            continue
        hint = hints[name]
        args = typing.get_args(hint)
        optional = type(None) in args
        base = (
            next((a for a in args if a is not type(None)), hint)
            if isinstance(hint, types.UnionType)
            else hint
        )
        kwargs: dict = {"help": helps.get(name, "")}
        if name in positional:
            parser.add_argument(name, type=str, **kwargs)
            continue
        flag = _FLAG_NAMES.get(name, name)
        flags = [f"--{flag.replace('_', '-')}"] + ([f"--{flag}"] if "_" in flag else [])
        kwargs["dest"] = name
        if param.default is inspect.Parameter.empty:
            kwargs["required"] = True
        else:
            kwargs["default"] = param.default
        if base is bool:
            parser.add_argument(*flags, action="store_true", **kwargs)
        elif typing.get_origin(base) is list:
            parser.add_argument(*flags, type=str, nargs="+", **kwargs)
        else:
            parser.add_argument(*flags, type=typing.Optional[base] if optional else base, **kwargs)  # noqa: UP045
    return parser


def _run(fn: Callable, argv: list[str], prog: str, positional: tuple[str, ...] = ()) -> None:
    parser = build_parser(fn, prog, positional, skip=("quiet",))
    cfg = parser.parse_args(argv)
    kwargs = {k: v for k, v in vars(parser.strip_unknown(cfg)).items() if k not in ("config", "__path__")}
    fn(**{k: kwargs[k] for k in inspect.signature(fn).parameters if k in kwargs})


def convert_command(argv: list[str], prog: str) -> None:
    """``data convert --from FORMAT --input PATH... --output DIR`` (see :func:`chatft.data_tools.convert.convert`)."""
    _run(convert, argv, prog)


def stats_command(argv: list[str], prog: str) -> None:
    """``data stats DIR [--json] [--plot PATH]``."""
    _run(stats, argv, prog, positional=("data_dir",))


def check_command(argv: list[str], prog: str) -> None:
    """``data check DIR``."""
    _run(check, argv, prog, positional=("data_dir",))
