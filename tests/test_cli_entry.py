"""The one CLI: ``python -m chatft --help`` lists every command; every command takes --config, --print_config
and --help the same way; typos and unknown commands end in one line that names the closest valid choice."""

from __future__ import annotations

import subprocess
import sys

import pytest

from chatft.cli import COMMANDS, PROG, Command, Group, main

from .conftest import REPO

HELP_HEAD = [
    "usage: python -m chatft COMMAND [--config FILE] [OPTIONS]",
    "",
    "Fine-tune BERT-family encoders for joint intent detection and slot filling, then evaluate, export, "
    "serve and chat with the models.",
    "",
    "commands:",
]


def _leaves(commands: dict, prefix: str = "") -> list[tuple[str, Command]]:
    out = []
    for name, entry in commands.items():
        if isinstance(entry, Group):
            out += _leaves(entry.commands, f"{prefix}{name} ")
        else:
            out.append((f"{prefix}{name}", entry))
    return out


def test_help_lists_every_command_with_one_line(capsys):
    main(["--help"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[: len(HELP_HEAD)] == HELP_HEAD
    listed = lines[len(HELP_HEAD) : len(HELP_HEAD) + len(COMMANDS)]
    width = max(len(n) for n in COMMANDS) + 2
    assert listed == [f"  {name:<{width}}{entry.summary}" for name, entry in COMMANDS.items()]
    assert {"fit", "validate", "test", "predict", "export", "chat"} <= set(COMMANDS)
    assert lines[-2:] == [
        "Every command takes --config FILE (YAML), --print_config and --help, e.g.",
        "  python -m chatft fit --help",
    ]


def test_bare_command_prints_the_same_help_and_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2
    assert capsys.readouterr().out.splitlines()[: len(HELP_HEAD)] == HELP_HEAD


def test_python_dash_m_shows_python_dash_m_chatft():
    proc = subprocess.run(
        [sys.executable, "-m", "chatft", "--help"], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert proc.stdout.splitlines()[0] == "usage: python -m chatft COMMAND [--config FILE] [OPTIONS]"


def test_every_summary_is_one_short_line():
    for name, entry in _leaves(COMMANDS):
        assert "\n" not in entry.summary and 20 <= len(entry.summary) <= 100, name
        assert entry.summary[0].islower() and not entry.summary.endswith("."), name


def test_unknown_command_suggests_the_closest(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["fitt", "--config", "configs/demo.yaml"])
    assert exc.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "chatft: error: unknown command 'fitt': did you mean fit? (commands: python -m chatft --help)"
    ]


@pytest.mark.parametrize("name", [name for name, _ in _leaves(COMMANDS)])
def test_every_command_has_help_with_config_and_print_config(name, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*name.split(), "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: {PROG} {name} ")
    assert "--config CONFIG" in out and "--print_config" in out


def test_function_command_option_typo_is_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["chat", "--onnx", "x", "--requirments", "demo"])
    assert exc.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "chatft: error: unrecognized option --requirments: did you mean --requirements? "
        "(options: python -m chatft chat --help)"
    ]


def test_lightning_command_option_typo_is_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["fit", "--config", str(REPO / "configs/demo.yaml"), "--model.learning_rte", "3e-5"])
    assert exc.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "chatft: error: unrecognized option --model.learning_rte: did you mean --model.learning_rate? "
        "(options: python -m chatft fit --help)"
    ]


@pytest.mark.parametrize(
    ("argv", "typo", "meant", "prog"),
    [
        (
            ["fit", "--config", str(REPO / "configs/demo.yaml"), "--model.learning_rat", "1"],
            "--model.learning_rat",
            "--model.learning_rate",
            "fit",
        ),
        (
            ["fit", "--config", str(REPO / "configs/demo.yaml"), "--trainer.max_epoch", "3"],
            "--trainer.max_epoch",
            "--trainer.max_epochs",
            "fit",
        ),
        (["chat", "--onnx", "x", "--requirement", "demo"], "--requirement", "--requirements", "chat"),
    ],
)
def test_a_prefix_of_an_option_is_a_typo_not_the_option(capsys, argv, typo, meant, prog):
    # argparse's abbreviations took --model.learning_rat as --model.learning_rate and trained at rate 1.
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        f"chatft: error: unrecognized option {typo}: did you mean {meant}? "
        f"(options: python -m chatft {prog} --help)"
    ]


def test_chat_needs_exactly_one_model(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["chat", "--input", "turns.txt"])
    assert exc.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "chatft: error: chat: give exactly one of --ckpt_path CKPT and --onnx DIR"
    ]


def test_function_command_print_config_round_trips_through_config(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["chat", "--onnx", "model-dir", "--requirements", "demo", "--print_config"])
    printed = capsys.readouterr().out
    assert printed.splitlines() == [
        "ckpt_path: null",
        "onnx: model-dir",
        "requirements: demo",
        "input: null",
        "device: cpu",
        "fallback_response: Sorry, I didn't get that.",
    ]
    config = tmp_path / "chat.yaml"
    config.write_text(printed, encoding="utf-8")
    with pytest.raises(SystemExit):
        main(["chat", "--config", str(config), "--device", "cuda", "--print_config"])
    assert "device: cuda" in capsys.readouterr().out.splitlines()
