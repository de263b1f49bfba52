"""MkDocs hook (``hooks:`` in mkdocs.yml): pages generated from the code at every build.

- ``reference/<command>.md``: one page per command, the text of ``python -m chatft COMMAND --help``
  (``docs/gen_reference.py``), listed in the nav under "Reference" in ``python -m chatft --help``'s order;
- ``<!-- chatft:commands -->`` in a page: a table of every command and its one-line summary;
- ``<!-- chatft:modules -->`` in a page: a table of every module of the ``chatft`` package and the first
  paragraph of its docstring (read with ``ast``, nothing imported); ``<!-- chatft:scripts -->`` the same
  for ``benchmarks/`` and ``scripts/``.

Generated at build time, not committed: other work changes the CLI and moves modules all the time, and a
committed copy would be stale the moment it did; the build always shows the code it is built from. The
price is a few seconds of ``--help`` per build (one process imports torch and Lightning once).
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs"))

from gen_reference import help_texts_in_subprocess, page, page_name  # noqa: E402

_TEXTS: dict[str, dict[str, str]] = {}


def _help_texts() -> dict[str, dict[str, str]]:
    return help_texts_in_subprocess()


def on_config(config, **kwargs):
    _TEXTS.clear()
    _TEXTS.update(_help_texts())
    pages = [{command: f"reference/{page_name(command)}"} for command in _TEXTS if command]
    for i, entry in enumerate(config.nav or []):
        if isinstance(entry, dict) and entry.get("Reference") == "reference/index.md":
            config.nav[i] = {"Reference": [{"Overview": "reference/index.md"}, *pages]}
    return config


def on_files(files, config, **kwargs):
    for command, entry in _TEXTS.items():
        if command:
            text = page(command, entry["summary"], entry["help"])
            files.append(File.generated(config, f"reference/{page_name(command)}", content=text))
    return files


def _commands_table() -> str:
    rows = ["| command | what it does |", "| --- | --- |"]
    for command, entry in _TEXTS.items():
        if command:
            rows.append(f"| [`{command}`]({page_name(command)}) | {entry['summary']} |")
    return "\n".join(rows)


def _plain(docstring: str) -> str:
    """First paragraph of a docstring, reST roles and double backticks made Markdown."""
    text = " ".join(docstring.strip().split("\n\n")[0].split())
    text = re.sub(r":\w+:`~?([\w.]+)`", lambda m: f"`{m.group(1).rsplit('.', 1)[-1]}`", text)
    return text.replace("``", "`").replace("|", "\\|")


def _modules_table(paths: list[Path]) -> str:
    rows = ["| file | what it is |", "| --- | --- |"]
    for path in sorted(paths):
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        rows.append(f"| `{path.relative_to(ROOT).as_posix()}` | {_plain(doc)} |")
    return "\n".join(rows)


def on_page_markdown(markdown, page, config, files, **kwargs):
    if "<!-- chatft:commands -->" in markdown:
        markdown = markdown.replace("<!-- chatft:commands -->", _commands_table())
    if "<!-- chatft:modules -->" in markdown:
        markdown = markdown.replace(
            "<!-- chatft:modules -->", _modules_table(list((ROOT / "chatft").rglob("*.py")))
        )
    if "<!-- chatft:scripts -->" in markdown:
        scripts = [*(ROOT / "benchmarks").glob("*.py"), *(ROOT / "scripts").glob("*.py")]
        markdown = markdown.replace("<!-- chatft:scripts -->", _modules_table(scripts))
    return markdown
