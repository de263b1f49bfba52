"""jsonargparse (and argparse) internals the CLI's one-line errors use. Imports neither torch nor Lightning.

:class:`chatft.command_line.OneLineErrors` replaces jsonargparse's usage dump with one line that suggests the closest
option. It needs three things jsonargparse does not document: whether debug mode asks for the full
traceback instead, which parser an error belongs to (a subcommand's, for ``fit --bad``), and that parser's
option strings. Checked by ``tests/test_compat.py``.
"""

from __future__ import annotations

from typing import Any


def debug_mode_active() -> bool:
    """Whether ``JSONARGPARSE_DEBUG`` asks jsonargparse to raise instead of exiting (private
    ``jsonargparse._common.debug_mode_active``, what ``ArgumentParser.error`` itself consults)."""
    from jsonargparse._common import debug_mode_active as active

    return bool(active())


def error_parser(parser: Any, ex: Exception | None) -> Any:
    """The parser an error is about: the subcommand's parser jsonargparse attaches to some errors as
    ``ex.subcommand_parser`` (what its own ``error`` prints the usage of), else ``parser``."""
    return getattr(ex, "subcommand_parser", None) or parser


def long_options(parser: Any) -> list[str]:
    """The parser's ``--long`` option strings (argparse's private ``_option_string_actions``; argparse has
    no public list of a parser's options)."""
    return [o for o in parser._option_string_actions if o.startswith("--")]
