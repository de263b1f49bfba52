"""The command lines in the docs still parse against the CLI, without running anything.

Every ```bash block of README.md and docs/**/*.md is read; each ``python -m chatft ...`` command in it
(also ``torchrun ... -m chatft ...``, and the arguments that ``slurm/*.sbatch`` job files and
``benchmarks/seeds.py ... --`` pass on to ``python -m chatft``) must name a registered command (``data convert``: the group, then the command), and
each ``--option`` must be one that command's ``--help`` lists. The help texts come from
``docs/gen_reference.py``, the script the docs build uses for the reference pages, run once in a
subprocess (it imports Lightning; the test process stays as it was).
"""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

import pytest

from chatft.cli import COMMANDS, Group

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
OPERATORS = set("();<>|&")
SBATCH_COMMANDS = {"fit.sbatch": "fit", "fit-multinode.sbatch": "fit", "test.sbatch": "test"}


def _gen_reference():
    spec = importlib.util.spec_from_file_location("gen_reference", ROOT / "docs" / "gen_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def options() -> dict[str, set[str]]:
    """``{"data convert": {"--from", ...}}``: the options each command's ``--help`` lists."""
    reference = _gen_reference()
    texts = reference.help_texts_in_subprocess()
    return {command: reference.options_in(entry["help"]) for command, entry in texts.items()}


def bash_lines(markdown: str) -> list[tuple[int, str]]:
    """``(line number, command line)`` for each line of the bash blocks, ``\\`` continuations joined."""
    found: list[tuple[int, str]] = []
    in_bash = in_other = False
    pending, start = "", 0
    for number, line in enumerate(markdown.splitlines(), 1):
        fence = re.match(r"^\s*```\s*(\w*)", line)
        if fence and not in_bash and not in_other:
            in_bash = fence.group(1) in ("bash", "sh", "shell")
            in_other = not in_bash
            continue
        if fence:
            in_bash = in_other = False
            continue
        if not in_bash:
            continue
        if not pending:
            start = number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        found.append((start, pending + line))
        pending = ""
    return found


def segments(line: str) -> list[list[str]]:
    """The simple commands of a shell line: tokens split at ``&&``, ``|``, ``;``, redirections, ``$(``."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    parts: list[list[str]] = [[]]
    for token in lexer:
        if set(token) <= OPERATORS:
            parts.append([])
        else:
            parts[-1].append(token)
    return [p for p in parts if p]


def chatft_argv(tokens: list[str]) -> list[str] | None:
    """The arguments this simple command gives ``python -m chatft``, or None when it runs something else."""
    for i, token in enumerate(tokens):
        if re.fullmatch(r"python3?", Path(token).name) and tokens[i + 1 : i + 3] == ["-m", "chatft"]:
            return tokens[i + 3 :]
        if Path(token).name == "torchrun":  # torchrun [its options] -m chatft COMMAND ...
            module = [k for k in range(i + 1, len(tokens) - 1) if tokens[k : k + 2] == ["-m", "chatft"]]
            if module:
                return tokens[module[0] + 2 :]
        if Path(token).name in SBATCH_COMMANDS and token.startswith("slurm/") and "sbatch" in tokens[:i]:
            return [SBATCH_COMMANDS[Path(token).name], *tokens[i + 1 :]]
        if token.endswith("benchmarks/seeds.py") and "--" in tokens[i:]:
            return ["fit", *tokens[tokens.index("--", i) + 1 :]]
    return None


def problems_of(argv: list[str], options: dict[str, set[str]]) -> tuple[str | None, list[str]]:
    """(the command ``argv`` runs, what is wrong with it): an unknown command, or options it does not take."""
    commands: dict = COMMANDS
    path: list[str] = []
    rest = list(argv)
    while rest and not rest[0].startswith("-"):
        name = rest.pop(0)
        entry = commands.get(name)
        if entry is None:
            where = " ".join(["python -m chatft", *path])
            return None, [f"unknown command {name!r} (the commands of {where}: {', '.join(commands)})"]
        path.append(name)
        if not isinstance(entry, Group):
            break
        commands = entry.commands
    command = " ".join(path)
    if not path or isinstance(entry, Group):
        allowed = {"--help", "-h"} | ({"--version"} if not path else set())
        wrong = [t for t in rest if t.startswith("-") and t not in allowed]
        return command or None, [
            f"{command or 'python -m chatft'}: needs a command before {t}" for t in wrong
        ]
    known = options[command]
    wrong = [t.split("=", 1)[0] for t in rest if t.startswith("--") and t != "--"]
    return command, [
        f"{command}: no option {t} (see python -m chatft {command} --help)" for t in wrong if t not in known
    ]


def check(markdown: str, options: dict[str, set[str]], name: str = "") -> tuple[list[str], set[str]]:
    """Every problem in the bash blocks of ``markdown`` as ``name:line: ...``, and the commands seen."""
    problems, seen = [], set()
    for number, line in bash_lines(markdown):
        for tokens in segments(line):
            argv = chatft_argv(tokens)
            if argv is None:
                continue
            command, wrong = problems_of(argv, options)
            if command:
                seen.add(command)
            problems += [f"{name}:{number}: {w}" for w in wrong]
    return problems, seen


def test_every_command_line_in_the_docs_parses(options):
    problems, seen = [], set()
    for path in DOCS:
        found, commands = check(path.read_text(encoding="utf-8"), options, str(path.relative_to(ROOT)))
        problems += found
        seen |= commands
    assert problems == []
    assert {"fit", "test", "predict", "export", "chat", "serve", "data convert", "data check"} <= seen


def test_every_command_has_an_example_in_the_docs(options):
    seen: set[str] = set()
    for path in DOCS:
        seen |= check(path.read_text(encoding="utf-8"), options)[1]
    missing = [command for command in options if command and command not in seen]
    assert missing == [], "add a ```bash example of these commands to their guide in docs/"


def test_the_check_finds_each_kind_of_mistake(options):
    markdown = "\n".join(
        [
            "```bash",
            "python -m chatft fit --config configs/demo.yaml --model.learning_rte 1e-4",
            "python -m chatft trian --config configs/demo.yaml",
            "python -m chatft data convrt --from csv",
            "python -m chatft serve --onnx exports/demo \\",
            "  --prot 8000 && python -m chatft data check data/x --strict",
            "sbatch --gres=none slurm/test.sbatch --config configs/demo.yaml --ckpt_pth best",
            "python benchmarks/seeds.py --seeds 0 -- --config configs/atis.yaml --data.dir x",
            "torchrun --standalone --nproc_per_node 2 -m chatft fit --trainer.devices 2 --data.dri x",
            "python -m chatft data --verbose",
            "python -m chatft --help && python -m chatft data convert --strict-spans --help",
            "```",
            "```",
            "python -m chatft fit --not-checked-outside-bash-blocks",
            "```",
        ]
    )
    problems, seen = check(markdown, options, "doc.md")
    assert problems == [
        "doc.md:2: fit: no option --model.learning_rte (see python -m chatft fit --help)",
        f"doc.md:3: unknown command 'trian' (the commands of python -m chatft: {', '.join(COMMANDS)})",
        "doc.md:4: unknown command 'convrt' (the commands of python -m chatft data: "
        f"{', '.join(COMMANDS['data'].commands)})",
        "doc.md:5: serve: no option --prot (see python -m chatft serve --help)",
        "doc.md:5: data check: no option --strict (see python -m chatft data check --help)",
        "doc.md:7: test: no option --ckpt_pth (see python -m chatft test --help)",
        "doc.md:8: fit: no option --data.dir (see python -m chatft fit --help)",
        "doc.md:9: fit: no option --data.dri (see python -m chatft fit --help)",
        "doc.md:10: data: needs a command before --verbose",
    ]
    assert seen == {"fit", "serve", "data check", "test", "data", "data convert"}


def test_every_repository_path_in_the_docs_exists():
    """``chatft/serving/sessions.py``, ``configs/atis.yaml``...: a module that moves must take its docs along."""
    pattern = re.compile(
        r"(?<![\w./-])((?:chatft|tests|benchmarks|scripts|configs|slurm|docs)/[\w./*-]*[\w*/])"
    )
    missing = []
    for path in DOCS:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for found in pattern.findall(line):
                if not (any(ROOT.glob(found)) if "*" in found else (ROOT / found).exists()):
                    missing.append(f"{path.relative_to(ROOT)}:{number}: {found}")
    assert missing == []
