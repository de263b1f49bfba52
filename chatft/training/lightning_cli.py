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
from pathlib import Path

from lightning.fabric.plugins import CheckpointIO
from lightning.pytorch.callbacks import BasePredictionWriter, ModelCheckpoint, ProgressBar
from lightning.pytorch.cli import ArgsType, LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities.exceptions import SIGTERMException

from chatft.command_line import LIGHTNING_SUMMARIES, PROG, OneLineErrors
from chatft.compat.lightning_hooks import LightningCLIHooks
from chatft.core.errors import ConfigError
from chatft.data_tools.ingest import prepare as prepare_data_dir
from chatft.model.checkpoint import load_checkpoint
from chatft.training.best_checkpoint import FINISHED_KEY, BestCheckpoint
from chatft.training.calibration import OOSCalibration
from chatft.training.checkpoint import AtomicCheckpointIO, CheckpointError, check_labels_match
from chatft.training.contrastive import ContrastiveStage
from chatft.training.datamodule import IntentSlotDataModule
from chatft.training.distill import teacher_paths
from chatft.training.module import IntentSlotModule
from chatft.training.prediction_writer import JsonlPredictionWriter
from chatft.training.progress import ChatftProgressBar
from chatft.training.resume import SIGTERM_EXIT_CODE, AutoSave, resolve_resume
from chatft.training.schedule import SmallDataSchedule
from chatft.training.weight_averaging import WeightEMA

MONITOR = "val/sent_acc"
EVAL_COMMANDS = ("validate", "test", "predict")
#: ``--data.data_dir demo`` (as in configs/demo.yaml): the demo data shipped in the package, from any directory.
DEMO_ALIAS = "demo"
DEMO_DATA = Path(__file__).resolve().parents[1] / "resources" / "demo"
#: Lightning's INFO lines that say nothing about this run (the device used is printed by chatft instead).
NOISE = (
    "GPU available:",
    "TPU available:",
    "HPU available:",
    "💡 Tip:",
    "LOCAL_RANK:",
    "Seed set to",
    "Loading `train_dataloader` to estimate",
)

log = logging.getLogger(__name__)


def default_run_root(data_dir: str | None) -> str | None:
    """``runs/<data folder name>``: runs on different datasets never share a folder (``runs/atis``; a data
    file such as Rasa's ``data/nlu.yml`` gives ``runs/nlu``)."""
    if not data_dir:
        return None
    path = Path(data_dir).expanduser().resolve()
    return str(Path("runs") / ((path.stem if path.is_file() else path.name) or "data"))


def eval_dir_of(ckpt_path: str) -> Path:
    """Where an evaluation of ``ckpt_path`` writes: ``eval/`` in the run folder that holds it
    (``.../version_0/checkpoints/best.ckpt`` -> ``.../version_0/eval``), never a new TensorBoard version."""
    folder = Path(ckpt_path).expanduser().parent
    return (folder.parent if folder.name == "checkpoints" else folder) / "eval"


def best_checkpoint_next_to(last: str) -> str | None:
    """The best checkpoint of the run whose ``last.ckpt`` is ``last``: the one ``best-*.ckpt`` beside it, or,
    when there are several (``checkpoint.save_top_k`` > 1), the best path recorded in ``last.ckpt``."""
    found = sorted(Path(last).parent.glob("best-*.ckpt"))
    if len(found) == 1:
        return str(found[0])
    if not found:
        return None
    for key, state in load_checkpoint(last, mmap=True).get("callbacks", {}).items():
        if key.startswith(("ModelCheckpoint", "BestCheckpoint")) and state.get("best_model_path"):
            return str(state["best_model_path"])
    return str(found[-1])


def _is_local(ckpt_path: str) -> bool:
    return ckpt_path != "hpc" and ("://" not in ckpt_path or ckpt_path.startswith("file://"))


def check_accelerator(accelerator: object) -> None:
    """A GPU preset on a machine without one: one line, not Lightning's 48-line traceback."""
    if str(accelerator).lower() not in ("gpu", "cuda"):
        return
    import torch

    if not torch.cuda.is_available():
        raise ConfigError(
            "no GPU found: use a CPU preset (configs/debug.yaml, configs/ddp-cpu.yaml) or --trainer.accelerator cpu"
        )


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.getMessage())
        if message.startswith("[rank"):  # "[rank: 1] Seed set to 0"
            message = message.split("] ", 1)[-1]
        return not message.startswith(NOISE)


def check_distill_from(model) -> None:
    """``fit --model.distill_from PATH``: the teacher file must exist, said before any model is built (the
    teacher itself loads at the start of fitting, after the model summary). ``fit`` only: a student's
    checkpoint keeps the teacher's path in its hyper-parameters, and test/predict/export never read it."""
    if model is None:
        return
    paths = teacher_paths(model.get("distill_from") or (model.get("init_args") or {}).get("distill_from"))
    for path in paths:
        if not Path(path).expanduser().is_file():
            raise ConfigError(f"--model.distill_from {path}: no such checkpoint file")


def quiet_libraries() -> None:
    """Silence what comes before chatft's first useful line: transformers' weight-loading bar and LOAD
    REPORT (a pooler the task does not use), Lightning's GPU/TPU availability lines and advert, deprecation
    warnings. Kept: warnings and errors, the model summary (parameter counts), chatft's own lines."""
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    for name in (
        "lightning.pytorch.utilities.rank_zero",
        "lightning.fabric.utilities.rank_zero",
        "lightning.fabric.utilities.seed",
    ):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropNoise) for f in logger.filters):
            logger.addFilter(_DropNoise())
    if not sys.warnoptions:  # python -W default -m chatft ... (or PYTHONWARNINGS) shows them again
        for category in (DeprecationWarning, FutureWarning, PendingDeprecationWarning):
            warnings.filterwarnings("ignore", category=category)
    # Printed on every machine that has SLURM installed, also for a plain local run (srun is only used when
    # the job is launched with it; slurm/*.sbatch do that).
    warnings.filterwarnings("ignore", message=r".*The `srun` command is available on your system")


def _as_list(value) -> list:
    return [] if value is None else list(value) if isinstance(value, (list, tuple)) else [value]


class ChatftArgumentParser(OneLineErrors, LightningArgumentParser):
    """LightningCLI's parser with chatft's one-line errors (closest valid option for a typo)."""


def add_verbose(parser: LightningArgumentParser) -> None:
    """``--verbose``, which every chatft training command has (the NLU and the tracker CLIs)."""
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="show the libraries' own messages too (weight loading, GPU/TPU availability, deprecations)",
    )


def run_defaults(monitor: str) -> dict:
    """The defaults both training CLIs (NLU and tracker) set: keep the checkpoint best on ``monitor`` (higher
    is better) as ``best-epochEE-stepS.ckpt``, weights, hyper-parameters and inference assets only (last.ckpt
    also holds the optimizer), and no Lightning distributed sampler (chatft's data modules shard per rank
    themselves, without repeating samples in evaluation)."""
    return {
        "checkpoint.monitor": monitor,
        "checkpoint.mode": "max",
        "checkpoint.save_last": True,
        "checkpoint.filename": "best-epoch{epoch:02d}-step{step}",
        "checkpoint.auto_insert_metric_name": False,
        "checkpoint.save_weights_only": True,
        "trainer.use_distributed_sampler": False,
    }


class ChatftCLI(LightningCLIHooks):
    """``fit``/``validate``/``test``/``predict`` for :class:`IntentSlotModule` on :class:`IntentSlotDataModule`."""

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        """Lightning's, without ``Trainer.validate/test(verbose=...)``: ``--verbose`` is chatft's (show the
        libraries' messages), and the results table is always chatft's (see :meth:`_report`)."""
        return {
            name: skip | {"verbose"} if name in ("validate", "test") else skip
            for name, skip in LightningCLI.subcommands().items()
        }

    @classmethod
    def only(cls, subcommand: str) -> type[ChatftCLI]:
        """This CLI with the parser of ``subcommand`` alone (what ``python -m chatft fit`` etc. run).

        LightningCLI builds a whole parser (every Trainer, model, data and callback option, their docstrings
        parsed) for each of fit, validate, test and predict before it parses anything, and a command runs one
        of them. The other three cost every process about 1.5 s on a 2-core VM, twice in a row for a DDP run
        that Lightning starts, whose second process starts when the first reaches ``trainer.fit``
        (docs/results.md, "Data at scale: start-up, round 2"). ``--help`` and the errors are the same.
        """
        only = {subcommand: cls.subcommands()[subcommand]}
        namespace = {"__module__": cls.__module__, "__doc__": cls.__doc__}
        return type(cls.__name__, (cls,), {**namespace, "subcommands": staticmethod(lambda: dict(only))})

    def subcommand_kwargs(self, subcommand: str) -> dict:
        # Lightning's own results table prints float32 noise (0.800000011920929); _report prints ours.
        kwargs = super().subcommand_kwargs(subcommand)
        if subcommand in ("validate", "test"):
            kwargs["verbose"] = False
        return kwargs

    def setup_parser(self, add_subcommands: bool, main_kwargs: dict, subparser_kwargs: dict) -> None:
        """Lightning's parsers, each subcommand's named ``python -m chatft fit`` (jsonargparse would say
        ``python -m chatft [options] fit``)."""
        super().setup_parser(add_subcommands, main_kwargs, subparser_kwargs)
        for name, parser in self.subcommand_parsers().items():
            parser.prog = f"{self.parser.prog} {name}"

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.intent_labels", "model.intent_labels", apply_on="instantiate")
        parser.link_arguments("data.slot_labels", "model.slot_labels", apply_on="instantiate")
        # Units the tokenizer maps to [UNK], chosen on the training split (--data.extend_vocab).
        parser.link_arguments("data.added_tokens", "model.added_tokens", apply_on="instantiate")
        parser.link_arguments("model.encoder", "data.tokenizer")
        # --checkpoint.*: Lightning's ModelCheckpoint; ties keep the later epoch, optimizer state only in last.ckpt
        # and only until the run finishes (--checkpoint.keep_optimizer_state true keeps it).
        parser.add_lightning_class_args(BestCheckpoint, "checkpoint")
        # --schedule.min_steps / --schedule.patience: more epochs on small data, then early stopping on dev.
        parser.add_lightning_class_args(SmallDataSchedule, "schedule")
        parser.link_arguments("checkpoint.monitor", "schedule.monitor")
        parser.link_arguments("checkpoint.mode", "schedule.mode")
        # --contrastive.enabled / --contrastive.iterations / ...: SetFit's pair stage on the encoder before the
        # heads train; off by default (measured no better on few-shot dev: chatft.training.contrastive).
        parser.add_lightning_class_args(ContrastiveStage, "contrastive")
        parser.link_arguments("data.oos_label", "model.oos_label")
        # --oos.method / --oos.max_acc_drop / --oos.target_recall / --oos.fallback_intent: calibration and
        # out-of-scope decision fitted on dev at the end of fit (chatft.training.calibration).
        parser.add_lightning_class_args(OOSCalibration, "oos")
        # --ema.decay / --ema.start_step: validate and keep an exponential moving average of the weights.
        parser.add_lightning_class_args(WeightEMA, "ema")
        # --autosave.every_n_train_steps / --autosave.on_sigterm: keep last.ckpt fresh for --ckpt_path last.
        parser.add_lightning_class_args(AutoSave, "autosave")
        # --predictions.output / --predictions.top_k: where and how `predict` writes its JSON Lines.
        parser.add_lightning_class_args(JsonlPredictionWriter, "predictions")
        add_verbose(parser)
        parser.set_defaults(
            {
                # Sentence accuracy is the strictest joint metric (intent and every slot right), so the
                # checkpoint kept is the one that gets whole frames right most often on dev.
                **run_defaults(MONITOR),
                "trainer.callbacks": [
                    {
                        "class_path": "lightning.pytorch.callbacks.LearningRateMonitor",
                        "init_args": {"logging_interval": "step"},
                    },
                    {"class_path": "chatft.training.callbacks.MetricsFile"},
                    {"class_path": "chatft.training.callbacks.ErrorsFile"},
                ],
            }
        )

    def before_instantiate_classes(self) -> None:
        """Without ``--data.data_dir``, take the label lists from ``--ckpt_path`` (predict on raw text); with it,
        the checkpoint's added vocabulary units (whatever ``--data.extend_vocab`` says)."""
        config = self.config.get(self.subcommand) if self.subcommand else self.config
        if config is None:
            return
        data = config.get("data")
        ckpt_path = config.get("ckpt_path")
        if data is None or not ckpt_path or data.get("labels_from"):
            return
        if not data.get("data_dir") or getattr(self, "_ckpt_hparams", None) is not None:  # a local checkpoint
            data["labels_from"] = ckpt_path

    def parse_arguments(self, parser: LightningArgumentParser, args: ArgsType) -> None:
        """Parse, then settle what the run reads and writes before anything is loaded.

        The data folder (``demo``: the packaged demo data), the run root (default ``runs/<data folder
        name>``), the checkpoint (``last``/``best`` resolved under the root; validate/test/predict refuse to
        run without one unless told ``none``), where an evaluation writes, that a GPU exists when one is
        asked for; and the libraries' noise is silenced unless ``--verbose``.
        """
        argv = sys.argv[1:] if args is None else args if isinstance(args, list) else []
        # An epoch or step count typed on the command line is the user's, not the recipe's: it wins over
        # SmallDataSchedule's minimum (a config file's max_epochs is the recipe and may be raised). Only the
        # whole option counts: chatft's parsers take no abbreviations (``OneLineErrors``).
        self._explicit_length = any(
            str(a).split("=")[0] in ("--trainer.max_epochs", "--trainer.max_steps") for a in argv
        )
        super().parse_arguments(parser, args)
        self._ckpt_hparams: dict | None = None
        self._existing: dict[Path, int] = {}
        self._print_metrics = False
        subcommand = self.config.get("subcommand")
        config = self.config.get(subcommand) if subcommand else self.config
        if not config.get("verbose"):
            quiet_libraries()
        data, trainer = config.get("data"), config.get("trainer")
        if data is not None and data.get("data_dir") == DEMO_ALIAS and not Path(DEMO_ALIAS).is_dir():
            data["data_dir"] = str(DEMO_DATA)
        check_accelerator(trainer.get("accelerator"))
        if subcommand == "fit":
            check_distill_from(config.get("model"))
        given_root = trainer.get("default_root_dir")
        root = given_root or default_run_root(data.get("data_dir") if data is not None else None)
        if data is not None and data.get("data_dir"):
            # Rasa data (data/nlu.yml, a Rasa project) is converted into the run root, once per content.
            cache = root if subcommand not in EVAL_COMMANDS else default_run_root(data["data_dir"])
            data["data_dir"] = prepare_data_dir(data["data_dir"], Path(cache) / "converted")
        ckpt_path = config.get("ckpt_path") if subcommand else None
        if subcommand not in EVAL_COMMANDS:
            if root:
                trainer["default_root_dir"] = root
            if ckpt_path in ("last", "best"):
                ckpt_path = self._resolve(subcommand, config, root, ckpt_path)
        else:
            self._print_metrics = subcommand != "predict"
            if ckpt_path is None:
                where = f" (last/best: the newest run under {root})" if root else ""
                raise ConfigError(
                    f"{subcommand} needs a trained model: --ckpt_path PATH|last|best{where}; "
                    "--ckpt_path none evaluates an untrained model as a baseline"
                )
            if ckpt_path.lower() == "none":
                ckpt_path = config["ckpt_path"] = None
            elif ckpt_path in ("last", "best"):
                ckpt_path = self._resolve(subcommand, config, root, ckpt_path)
            # Outputs go where the user says, else next to the checkpoint; no TensorBoard version_N for them.
            if given_root:
                out = Path(given_root)
            elif ckpt_path and _is_local(ckpt_path):
                out = eval_dir_of(ckpt_path)
            else:
                out = Path(root or "runs") / "untrained"
            trainer["default_root_dir"] = str(out)
            self._existing = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
            # The checkpoint's ModelCheckpoint state names the training folder; irrelevant to an evaluation.
            warnings.filterwarnings("ignore", message="The dirpath has changed from")
            if trainer.get("logger") in (None, True):
                trainer["logger"] = False
        if ckpt_path and _is_local(ckpt_path):
            # weights_only + chatft checks, before Lightning's own hparams parsing or restore reads the file.
            ckpt = load_checkpoint(ckpt_path, mmap=True)
            if subcommand == "fit" and "optimizer_states" not in ckpt and ckpt.get(FINISHED_KEY):
                raise CheckpointError(
                    f"{ckpt_path}: this run finished, so nothing to resume (its optimizer state was dropped to "
                    "save space; --checkpoint.keep_optimizer_state true keeps it): test it with --ckpt_path "
                    "last, or start a new fit without --ckpt_path"
                )
            if subcommand == "fit" and "optimizer_states" not in ckpt:
                raise CheckpointError(
                    f"{ckpt_path}: holds model weights only, no optimizer state (best-*.ckpt files do, to save "
                    "space): resume from last.ckpt (--ckpt_path last), or start a new fit without --ckpt_path"
                )
            self._ckpt_hparams = dict(ckpt["hyper_parameters"])

    def _resolve(self, subcommand: str, config, root: str | None, which: str) -> str | None:
        """``--ckpt_path last|best``: the newest run's last.ckpt (or its best checkpoint) under the run root;
        ``fit`` from ``last`` also logs into that run's folder.

        (Lightning alone looks only in the new run's own, empty ``version_N+1`` folder: ``fit`` would silently
        start from scratch and ``test`` would silently test an untrained model.)
        """
        trainer = config.get("trainer")
        checkpoint = config.get("checkpoint")
        logger = trainer.get("logger")
        path, run_logger = resolve_resume(
            root,
            checkpoint.get("dirpath") if checkpoint else None,
            None if subcommand in EVAL_COMMANDS and logger in (None, True) else logger,
        )
        if path is not None and which == "best":
            path = best_checkpoint_next_to(path)
        if path is None and (subcommand != "fit" or which == "best"):
            raise CheckpointError(
                f"--ckpt_path {which}: no {'best-*' if which == 'best' else 'last'}.ckpt under "
                f"{root or '.'}/lightning_logs/version_*/checkpoints (set --trainer.default_root_dir to the "
                "training run's root, or give the checkpoint's path)"
            )
        if path is None:
            log.warning("--ckpt_path last: no last.ckpt found for this run's root: starting a new run")
        config["ckpt_path"] = path
        if run_logger is not None and subcommand == "fit" and which == "last":
            self.config = self.parser.parse_object(
                {subcommand: {"trainer": {"logger": run_logger}}}, self.config
            )
        return path

    def instantiate_classes(self) -> None:
        """Instantiate, then refuse what would fail or mislead later: a checkpoint trained on other labels,
        a split the stage needs but the data lacks."""
        super().instantiate_classes()
        for callback in self.trainer.callbacks:
            if isinstance(callback, SmallDataSchedule):
                callback.explicit_length = self._explicit_length
        dm = self.datamodule
        if not isinstance(dm, IntentSlotDataModule) or dm.data_dir is None:
            return
        if self._ckpt_hparams is not None:
            ckpt_path = self.config[self.subcommand]["ckpt_path"] if self.subcommand else ""
            check_labels_match(self._ckpt_hparams, dm.intent_labels, dm.slot_labels, ckpt_path, dm.data_dir)
        if self.subcommand in ("fit", "validate", "test"):
            dm.check_splits(self.subcommand, validating=self.trainer.limit_val_batches != 0)

    def instantiate_trainer(self, **kwargs):
        """The trainer, with :class:`AtomicCheckpointIO` unless a checkpoint plugin was configured, and
        :class:`ChatftProgressBar` unless the progress bar is off or another one was configured."""
        config = {**self.trainer_config(), **kwargs}
        plugins = _as_list(config.get("plugins"))
        if not any(isinstance(p, CheckpointIO) for p in plugins):
            kwargs["plugins"] = [*plugins, AtomicCheckpointIO()]
        callbacks = _as_list(config.get("callbacks"))
        if config.get("enable_progress_bar") is not False and not any(
            isinstance(c, ProgressBar) for c in callbacks
        ):
            # Lightning would add its own bar, which leaves a single line in a log file.
            kwargs["callbacks"] = [*callbacks, ChatftProgressBar()]
        return super().instantiate_trainer(**kwargs)

    def before_fit(self) -> None:
        self._print_device()

    def before_validate(self) -> None:
        self._print_device()

    def before_test(self) -> None:
        self._print_device()

    def before_predict(self) -> None:
        self._print_device()

    def _print_device(self) -> None:
        """The device used, in one line (what Lightning's GPU/TPU availability lines were good for)."""
        trainer = self.trainer
        if trainer.is_global_zero:
            kind = type(trainer.accelerator).__name__.replace("Accelerator", "").lower() or "cpu"
            n = trainer.num_devices * trainer.num_nodes
            print(
                f"device: {kind} x {n}" + (f", {trainer.precision}" if trainer.precision != "32-true" else "")
            )

    def after_validate(self) -> None:
        self._report("val/")

    def after_test(self) -> None:
        self._report("test/")

    def after_predict(self) -> None:
        self._report(None)

    def _report(self, prefix: str | None) -> None:
        """Every metric of the run with 6 decimals, then every file the evaluation wrote."""
        trainer = self.trainer
        if not trainer.is_global_zero:
            return
        if prefix and self._print_metrics:
            print(
                format_metrics(
                    {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(prefix)}
                )
            )
        out = Path(trainer.default_root_dir)
        writers = [
            cb
            for cb in trainer.callbacks
            if isinstance(cb, BasePredictionWriter) and getattr(cb, "path", None)
        ]
        shown = writers[0].path if writers else None  # the writer printed its own line
        written = [p for p in out.rglob("*") if p.is_file() and self._existing.get(p) != p.stat().st_mtime_ns]
        for path in sorted(written):
            if shown is None or path.resolve() != Path(shown).resolve():
                print(f"wrote: {path}", flush=True)

    def after_fit(self) -> None:
        ckpt = self.trainer.checkpoint_callback
        log_dir = self.trainer.log_dir  # a broadcast under DDP: every rank must read it, not only rank 0
        if self.trainer.is_global_zero and log_dir:
            print(f"run folder: {log_dir}", flush=True)
        if self.trainer.is_global_zero and isinstance(ckpt, ModelCheckpoint):
            score = ckpt.best_model_score
            shown = f" ({ckpt.monitor}={float(score):.4f})" if score is not None else ""
            print(f"best checkpoint: {ckpt.best_model_path or '(none saved)'}{shown}", flush=True)
            if ckpt.last_model_path:
                print(f"last checkpoint: {ckpt.last_model_path}", flush=True)


def format_metrics(metrics: dict[str, float]) -> str:
    """The metrics table: ``name  value`` rows, every value with 6 decimals (enough to compare with
    seqeval to 1e-6), names in the order logged."""
    width = max((len(k) for k in metrics), default=0) + 2
    return "\n".join(f"{name:<{width}}{value:.6f}" for name, value in metrics.items())


def lightning_cli(
    args: ArgsType = None, run: bool = True, prog: str = PROG, cli_class: type = None
) -> ChatftCLI:
    """Build (and with ``run=True`` run) the CLI exactly as ``python -m chatft fit|validate|test|predict`` does.

    ``args`` starts with the subcommand when ``run`` is true; with ``run=False`` it holds the options only
    (``--config``, ``--data.*``, ``--model.*``, ``--trainer.*``) and the trainer, model and datamodule are
    instantiated without running anything (tests, and commands such as ``data audit`` that need fit's
    options). ``cli_class`` may be a :class:`ChatftCLI` subclass that adds its own options.
    """
    return build_cli(cli_class or ChatftCLI, IntentSlotModule, IntentSlotDataModule, args, run, prog)


def build_cli(
    cls: type, module_class: type, datamodule_class: type, args: ArgsType, run: bool, prog: str
) -> ChatftCLI:
    """``cls`` (:class:`ChatftCLI` or a subclass) over ``module_class`` and ``datamodule_class``, built as every
    chatft training command is: the one subcommand's parser only (:meth:`ChatftCLI.only`), seed 0, chatft's
    own ``configure_optimizers``, the config saved over an older one, no environment variables as options."""
    # chatft.cli (and a test) hands LightningCLI the arguments after the command name; sys.argv still has
    # the whole command line (or pytest's), which LightningCLI would warn about.
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
    if run and isinstance(args, list) and args and args[0] in cls.subcommands():
        cls = cls.only(args[0])
    per_command = {name: {"description": LIGHTNING_SUMMARIES[name]} for name in cls.subcommands()}
    return cls(
        module_class,
        datamodule_class,
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
        from chatft.training.tracker_cli import is_tracker_run, tracker_cli

        build = tracker_cli if is_tracker_run(argv) else lightning_cli
        cli = build([subcommand, *argv])
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
    return run_subcommand("predict", explain_shorthand(argv))


def explain_shorthand(argv: list[str]) -> list[str]:
    """``predict --explain [METHOD]`` as ``--predictions.explain METHOD`` (default occlusion): the writer's
    option under the short name the guide uses (jsonargparse has no aliases for class arguments)."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--explain":
            value = argv[i + 1] if i + 1 < len(argv) and not argv[i + 1].startswith("-") else None
            out += ["--predictions.explain", value or "occlusion"]
            i += 2 if value else 1
            continue
        out.append("--predictions.explain=" + arg.split("=", 1)[1] if arg.startswith("--explain=") else arg)
        i += 1
    return out
