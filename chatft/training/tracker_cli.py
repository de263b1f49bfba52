"""TrackerCLI: ``fit``/``validate``/``test``/``predict`` for the learned dialogue state tracker.

The same commands as the NLU model's (:class:`~chatft.training.lightning_cli.ChatftCLI`: run folders,
``--ckpt_path last|best``, one-line errors, the metrics table), on :class:`~chatft.training.tracker_module.
TrackerModule` and :class:`~chatft.training.tracker_data.TrackerDataModule`. :func:`is_tracker_run` decides
which one a command line is for: a dialogue folder as ``--data.data_dir`` (given on the command line or in a
``--config`` file), or a ``--ckpt_path`` whose hyper-parameters hold a tracker schema.

    python -m chatft fit --config configs/woz.yaml --data.data_dir DIR
    python -m chatft test --config configs/woz.yaml --data.data_dir DIR --ckpt_path best
    python -m chatft predict --ckpt_path CKPT --data.predict_file conversations.jsonl
"""

from __future__ import annotations

from pathlib import Path

from lightning.pytorch.cli import ArgsType, LightningArgumentParser

from chatft.command_line import PROG
from chatft.dialogue.dialogues import is_dialogue_folder
from chatft.training.best_checkpoint import BestCheckpoint
from chatft.training.lightning_cli import ChatftCLI, add_verbose, build_cli, run_defaults
from chatft.training.resume import AutoSave
from chatft.training.tracker_data import DEFAULT_MAX_LENGTH, TrackerDataModule
from chatft.training.tracker_module import TrackerModule
from chatft.training.tracker_predictions import TrackerPredictionWriter

__all__ = ["TrackerCLI", "MONITOR", "is_tracker_run", "tracker_cli"]

MONITOR = "val/joint_goal_acc"


def _option(argv: list[str], name: str) -> str | None:
    value = None
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith(name + "="):
            value = arg.split("=", 1)[1]
    return value


def _configs(argv: list[str]) -> list[str]:
    out = []
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            out.append(argv[i + 1])
        elif arg.startswith("--config="):
            out.append(arg.split("=", 1)[1])
    return out


def is_tracker_run(argv: list[str]) -> bool:
    """True when the command line is for the tracker: its data folder is a dialogue folder, or its checkpoint
    is a tracker's (hyper-parameters with a ``schema``)."""
    data_dir = _option(argv, "--data.data_dir")
    if data_dir is None:
        import yaml

        for config in _configs(argv):
            try:
                raw = yaml.safe_load(Path(config).read_text(encoding="utf-8"))
            except (OSError, yaml.YAMLError):
                continue
            given = (raw or {}).get("data", {}) if isinstance(raw, dict) else {}
            if isinstance(given, dict) and given.get("data_dir"):
                data_dir = str(given["data_dir"])
    if data_dir and is_dialogue_folder(Path(data_dir).expanduser()):
        return True
    ckpt = _option(argv, "--ckpt_path")
    if ckpt and Path(ckpt).is_file():
        from chatft.model.checkpoint import load_checkpoint

        hparams = load_checkpoint(ckpt, mmap=True).get("hyper_parameters", {})
        return isinstance(hparams.get("schema"), dict) and "slots" in hparams["schema"]
    return False


class TrackerCLI(ChatftCLI):
    """ChatftCLI's run handling with the tracker's module, data, links and checkpoint monitor."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.tracker_schema", "model.schema", apply_on="instantiate")
        parser.link_arguments("model.encoder", "data.tokenizer")
        parser.link_arguments("data.max_length", "model.max_length")
        parser.add_lightning_class_args(BestCheckpoint, "checkpoint")
        parser.add_lightning_class_args(AutoSave, "autosave")
        # --predictions.output: where `predict` writes its JSON Lines (the NLU command's option name).
        parser.add_lightning_class_args(TrackerPredictionWriter, "predictions")
        add_verbose(parser)
        parser.set_defaults(
            {
                # Joint goal accuracy: every slot right on a turn, the number the field reports. The data
                # module shards whole dialogues per rank itself.
                **run_defaults(MONITOR),
                "trainer.callbacks": [{"class_path": "chatft.training.callbacks.MetricsFile"}],
            }
        )

    def before_instantiate_classes(self) -> None:
        """Without ``--data.data_dir``, the schema comes from ``--ckpt_path`` (predict on your own conversations);
        without ``--data.max_length``, the checkpoint's (else 160), for the data and the model alike."""
        config = self.config.get(self.subcommand) if self.subcommand else self.config
        data = config.get("data") if config is not None else None
        if data is None:
            return
        ckpt_path = config.get("ckpt_path")
        if ckpt_path and not data.get("data_dir") and not data.get("schema_from"):
            data["schema_from"] = ckpt_path
        if data.get("max_length") is None:
            hparams = getattr(self, "_ckpt_hparams", None) or {}
            data["max_length"] = int(hparams.get("max_length") or DEFAULT_MAX_LENGTH)
            config["model"]["max_length"] = data["max_length"]

    def instantiate_classes(self) -> None:
        super(ChatftCLI, self).instantiate_classes()
        dm = self.datamodule
        if self.subcommand in ("fit", "validate", "test"):
            dm.check_splits(self.subcommand)


def tracker_cli(args: ArgsType = None, run: bool = True, prog: str = PROG) -> TrackerCLI:
    """Build (and with ``run=True`` run) the tracker's CLI, as ``python -m chatft fit ...`` does for a dialogue
    folder; ``args`` as :func:`chatft.training.lightning_cli.lightning_cli`'s."""
    return build_cli(TrackerCLI, TrackerModule, TrackerDataModule, args, run, prog)
