"""The command reference, from the CLI itself: ``python -m chatft COMMAND --help`` for every command.

Run by the MkDocs hook (``docs/hooks.py``) at every build, and by ``tests/test_docs_commands.py``, so the
reference pages and the check of the docs' command lines read the parsers of the code being built, never a
copy that can go stale while the CLI changes::

    python docs/gen_reference.py            # JSON: {"fit": {"summary": ..., "help": ...}, "data convert": ...}
    python docs/gen_reference.py --out DIR  # one Markdown page per command, as the site shows them

Every ``--help`` runs in this one process (torch and Lightning are imported once: the LightningCLI
commands' help takes seconds each otherwise), at a fixed width of 100 columns so the text does not depend
on the terminal.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WIDTH = "100"


def command_paths() -> list[tuple[tuple[str, ...], str]]:
    """Every runnable command as ``(("data", "convert"), summary)``, in ``python -m chatft --help``'s order."""
    from chatft.cli import COMMANDS, Group

    found: list[tuple[tuple[str, ...], str]] = []

    def walk(commands: dict, prefix: tuple[str, ...]) -> None:
        for name, entry in commands.items():
            if isinstance(entry, Group):
                walk(entry.commands, (*prefix, name))
            else:
                found.append(((*prefix, name), entry.summary))

    walk(COMMANDS, ())
    return found


def help_of(argv: list[str]) -> str:
    """What ``python -m chatft ARGV`` prints on stdout (``--help`` exits 0 through SystemExit)."""
    from chatft.cli import main

    out = io.StringIO()
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = WIDTH
    try:
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            main(argv)
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old
    return out.getvalue()


def help_texts() -> dict[str, dict[str, str]]:
    """``{"data convert": {"summary": ..., "help": ...}}`` for every command, plus ``""`` for the top level."""
    texts = {"": {"summary": "", "help": help_of(["--help"])}}
    for path, summary in command_paths():
        texts[" ".join(path)] = {"summary": summary, "help": help_of([*path, "--help"])}
    return texts


def help_texts_in_subprocess() -> dict[str, dict[str, str]]:
    """:func:`help_texts` from a fresh interpreter running this script (the docs build and the docs test
    import nothing of chatft themselves; this checkout first on the path)."""
    import subprocess

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve())], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"docs/gen_reference.py failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


def page_name(command: str) -> str:
    """``data convert`` -> ``data-convert.md``."""
    return command.replace(" ", "-") + ".md"


def options_in(help_text: str) -> set[str]:
    """The option strings (``--model.learning_rate``, ``--strict-spans``) a command's ``--help`` lists."""
    return set(re.findall(r"(?<![\w-])(--[A-Za-z][\w.-]*)", help_text))


def page(command: str, summary: str, help_text: str) -> str:
    """One reference page: the summary, how to get the same text, and the text."""
    return (
        f"# {command}\n\n"
        f"{summary[:1].upper()}{summary[1:]}.\n\n"
        f"The text below is `python -m chatft {command} --help`, generated from the code at every docs build.\n\n"
        f"```text\n{help_text.rstrip()}\n```\n"
    )


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    texts = help_texts()
    if args[:1] == ["--out"]:
        out = Path(args[1])
        out.mkdir(parents=True, exist_ok=True)
        for command, entry in texts.items():
            if command:
                (out / page_name(command)).write_text(page(command, entry["summary"], entry["help"]))
        return
    json.dump(texts, sys.stdout)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
