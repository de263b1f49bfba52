"""Which chatft package may import which: the dependency direction, checked on the source (AST).

Arrows point down only (``shared/STYLE.md``, "Dependency direction")::

    cli  ->  training, serving, data_tools, dialogue  ->  model (torch network, CRF, encoders, checkpoints)  ->  core

Serving never imports training and training never imports serving; the four middle packages do not import
each other, except data_tools -> dialogue (the dialogue format's reader and writer, torch-free); ``compat`` (the one home of private framework hooks) imports no chatft package and is used by
``model``, ``training`` and ``cli``; ``model`` never imports Lightning and ``core`` never torch, Lightning or transformers. Every
``import`` in every module under ``chatft/`` counts, function-local ones included (a lazy import is still a
dependency). A name starting with ``_`` is private to its package: ``from chatft.x import _y`` from another
package fails too. Failures name ``file:line`` and the import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "chatft"

#: Top-level part of chatft -> the parts it may import (itself always). ``chatft`` is the package root
#: (``__version__``, the lazy public names), importable from anywhere.
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    # The one home of private framework hooks (Lightning, torchmetrics, jsonargparse): imports only them.
    "compat": set(),
    "model": {"core", "compat"},
    # data_tools is torch-free (readers and converters): fit reads Rasa data through it (data_tools.ingest).
    # The learned dialogue state tracker trains on the torch-free dialogue format, labels and decoding.
    "training": {"model", "core", "compat", "data_tools", "dialogue", "command_line"},
    # The HTTP server and the chat command host the torch-free dialogue tracker; dialogue never imports serving.
    "serving": {"model", "core", "dialogue", "command_line"},
    # data_tools converts to, checks and counts chatft's dialogue format (chatft.dialogue.dialogues), which
    # imports only core: a sideways arrow, but one-way (dialogue never imports data_tools), so no cycle.
    "data_tools": {"core", "command_line", "compat", "dialogue"},
    "dialogue": {"core"},
    # The parser machinery every command shares (one-line errors, commands from signatures); torch-free.
    "command_line": {"core", "compat"},
    # Shipped --config presets (resources/configs): found by name from any directory; torch-free.
    "presets": {"core"},
    "cli": {
        "training",
        "serving",
        "data_tools",
        "dialogue",
        "model",
        "core",
        "compat",
        "presets",
        "command_line",
    },
    "__main__": {"cli"},
    "chatft": set(),
}
#: Third-party packages a part must not import (torch-free core; a torch model layer without Lightning).
FORBIDDEN_EXTERNAL: dict[str, set[str]] = {
    "core": {"torch", "lightning", "pytorch_lightning", "transformers"},
    "model": {"lightning", "pytorch_lightning"},
}


def part_of(module: str) -> str:
    """``chatft.serving.base`` -> ``serving``; ``chatft.cli`` -> ``cli``; ``chatft`` -> ``chatft``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "chatft"


def module_name(path: Path, root: Path = PACKAGE) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, root: Path = PACKAGE) -> list[tuple[int, str, list[str]]]:
    """``(line, imported module, imported names)`` of every import statement in the file, at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the file's package
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            out.append((node.lineno, base, [alias.name for alias in node.names]))
    return out


def violations(root: Path = PACKAGE) -> list[str]:
    """Every import that runs the wrong way, as ``file:line: ...`` lines."""
    found = []
    for path in sorted(root.rglob("*.py")):
        mine = part_of(module_name(path, root))
        rel = path.relative_to(root.parent).as_posix()
        for line, target, names in imports_of(path, root):
            top = target.split(".")[0]
            if top != "chatft":
                if top in FORBIDDEN_EXTERNAL.get(mine, ()):
                    found.append(f"{rel}:{line}: chatft.{mine} must not import {target}")
                continue
            theirs = part_of(target)
            if theirs != mine and theirs != "chatft" and theirs not in ALLOWED[mine]:
                found.append(f"{rel}:{line}: chatft.{mine} must not import {target} (chatft.{theirs})")
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            private += [p for p in target.split(".") if p.startswith("_") and not p.startswith("__")]
            if private and theirs != mine:
                found.append(
                    f"{rel}:{line}: private {', '.join(private)} imported from another package ({target})"
                )
    return found


def test_every_part_has_a_row():
    """A new top-level package or module must be placed in the table before it can import anything."""
    parts = {part_of(module_name(p)) for p in PACKAGE.rglob("*.py")}
    assert parts - set(ALLOWED) == set()


def test_imports_point_down_only():
    assert violations() == []


@pytest.mark.parametrize(
    ("where", "code", "message"),
    [
        (
            "serving/bad.py",
            "def f():\n    from chatft.training.module import IntentSlotModule\n",
            "chatft/serving/bad.py:2: chatft.serving must not import chatft.training.module (chatft.training)",
        ),
        (
            "training/bad.py",
            "import chatft.serving.predictor\n",
            "chatft/training/bad.py:1: chatft.training must not import chatft.serving.predictor (chatft.serving)",
        ),
        (
            "model/bad.py",
            "from ..training import module\n",
            "chatft/model/bad.py:1: chatft.model must not import chatft.training (chatft.training)",
        ),
        (
            "model/bad.py",
            "import lightning as L\n",
            "chatft/model/bad.py:1: chatft.model must not import lightning",
        ),
        (
            "training/bad.py",
            "from chatft.model.encoders import _secret\n",
            "chatft/training/bad.py:1: private _secret imported from another package (chatft.model.encoders)",
        ),
    ],
)
def test_a_wrong_import_is_reported(tmp_path, where, code, message):
    """The check itself can fail: each kind of wrong import is reported with file:line."""
    root = tmp_path / "chatft"
    for part in ("serving", "training", "model"):
        (root / part).mkdir(parents=True)
        (root / part / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    (root / where).write_text(code)
    assert violations(root) == [message]
