"""ChatftCLI: LightningCLI with chatft's links, defaults and one-line errors.

Run ``python -m chatft --help``. Labels are linked from the data to the model when both are
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


class ChatftCLI(LightningCLI):
    """``fit``/``validate``/``test``/``predict`` for :class:`IntentSlotModule` on :class:`IntentSlotDataModule`."""

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




def _export(argv: list[str]) -> None:
    from chatft.serving.export import main as export_main

    export_main(argv)


def _chat(argv: list[str]) -> None:
    from chatft.dialogue.chat import main as chat_main

    chat_main(argv)


#: Commands that are not Trainer methods, dispatched before LightningCLI (each has its own ``--help``).
EXTRA_COMMANDS = {"export": _export, "chat": _chat}
EPILOG = (
    "more commands: export (ONNX model + labels + tokenizer for onnxruntime), "
    "chat (interactive or --input file, with dialogue state); see python -m chatft export --help"
)


def run_cli(args: ArgsType = None) -> ChatftCLI:
    """Build and run the CLI (``args`` is a list for tests; None reads ``sys.argv``)."""
    return ChatftCLI(
        IntentSlotModule,
        IntentSlotDataModule,
        args=args,
        seed_everything_default=0,
        auto_configure_optimizers=False,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"default_env": False, "epilog": EPILOG},
    )


def close_process_group() -> None:
    """Destroy the default process group, if any, before the interpreter exits.

    Lightning leaves it alive after fit/test; a gloo group torn down by interpreter shutdown can abort the
    process ("terminate called without an active exception", exit -6) after a run that succeeded.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def main(args: ArgsType = None) -> None:
    """Entry point: user mistakes end in one line on stderr and exit code 2, not a traceback."""
    from chatft.core.errors import USER_ERRORS

    argv = sys.argv[1:] if args is None else args
    # Epoch metrics are torchmetrics values already reduced across ranks; Lightning still suggests
    # sync_dist=True for them under DDP, which would only average identical numbers (not bit-exactly).
    warnings.filterwarnings("ignore", message=r".*sync_dist=True.*")
    try:
        if isinstance(argv, list) and argv and argv[0] in EXTRA_COMMANDS:
            EXTRA_COMMANDS[argv[0]](list(argv[1:]))
            return
        run_cli(args)
        close_process_group()
    except USER_ERRORS as err:
        print(f"chatft: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    except SIGTERMException as err:
        saved = getattr(err, "checkpoint_path", None)
        what = (
            f"saved {saved}; resume with the same command plus --ckpt_path last"
            if saved
            else "no checkpoint saved"
        )
        print(f"chatft: stopped by SIGTERM ({what})", file=sys.stderr)
        raise SystemExit(SIGTERM_EXIT_CODE) from None
