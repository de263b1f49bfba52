"""End to end through the CLI on a tiny random BERT: fit, test from a checkpoint, shipped configs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from chatft.cli import main
from chatft.training.lightning_cli import lightning_cli

from .conftest import cli_args

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "configs").glob("*.yaml"))


def _fit(encoder: str, data: Path, root: Path, *extra: str) -> None:
    main(["fit", *cli_args(encoder, data, root, trainer__max_epochs=2, data__batch_size=16), *extra])


def test_fit_then_test_from_checkpoint(tiny_encoder, demo_small, tmp_path, capsys):
    root = tmp_path / "run"
    _fit(tiny_encoder, demo_small, root)
    out = capsys.readouterr().out
    version = root / "lightning_logs" / "version_0"
    ckpts = sorted(p.name for p in (version / "checkpoints").iterdir())
    assert "last.ckpt" in ckpts and any(p.startswith("best-epoch") for p in ckpts)
    best = next(p for p in (version / "checkpoints").iterdir() if p.name.startswith("best-epoch"))
    assert f"best checkpoint: {best}" in out

    # Labels are linked from the data: they land in hparams.yaml and config.yaml.
    hparams = yaml.safe_load((version / "hparams.yaml").read_text())
    train_intents = sorted({line for line in (demo_small / "train/label").read_text().split()})
    assert hparams["intent_labels"] == ["<unk>", *train_intents]
    train_tags = {t for line in (demo_small / "train/seq.out").read_text().splitlines() for t in line.split()}
    assert hparams["slot_labels"][:2] == ["<unk>", "O"]
    assert set(hparams["slot_labels"][1:]) == train_tags
    assert (version / "config.yaml").is_file()

    # `test` works from the checkpoint and the data, writing its report under its own root.
    test_root = tmp_path / "test"
    main(
        [
            "test",
            "--config",
            str(REPO / "configs/demo.yaml"),
            "--model.encoder",
            tiny_encoder,
            "--data.data_dir",
            str(demo_small),
            "--ckpt_path",
            str(version / "checkpoints/last.ckpt"),
            "--trainer.default_root_dir",
            str(test_root),
            "--trainer.enable_progress_bar",
            "false",
        ]
    )
    out = capsys.readouterr().out
    for name in ("intent_acc", "intent_f1", "slot_f1", "slot_precision", "slot_recall", "sent_acc"):
        assert f"test/{name}" in out
    report_dir = test_root  # --trainer.default_root_dir names the evaluation's folder: no version_N in it
    report = json.loads((report_dir / "test_report.json").read_text())
    assert set(report) == {"metrics", "intents", "slots", "calibration"}
    assert sum(row["support"] for row in report["intents"]) == 23
    assert (report_dir / "intent_confusion.png").stat().st_size > 1000
    # Data without out-of-scope examples and a 23-utterance dev: T = 1 (too few to fit), the default fallback,
    # no OOS metrics; the ECE of 23 test utterances is not reported (NaN), its size is.
    cal = report["calibration"]
    assert (cal["temperature"], cal["oos"]["threshold"], cal["oos"]["ambiguity"]) == (1.0, 0.7, 0.1)
    assert cal["oos"]["notes"][0] == (
        "temperature: not fitted, T = 1 (dev has 23 in-scope utterances; fitting needs at least 50)"
    )
    assert {"test/ece_uncalibrated", "test/ece_calibrated"} <= set(report["metrics"])
    assert report["metrics"]["test/ece_n"] == 23 and cal["ece_calibrated"] is None
    assert not any("oos" in k for k in report["metrics"])
    assert sum(cal["bins_calibrated"]["count"]) == 23
    assert (report_dir / "reliability.png").stat().st_size > 1000
    assert (report_dir / "test_report.txt").read_text().startswith("metrics:")


def test_a_command_builds_the_parser_of_its_own_subcommand_only(tiny_encoder, demo_small, tmp_path):
    """LightningCLI builds a parser with every option for each of fit/validate/test/predict before parsing;
    a command runs one, so it builds that one (the other three cost every process about 1.5 s)."""
    from chatft.training.lightning_cli import ChatftCLI
    from chatft.training.tracker_cli import TrackerCLI

    for cls in (ChatftCLI, TrackerCLI):
        for name, skip in cls.subcommands().items():
            only = cls.only(name)
            assert only.subcommands() == {name: skip} and len(cls.subcommands()) == 4
            assert issubclass(only, cls) and only.__name__ == cls.__name__
    args = cli_args(tiny_encoder, demo_small, tmp_path / "run", trainer__max_epochs=1, data__batch_size=16)
    cli = lightning_cli(["fit", *args])
    assert list(cli.subcommand_parsers()) == ["fit"] and cli.trainer.global_step == 4


def test_intent_only_tsv_trains_without_slot_metrics(tiny_encoder, tmp_path, capsys):
    data = tmp_path / "tsv"
    data.mkdir()
    rows = ["book a table\tbook", "play some music\tplay", "turn on the light\thome", "play abba\tplay"] * 4
    for split in ("train", "dev", "test"):
        (data / f"{split}.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    _fit(tiny_encoder, data, tmp_path / "run", "--trainer.max_epochs", "1")
    capsys.readouterr()
    main(["test", *cli_args(tiny_encoder, data, tmp_path / "run"), "--ckpt_path", "last"])
    out = capsys.readouterr().out
    assert "test/intent_acc" in out and "test/sent_acc" in out and "slot_f1" not in out


@pytest.mark.parametrize("config", CONFIGS, ids=[c.name for c in CONFIGS])
def test_every_shipped_config_parses(config, tiny_encoder, demo_small):
    args = cli_args(tiny_encoder, demo_small, config=config, trainer__accelerator="cpu")
    cli = lightning_cli(args, run=False)
    assert cli.model.intent_vocab.labels == tuple(cli.datamodule.intent_labels)


def test_print_config_lists_the_documented_options(capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--print_config"])
    config = yaml.safe_load(capsys.readouterr().out)
    assert {"data_dir", "batch_size", "max_length"} <= set(config["data"])
    assert {"encoder", "use_crf", "slot_loss_coef"} <= set(config["model"])


def test_bad_data_dir_is_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["fit", "--data.data_dir", str(tmp_path), "--trainer.default_root_dir", str(tmp_path / "r")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("chatft: error:") and "no known data format" in err and "Traceback" not in err
