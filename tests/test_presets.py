"""Shipped config presets: ``--config demo.yaml`` from any directory, and the presets inside the wheel."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile

import pytest
import yaml

from chatft.cli import main
from chatft.presets import PRESETS_DIR, resolve_config_args, shipped_preset, shipped_presets
from tests.conftest import REPO

PRESETS = [f"{name}.yaml" for name in "atis ddp-cpu ddp debug demo gpu-bf16 preemptible woz".split()]


def test_the_shipped_presets_are_the_top_level_configs_folder():
    assert shipped_presets() == sorted(p.name for p in (REPO / "configs").glob("*.yaml")) == PRESETS
    assert PRESETS_DIR.is_symlink() and PRESETS_DIR.resolve() == (REPO / "configs").resolve()


def test_a_preset_is_named_by_its_name_its_file_name_or_its_configs_path():
    names = ("demo", "demo.yaml", "configs/demo.yaml", "configs/demo")
    assert [shipped_preset(v) for v in names] == [PRESETS_DIR / "demo.yaml"] * 4
    not_presets = ("other/demo.yaml", "/abs/configs/demo.yaml", "nope.yaml")
    assert [shipped_preset(v) for v in not_presets] == [None] * 3


def test_config_names_resolve_to_the_shipped_presets_outside_the_repository(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = ["--config", "configs/demo.yaml", "--config=debug.yaml", "--data.batch_size", "4"]
    assert resolve_config_args(argv) == [
        "--config", str(PRESETS_DIR / "demo.yaml"), f"--config={PRESETS_DIR / 'debug.yaml'}",
        "--data.batch_size", "4",
    ]  # fmt: skip
    assert capsys.readouterr().err.splitlines() == [
        f"chatft: --config configs/demo.yaml: using the shipped preset {PRESETS_DIR / 'demo.yaml'}",
        f"chatft: --config debug.yaml: using the shipped preset {PRESETS_DIR / 'debug.yaml'}",
    ]


def test_an_existing_file_or_inline_yaml_is_used_as_it_is(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo.yaml").write_text("seed_everything: 1\n", encoding="utf-8")
    long_yaml = "{" + ", ".join(f"k{i}: {i}" for i in range(100)) + "}"  # longer than a file name may be
    argv = ["--config", "demo.yaml", "--config", "trainer: {max_epochs: 2}", "--config", long_yaml]
    assert resolve_config_args(argv) == argv
    monkeypatch.chdir(REPO)
    assert resolve_config_args(["--config", "configs/demo.yaml"]) == ["--config", "configs/demo.yaml"]
    assert capsys.readouterr().err == ""


def test_a_missing_config_file_is_one_line_that_lists_the_presets(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(["chat", "--config", "demo2.yaml"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == (
        "chatft: error: --config demo2.yaml: no such file (shipped presets, usable from any directory: "
        + ", ".join(PRESETS)
        + ")\n"
    )


def test_fit_reads_shipped_presets_by_name_from_another_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(["fit", "--config", "demo.yaml", "--config", "debug.yaml", "--print_config"])
    assert exit_.value.code == 0
    config = yaml.safe_load(capsys.readouterr().out)
    trainer = {k: config["trainer"][k] for k in ("max_epochs", "limit_train_batches", "default_root_dir")}
    # debug.yaml's trainer over demo.yaml's recipe
    assert trainer == {"max_epochs": 1, "limit_train_batches": 5, "default_root_dir": "runs/debug"}
    assert (config["data"]["data_dir"], config["model"]["head_learning_rate"]) == ("demo", 0.001)


def test_the_wheel_ships_the_presets_as_files(tmp_path):
    """``pip wheel`` of a copy of the sources (offline: no build isolation) holds every preset."""
    src = tmp_path / "src"
    skip = shutil.ignore_patterns("__pycache__")
    shutil.copytree(REPO / "chatft", src / "chatft", symlinks=True, ignore=skip)
    shutil.copytree(REPO / "configs", src / "configs")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    pip = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run([*pip, "-w", str(tmp_path), str(src)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("chatft-*.whl")
    with zipfile.ZipFile(wheel) as z:
        shipped = {n: z.read(n) for n in z.namelist() if "/resources/configs/" in n}
    assert shipped == {f"chatft/resources/configs/{n}": (REPO / "configs" / n).read_bytes() for n in PRESETS}
