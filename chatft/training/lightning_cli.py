"""ChatftCLI: LightningCLI with chatft's links, defaults and one-line errors (``python -m chatft fit ...``).

:mod:`chatft.cli` dispatches ``fit``/``validate``/``test``/``predict`` here; this module is the only one
that builds the LightningCLI, so tests and users run it configured the same way. Labels are linked from the data to the model when both are
instantiated (``apply_on="instantiate"``) so they land in ``hparams.yaml`` and the checkpoint; the
tokenizer is linked from ``model.encoder`` so the two can never disagree.
"""

from __future__ import annotations

import logging
import sys
import warnings

from lightning.fabric.plugins import CheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import ArgsType, LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities.exceptions import SIGTERMException

from chatft.cli import PROG, OneLineErrors
from chatft.serving.writer import JsonlPredictionWriter
from chatft.training.checkpoint import (
    AtomicCheckpointIO,
    CheckpointError,
    check_labels_match,
    load_checkpoint,
)
from chatft.training.datamodule import IntentSlotDataModule
from chatft.training.module import IntentSlotModule
from chatft.training.resume import SIGTERM_EXIT_CODE, AutoSave, resolve_resume

MONITOR = "val/sent_acc"

log = logging.getLogger(__name__)


class ChatftArgumentParser(OneLineErrors, LightningArgumentParser):
    """LightningCLI's parser with chatft's one-line errors (closest valid option for a typo)."""


class ChatftCLI(LightningCLI):
    """``fit``/``validate``/``test``/``predict`` for :class:`IntentSlotModule` on :class:`IntentSlotDataModule`."""

    def setup_parser(self, add_subcommands: bool, main_kwargs: dict, subparser_kwargs: dict) -> None:
        """Lightning's parsers, each subcommand's named ``python -m chatft fit`` (jsonargparse would say
        ``python -m chatft [options] fit``)."""
        super().setup_parser(add_subcommands, main_kwargs, subparser_kwargs)
        for name, parser in getattr(self, "_subcommand_parsers", {}).items():
            parser.prog = f"{self.parser.prog} {name}"

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.intent_labels", "model.intent_labels", apply_on="instantiate")
        parser.link_arguments("data.slot_labels", "model.slot_labels", apply_on="instantiate")
        parser.link_arguments("model.encoder", "data.tokenizer")
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        # --autosave.every_n_train_steps / --autosave.on_sigterm: keep last.ckpt fresh for --ckpt_path last.
        parser.add_lightning_class_args(AutoSave, "autosave")
        # --predictions.output / --predictions.top_k: where and how `predict` writes its JSON Lines.
        parser.add_lightning_class_args(JsonlPredictionWriter, "predictions")
        parser.set_defaults(
            {
                # Sentence accuracy is the strictest joint metric (intent and every slot right), so the
                # checkpoint kept is the one that gets whole frames right most often on dev.
                "checkpoint.monitor": MONITOR,
                "checkpoint.mode": "max",
                "checkpoint.save_last": True,
                "checkpoint.filename": "best-epoch{epoch:02d}-step{step}",
                "checkpoint.auto_insert_metric_name": False,
                # Our samplers shard data per rank themselves (no repeated samples in evaluation).
                "trainer.use_distributed_sampler": False,
                "trainer.callbacks": [
                    {
                        "class_path": "lightning.pytorch.callbacks.LearningRateMonitor",
                        "init_args": {"logging_interval": "step"},
                    },
                    {"class_path": "chatft.training.callbacks.MetricsFile"},
                ],
            }
        )

    def before_instantiate_classes(self) -> None:
        """Without ``--data.data_dir``, take the label lists from ``--ckpt_path`` (predict on raw text)."""
        config = self.config.get(self.subcommand) if self.subcommand else self.config
        if config is None:
            return
        data = config.get("data")
        ckpt_path = config.get("ckpt_path")
        if data is not None and ckpt_path and not data.get("data_dir") and not data.get("labels_from"):
            data["labels_from"] = ckpt_path

    def parse_arguments(self, parser: LightningArgumentParser, args: ArgsType) -> None:
        """Parse, then check ``--ckpt_path`` before anything loads it (and resolve ``last`` for ``fit``)."""
        super().parse_arguments(parser, args)
        self._ckpt_hparams: dict | None = None
        subcommand = self.config.get("subcommand")
        config = self.config.get(subcommand) if subcommand else None
        ckpt_path = config.get("ckpt_path") if config is not None else None
        if not ckpt_path:
            return
        if ckpt_path == "last":
            ckpt_path = self._resolve_last(subcommand, config)
            if ckpt_path is None:
                return
        if ckpt_path in ("last", "best", "hpc") or (
            "://" in ckpt_path and not ckpt_path.startswith("file://")
        ):
            return
        # weights_only + chatft checks, before Lightning's own hparams parsing or restore reads the file.
        self._ckpt_hparams = dict(load_checkpoint(ckpt_path, mmap=True)["hyper_parameters"])

    def _resolve_last(self, subcommand: str, config) -> str | None:
        """``--ckpt_path last``: the newest last.ckpt under the run's root; ``fit`` also logs into its folder.

        (Lightning alone looks only in the new run's own, empty ``version_N+1`` folder: ``fit`` would silently
        start from scratch and ``test`` would silently test an untrained model.)
        """
        trainer = config.get("trainer")
        checkpoint = config.get("checkpoint")
        root = trainer.get("default_root_dir")
        path, logger = resolve_resume(
            root, checkpoint.get("dirpath") if checkpoint else None, trainer.get("logger")
        )
        if path is None and subcommand != "fit":
            raise CheckpointError(
                f"--ckpt_path last: no last.ckpt under {root or '.'}/lightning_logs/version_*/checkpoints "
                "(set --trainer.default_root_dir to the training run's root, or give the checkpoint's path)"
            )
        if path is None:
            log.warning("--ckpt_path last: no last.ckpt found for this run's root: starting a new run")
        update: dict = {"ckpt_path": path}
        if logger is not None and subcommand == "fit":
            update["trainer"] = {"logger": logger}
        self.config = self.parser.parse_object({subcommand: update}, self.config)
        return path

    def instantiate_classes(self) -> None:
        """Instantiate, then refuse what would fail or mislead later: a checkpoint trained on other labels,
        a split the stage needs but the data lacks."""
        super().instantiate_classes()
        dm = self.datamodule
        if not isinstance(dm, IntentSlotDataModule) or dm.data_dir is None:
            return
        if self._ckpt_hparams is not None:
            ckpt_path = self.config[self.subcommand]["ckpt_path"] if self.subcommand else ""
            check_labels_match(self._ckpt_hparams, dm.intent_labels, dm.slot_labels, ckpt_path, dm.data_dir)
        if self.subcommand in ("fit", "validate", "test"):
            dm.check_splits(self.subcommand, validating=self.trainer.limit_val_batches != 0)

    def instantiate_trainer(self, **kwargs):
        """The trainer, with :class:`AtomicCheckpointIO` unless a checkpoint plugin was configured."""
        plugins = kwargs.get("plugins", self._get(self.config_init, "trainer", default={}).get("plugins"))
        plugins = (
            [] if plugins is None else list(plugins) if isinstance(plugins, (list, tuple)) else [plugins]
        )
        if not any(isinstance(p, CheckpointIO) for p in plugins):
            kwargs["plugins"] = [*plugins, AtomicCheckpointIO()]
        return super().instantiate_trainer(**kwargs)

    def after_fit(self) -> None:
        ckpt = self.trainer.checkpoint_callback
        if self.trainer.is_global_zero and isinstance(ckpt, ModelCheckpoint):
            score = ckpt.best_model_score
            shown = f" ({ckpt.monitor}={float(score):.4f})" if score is not None else ""
            print(f"best checkpoint: {ckpt.best_model_path or '(none saved)'}{shown}", flush=True)
            if ckpt.last_model_path:
                print(f"last checkpoint: {ckpt.last_model_path}", flush=True)


def lightning_cli(
    args: ArgsType = None, run: bool = True, prog: str = PROG, cli_class: type = None
) -> ChatftCLI:
    """Build (and with ``run=True`` run) the CLI exactly as ``python -m chatft fit|validate|test|predict`` does.

    ``args`` starts with the subcommand when ``run`` is true; with ``run=False`` it holds the options only
    (``--config``, ``--data.*``, ``--model.*``, ``--trainer.*``) and the trainer, model and datamodule are
    instantiated without running anything (tests, and commands such as ``data audit`` that need fit's
    options). ``cli_class`` may be a :class:`ChatftCLI` subclass that adds its own options.
    """
    from chatft.cli import COMMANDS

    cls = cli_class or ChatftCLI
    per_command = {name: {"description": COMMANDS[name].summary} for name in cls.subcommands()}
    return cls(
        IntentSlotModule,
        IntentSlotDataModule,
        args=args,
        run=run,
        seed_everything_default=0,
        auto_configure_optimizers=False,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"default_env": False, "prog": prog, **(per_command if run else {})},
        parser_class=ChatftArgumentParser,
    )


def close_process_group() -> None:
    """Destroy the default process group, if any, before the interpreter exits.

    Lightning leaves it alive after fit/test; a gloo group torn down by interpreter shutdown can abort the
    process ("terminate called without an active exception", exit -6) after a run that succeeded.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def run_subcommand(subcommand: str, argv: list[str]) -> ChatftCLI:
    """``python -m chatft SUBCOMMAND ...`` for a Trainer method; a handled SIGTERM exits with code 143."""
    # Epoch metrics are torchmetrics values already reduced across ranks; Lightning still suggests
    # sync_dist=True for them under DDP, which would only average identical numbers (not bit-exactly).
    warnings.filterwarnings("ignore", message=r".*sync_dist=True.*")
    try:
        cli = lightning_cli([subcommand, *argv])
        close_process_group()
        return cli
    except SIGTERMException as err:
        saved = getattr(err, "checkpoint_path", None)
        what = (
            f"saved {saved}; resume with the same command plus --ckpt_path last"
            if saved
            else "no checkpoint saved"
        )
        print(f"chatft: stopped by SIGTERM ({what})", file=sys.stderr)
        raise SystemExit(SIGTERM_EXIT_CODE) from None


def fit(argv: list[str], prog: str) -> ChatftCLI:
    return run_subcommand("fit", argv)


def validate(argv: list[str], prog: str) -> ChatftCLI:
    return run_subcommand("validate", argv)


def test(argv: list[str], prog: str) -> ChatftCLI:
    return run_subcommand("test", argv)


def predict(argv: list[str], prog: str) -> ChatftCLI:
    return run_subcommand("predict", argv)
