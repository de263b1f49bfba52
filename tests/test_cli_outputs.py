"""What the CLI commands print and where they write, as a user meets them (issue 11, items 1, 5, 8, 13, 17).

One tiny model is trained once, from a working directory of its own with no --trainer.default_root_dir, so
the run folder is named after the data folder: ``runs/mydata``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from chatft.cli import main

from .conftest import DEMO_CONFIG, QUIET, REPO, demo_subset

NO_MODEL = (
    "chatft: error: {cmd} needs a trained model: --ckpt_path PATH|last|best (last/best: the newest run under "
    "runs/mydata); --ckpt_path none evaluates an untrained model as a baseline"
)


@pytest.fixture(scope="module")
def run(tiny_encoder, tmp_path_factory) -> dict:
    """``fit`` from ``cwd`` without a run root: the run goes to ``runs/mydata``."""
    import contextlib
    import io

    cwd = tmp_path_factory.mktemp("user")
    data = demo_subset(cwd / "mydata", n_train=32, n_eval=9)
    here = os.getcwd()
    os.chdir(cwd)
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            main(["fit", "--config", str(DEMO_CONFIG), "--model.encoder", tiny_encoder, "--data.data_dir",
                  "mydata", "--trainer.max_epochs", "2", "--data.batch_size", "16", *QUIET])  # fmt: skip
    finally:
        os.chdir(here)
    return {"cwd": cwd, "data": data, "encoder": tiny_encoder, "out": out.getvalue()}


@pytest.fixture
def in_cwd(run, monkeypatch):
    monkeypatch.chdir(run["cwd"])
    return run


def _common(run: dict) -> list[str]:
    return [
        "--config",
        str(DEMO_CONFIG),
        "--model.encoder",
        run["encoder"],
        "--data.data_dir",
        "mydata",
        *QUIET,
    ]


def test_fit_names_the_run_folder_after_the_data_folder_and_prints_its_paths(in_cwd):
    version = Path("runs/mydata/lightning_logs/version_0")
    best = next((version / "checkpoints").glob("best-*.ckpt"))
    lines = in_cwd["out"].splitlines()
    assert lines[0] == "device: cpu x 1"
    assert lines[-3] == f"run folder: {version}"
    assert re.fullmatch(rf"best checkpoint: {re.escape(str(best))} \(val/sent_acc=\d\.\d{{4}}\)", lines[-2])
    assert lines[-1] == f"last checkpoint: {version}/checkpoints/last.ckpt"


@pytest.mark.parametrize("cmd", ["validate", "test", "predict"])
def test_evaluation_without_a_checkpoint_stops_with_one_line(cmd, in_cwd, capsys):
    with pytest.raises(SystemExit) as exc:
        main([cmd, *_common(in_cwd)])
    assert exc.value.code == 2
    assert capsys.readouterr().err.splitlines() == [NO_MODEL.format(cmd=cmd)]


def test_test_best_writes_next_to_the_checkpoint_and_prints_every_metric_and_path(in_cwd, capsys):
    version = Path("runs/mydata/lightning_logs/version_0")
    main(["test", *_common(in_cwd), "--ckpt_path", "best"])
    lines = capsys.readouterr().out.splitlines()
    report = json.loads((version / "eval/test_report.json").read_text())
    metrics = report["metrics"]
    assert set(metrics) >= {"test/intent_acc", "test/intent_f1", "test/slot_f1", "test/sent_acc"}
    width = len("test/intent_precision") + 2
    assert lines[0] == "device: cpu x 1"
    # 9 in-scope test utterances: no ECE (the metrics say nan), one line says why.
    assert lines[1] == "ece: not reported, 9 in-scope test utterances (a 15-bin ECE needs at least 100)"
    table = lines[2:-6]
    # Every metric with 6 decimals, in the `name  value` layout; the loss is logged but not in the report.
    assert table[0].startswith("test/loss".ljust(width)) and re.fullmatch(r"\d+\.\d{6}", table[0][width:])
    assert table[1:] == [f"{name:<{width}}{value:.6f}" for name, value in metrics.items()]
    assert lines[-6:] == [
        f"wrote: {version}/eval/{name}"
        for name in (
            "config.yaml",
            "errors.jsonl",
            "intent_confusion.png",
            "reliability.png",
            "test_report.json",
            "test_report.txt",
        )
    ]
    # No new TensorBoard version next to the training run; the report has no empty <unk> row.
    assert sorted(os.listdir("runs/mydata/lightning_logs")) == ["version_0"]
    assert "<unk>" not in [row["label"] for row in report["intents"]]
    assert "<unk>" not in (version / "eval/test_report.txt").read_text()
    best = next((version / "checkpoints").glob("best-*.ckpt"))
    assert f"ckpt_path: {best}\n" in (version / "eval/config.yaml").read_text()


def test_predict_without_config_writes_next_to_the_checkpoint_not_into_lightning_logs(in_cwd, capsys):
    last = Path("runs/mydata/lightning_logs/version_0/checkpoints/last.ckpt").resolve()
    texts = Path("texts.txt")
    texts.write_text("book a flight to denver\nhello\n", encoding="utf-8")
    main(["predict", "--ckpt_path", str(last), "--data.predict_file", str(texts), *QUIET])
    eval_dir = last.parent.parent / "eval"
    assert capsys.readouterr().out.splitlines() == [
        "device: cpu x 1",
        f"predictions: {eval_dir}/predictions.jsonl",
        f"wrote: {eval_dir}/config.yaml",
    ]
    assert len((eval_dir / "predictions.jsonl").read_text().splitlines()) == 2
    assert not Path("lightning_logs").exists()


def test_untrained_baseline_only_when_asked(in_cwd, capsys):
    main(["validate", *_common(in_cwd), "--ckpt_path", "none"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "device: cpu x 1"
    assert lines[-2:] == [
        "wrote: runs/mydata/untrained/config.yaml",
        "wrote: runs/mydata/untrained/val_metrics.jsonl",
    ]
    row = json.loads(Path("runs/mydata/untrained/val_metrics.jsonl").read_text())
    metrics = {k: v for k, v in row.items() if k.startswith("val/")}
    width = max(map(len, metrics)) + 2
    assert lines[1:-2] == [f"{name:<{width}}{value:.6f}" for name, value in metrics.items()]


def test_demo_config_works_from_any_directory(tiny_encoder, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):
        main(["fit", "--config", str(DEMO_CONFIG), "--print_config"])
    printed = capsys.readouterr().out
    assert (
        "  data_dir: demo\n" in printed
    )  # the alias is kept in the config; it is resolved when the run starts
    from chatft.training.lightning_cli import DEMO_DATA, lightning_cli

    cli = lightning_cli(["--config", str(DEMO_CONFIG), "--model.encoder", tiny_encoder,
                         "--trainer.accelerator", "cpu"], run=False)  # fmt: skip
    assert cli.datamodule.data_dir == str(DEMO_DATA) and Path(cli.trainer.default_root_dir) == Path(
        "runs/demo"
    )


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a GPU")
@pytest.mark.parametrize("preset", ["gpu-bf16.yaml", "ddp.yaml"])
def test_gpu_preset_without_gpu_is_one_line(preset, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["fit", "--config", str(DEMO_CONFIG), "--config", str(REPO / "configs" / preset),
              "--trainer.default_root_dir", str(tmp_path)])  # fmt: skip
    assert exc.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "chatft: error: no GPU found: use a CPU preset (configs/debug.yaml, configs/ddp-cpu.yaml) or "
        "--trainer.accelerator cpu"
    ]


NOISE = ("LOAD REPORT", "GPU available", "TPU available", "💡 Tip", "Loading weights", "Deprecat")


@pytest.mark.parametrize("verbose", [False, True])
def test_no_library_noise_before_the_first_useful_line_unless_verbose(verbose, in_cwd):
    """A user's first run (a real process, real logging): quiet by default, everything with --verbose."""
    args = [sys.executable, "-m", "chatft", "validate", *_common(in_cwd), "--ckpt_path", "best"]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    proc = subprocess.run(
        [*args, *(["--verbose"] if verbose else [])], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stderr
    output = proc.stdout + proc.stderr
    if verbose:
        assert "GPU available: False, used: False" in output
    else:
        assert [n for n in NOISE if n in output] == []
        assert proc.stdout.splitlines()[0] == "device: cpu x 1"
        best = next(Path("runs/mydata/lightning_logs/version_0/checkpoints").glob("best-*.ckpt"))
        assert proc.stderr.splitlines() == [  # what was evaluated: kept
            f"Restoring states from the checkpoint path at {best}",
            f"Loaded model weights from the checkpoint at {best}",
        ]
