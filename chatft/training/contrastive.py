"""A contrastive stage on the encoder before the heads train (SetFit's recipe), for few-shot training sets.

With a handful of utterances an intent, fine-tuning encoder and heads together sees each utterance a few
dozen times and little else. SetFit (Tunstall et al. 2022) first fine-tunes the sentence encoder on *pairs*
(:func:`chatft.core.pairs.sentence_pairs`: per utterance and round, one same-intent partner with target
cosine 1 and one other-intent partner with target 0; cosine-similarity MSE on mean-pooled embeddings, the
pooling sentence-transformers encoders such as the default MiniLM were trained with; AdamW at 2e-5, linear
warmup and decay, one pass). 2 x iterations x N pairs out of N utterances is what lets a few examples move
the encoder's geometry: utterances of one intent pull together before any head exists. Then ``fit`` trains
the joint intent + slot model as always, from the adapted encoder.

:class:`ContrastiveStage` is the ``--contrastive.*`` option group. It runs in ``setup("fit")``: after the
data is tokenized and after the model is built, before Lightning moves it to the device and wraps it
(under DDP every process runs the same seeded stage on the same full training split, and DDP then
broadcasts rank 0's weights, so the processes start the heads' training identical), and before a resumed
fit restores its checkpoint (a resumed fit skips the stage: its weights come from the checkpoint).

Off by default (``enabled: false``): measured on CLINC150 with 5 utterances an intent (DialoGLUE's
sampling, seed 0, ``configs/atis.yaml``), dev in-scope accuracy was 0.8590 with the stage against 0.8617
without it, for 230 s more training on 2 CPU cores (docs/results.md, "Few-shot intents (CLINC150)"); with 10
utterances an intent 0.9120 against 0.9143, and with the few-shot mean pooling that now reads the adapted
embedding 0.9070 against 0.9197; on all-mpnet-base-v2 (10-shot, ``[CLS]``) 0.9410 against 0.9500, for 17.5
minutes of stage. ``enabled: null`` is the few-shot rule the stage would be the default with:
on only when the training set has at least 2 intents and at most ``max_per_intent`` utterances per intent on
average, out-of-scope utterances left out as in every few-shot rule of ``fit`` (ATIS has
213 an intent, CLINC150 100, the demo data 133), and off, unless ``enabled`` is true, for a run that would
not use it well: a debug run (``limit_train_batches``, ``fast_dev_run``), a randomly initialised encoder
(``--model.pretrained false``: nothing pretrained to adapt), a student started from a distillation teacher.
"""

from __future__ import annotations

import logging
import math
import time

import lightning as L
import torch
import torch.nn.functional as F

from chatft.core.errors import ConfigError
from chatft.core.features import pad_batch
from chatft.core.pairs import FEW_SHOT_PER_INTENT, is_few_shot, label_name_words, sentence_pairs
from chatft.training.schedule import training_shape, training_split

log = logging.getLogger(__name__)

#: Parameter names without weight decay (sentence-transformers' and the heads' rule).
_NO_DECAY = ("bias", "LayerNorm.weight", "LayerNorm.bias", "layer_norm.weight", "norm.weight")


def mean_pooled(
    encoder: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor
) -> torch.Tensor:
    """Sentence embeddings ``[B, H]``: the mean of the real tokens' last hidden states."""
    hidden = encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def train_on_pairs(
    encoder: torch.nn.Module,
    features: list,
    pairs: list[tuple[int, int, float]],
    pad_id: int,
    batch_size: int,
    learning_rate: float,
    warmup_ratio: float,
    device: torch.device | str = "cpu",
) -> list[float]:
    """One pass over ``pairs`` (indices into ``features``) with cosine-similarity MSE; returns each step's loss.

    Both sides of a batch go through the encoder in one forward (2 x batch_size sentences). Dropout is on,
    as in SetFit; gradients are clipped to norm 1 (sentence-transformers' ``fit``).
    """
    from transformers import get_linear_schedule_with_warmup

    from chatft.training.optimizer import adamw

    params = [(n, p) for n, p in encoder.named_parameters() if p.requires_grad]
    groups = [
        {"params": [p for n, p in params if not n.endswith(_NO_DECAY)], "weight_decay": 0.01},
        {"params": [p for n, p in params if n.endswith(_NO_DECAY)], "weight_decay": 0.0},
    ]
    steps = math.ceil(len(pairs) / batch_size)
    optimizer = adamw([g for g in groups if g["params"]], learning_rate)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(warmup_ratio * steps), max(1, steps))
    was_training = encoder.training
    encoder.train()
    losses = []
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        sentences = [features[i] for i, _, _ in chunk] + [features[j] for _, j, _ in chunk]
        batch = pad_batch(sentences, pad_id)
        ids = torch.from_numpy(batch["input_ids"]).to(device)
        mask = torch.from_numpy(batch["attention_mask"]).to(device)
        embeddings = mean_pooled(encoder, ids, mask)
        left, right = embeddings[: len(chunk)], embeddings[len(chunk) :]
        target = torch.tensor([t for _, _, t in chunk], dtype=embeddings.dtype, device=embeddings.device)
        loss = F.mse_loss(F.cosine_similarity(left, right), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for _, p in params], 1.0)
        optimizer.step()
        scheduler.step()
        losses.append(float(loss.detach()))
    encoder.train(was_training)
    return losses


def label_features(dm, intent_ids: list[int]) -> list:
    """Features of the intents' names as utterances (``label_name_words``), tokenized like the data; names
    without a letter or digit are left out."""
    from chatft.core.features import tokenize_examples

    named = [(i, label_name_words(dm.intent_labels[i])) for i in intent_ids]
    named = [(i, words) for i, words in named if words]
    return tokenize_examples(
        dm.tokenizer,
        [words for _, words in named],
        dm.max_length,
        word_tag_ids=[None] * len(named),
        intents=[i for i, _ in named],
    )


class ContrastiveStage(L.Callback):
    """SetFit's contrastive pair stage on the encoder, before the joint intent + slot training.

    Args:
        enabled: True: always run it; False (default: measured no better on dev, module docstring): never;
            None: only for few-shot training sets (at least 2 intents, at most ``max_per_intent`` utterances
            per intent on average, out-of-scope utterances not counted) of a normal fit of a pretrained encoder.
        max_per_intent: The few-shot bound of ``enabled: null`` (training utterances per intent, on average;
            the default is the bound of every other few-shot rule of ``fit``).
        iterations: Rounds of pair generation (SetFit's ``num_iterations``): each gives every training
            utterance one positive and one negative pair.
        max_steps: Most optimizer steps of the stage (SetFit's ``max_steps``); the shuffled pairs beyond
            ``max_steps x batch_size`` are dropped, which bounds its time on larger sets (0: no cap).
        batch_size: Pairs per optimizer step (each step encodes twice as many sentences).
        learning_rate: Peak AdamW learning rate of the stage (SetFit's ``body_learning_rate``).
        warmup_ratio: Share of the stage's steps spent warming up linearly, then linear decay to 0.
        seed: Seed of the pair draw; None: the run's seed (``seed_everything``), so seeds change the pairs too.
        label_names: Add each intent's name, as words (``pto_request``: "pto request"), to the pairs as one
            more utterance of that intent: the name's meaning as extra signal (the joint training is unchanged).
    """

    def __init__(
        self,
        enabled: bool | None = False,
        max_per_intent: float = FEW_SHOT_PER_INTENT,
        iterations: int = 20,
        max_steps: int = 500,
        batch_size: int = 16,
        learning_rate: float = 2e-5,
        warmup_ratio: float = 0.1,
        seed: int | None = None,
        label_names: bool = False,
    ) -> None:
        if iterations < 1 or batch_size < 1 or max_steps < 0 or max_per_intent < 0:
            raise ConfigError(
                "--contrastive.iterations and --contrastive.batch_size must be >= 1, --contrastive.max_steps and "
                f"--contrastive.max_per_intent >= 0 (got {iterations}, {batch_size}, {max_steps}, {max_per_intent})"
            )
        if learning_rate <= 0 or not 0.0 <= warmup_ratio < 1.0:
            raise ConfigError(
                "--contrastive.learning_rate must be > 0 and --contrastive.warmup_ratio in [0, 1) "
                f"(got {learning_rate}, {warmup_ratio})"
            )
        self.enabled = enabled
        self.max_per_intent = max_per_intent
        self.iterations = iterations
        self.max_steps = max_steps
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.warmup_ratio = warmup_ratio
        self.seed = seed
        self.label_names = label_names
        #: Per-step losses of the last stage run (empty when it did not run), for tests and reports.
        self.losses: list[float] = []

    def skip_reason(
        self, trainer: L.Trainer, pl_module: L.LightningModule, per_intent: float, n_intents: int = 2
    ) -> str | None:
        """Why the stage does not run in this fit (None: it runs). ``per_intent`` and ``n_intents`` count the
        training set without its out-of-scope utterances (:func:`chatft.core.pairs.in_scope_shape`)."""
        if trainer.ckpt_path:
            return "resumed fit (the weights come from the checkpoint)"
        if self.enabled is not None:
            return None if self.enabled else "--contrastive.enabled false"
        hparams = getattr(pl_module, "hparams", {})
        if n_intents < 2:
            return f"{n_intents} intent{'' if n_intents == 1 else 's'}, no pairs of different intents"
        if per_intent > self.max_per_intent:
            return f"{per_intent:.1f} utterances per intent, more than --contrastive.max_per_intent"
        if trainer.fast_dev_run or trainer.limit_train_batches != 1.0:
            return "debug run"
        if hparams.get("pretrained") is False:
            return "randomly initialised encoder"
        if hparams.get("distill_from"):
            return "student of a distillation teacher"
        return None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.losses = []
        if stage != "fit" or self.enabled is False:
            return
        train, shape = training_split(trainer), training_shape(trainer)
        if not train or not shape:
            return
        n, n_intents = shape
        reason = self.skip_reason(trainer, pl_module, n / n_intents if n_intents else 0.0, n_intents)
        if reason is not None:
            few_shot = is_few_shot(n, n_intents, self.max_per_intent)
            if self.enabled is None and few_shot and trainer.is_global_zero:
                log.info("contrastive stage skipped: %s", reason)
            return
        self.run(trainer, pl_module, train, [f.intent for f in train])

    def run(self, trainer: L.Trainer, pl_module: L.LightningModule, train, labels: list[int]) -> None:
        seed = torch.initial_seed() if self.seed is None else self.seed
        features = [train[i] for i in range(len(train))]
        names = label_features(trainer.datamodule, sorted(set(labels))) if self.label_names else []
        features += names
        labels = [*labels, *(f.intent for f in names)]
        pairs = sentence_pairs(labels, self.iterations, seed % 2**32)
        if self.max_steps:
            pairs = pairs[: self.max_steps * self.batch_size]
        encoder = pl_module.model.encoder
        device = trainer.strategy.root_device
        encoder.to(device)
        started = time.perf_counter()
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)  # dropout: the same stage whatever ran before it
            self.losses = train_on_pairs(
                encoder,
                features,
                pairs,
                trainer.datamodule.tokenizer.pad_token_id,
                self.batch_size,
                self.learning_rate,
                self.warmup_ratio,
                device,
            )
        if trainer.is_global_zero:
            first, last = self.losses[0], sum(self.losses[-10:]) / len(self.losses[-10:])
            print(
                f"contrastive stage: {len(pairs)} pairs of {len(labels) - len(names)} utterances"
                f"{f' and {len(names)} intent names' if names else ''} ({len(self.losses)} steps of "
                f"{self.batch_size}), loss {first:.4f} -> {last:.4f}, {time.perf_counter() - started:.0f} s",
                flush=True,
            )
