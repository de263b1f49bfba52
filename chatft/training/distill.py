"""Knowledge distillation: a student starts from a trained chatft checkpoint's weights and learns from its soft
intent and slot targets.

    python -m chatft fit --config configs/atis.yaml --data.data_dir ../shared/data/atis \\
        --model.encoder_layers '[0,2,4]' --model.distill_from runs/atis/lightning_logs/version_0/checkpoints/best-….ckpt

The student's loss is ``(1 - w) * usual loss + w * soft loss`` with
``soft = T² * (KL(teacher_T || student_T) on intents + slot_loss_coef * KL on words)``: ``T`` the temperature
(softer distributions carry the teacher's "dark knowledge" about near-miss classes; ``T²`` keeps the
gradient scale of the soft term independent of ``T``, Hinton et al. 2015), the slot term averaged over real
words only (word-level logits, as the slot head and decoding see them; padding never counts). The default
``T = 1`` was chosen on ATIS dev: higher temperatures made a 3-layer student worse there (the teacher is
near one-hot on its training data, and at high ``T`` the loss asks the student to match its logit margins,
which a smaller model pays for in accuracy).

The teacher runs in eval mode (no dropout, no gradient) and is not part of the student: it is never saved in
the student's checkpoint, and a student reloads, tests, exports and serves without it. Its logits for a
training utterance do not change from one epoch to the next, so they are computed the first time the
utterance is seen and cached by its index: the teacher costs one forward pass over the training set, not one
per epoch (``Teacher.stats`` counts both, and fit logs them).

The student also starts from the teacher's weights (:func:`init_from_teacher`), not the pretrained encoder's,
unless ``--model.distill_init false``; and ``--model.distill_hidden_weight b`` adds ``b`` times the cosine
distance between the student's and the teacher's last hidden states (:func:`hidden_distance`).

A teacher with another tokenizer (its own encoder, e.g. an all-mpnet-base-v2 teacher for the default MiniLM
student; decided by :func:`same_tokenizer`) cannot read the student's ``input_ids``. Its targets are per
utterance and per word, not per token, so they are computed from the words with the teacher's own tokenizer,
feature code and ``max_length`` (:func:`word_targets`, the inference path), once for every training utterance
before training starts, and the cache is filled with them (every DDP rank computes all of them: each rank
samples its own shard of every epoch, and one pass over the training set is cheap next to training). Its
weights cannot be copied (``distill_init`` defaults to no; ``true`` is an error) and its hidden states are per
token of another tokenization (``distill_hidden_weight`` > 0 is an error). Truncation may cut different words:
the cached slot rows have the student's number of words, zeros where the teacher never saw a word, and those
words get no slot target (:func:`fit_rows`).

``--model.distill_crf true`` (a CRF teacher, a CRF student): the slot term is no longer a per-word KL on
emission scores, which is not what a CRF predicts, but the exact KL between the two CRFs' distributions over
whole tag sequences (:func:`crf_kl`, from per-utterance :class:`~chatft.core.crf_posterior.CrfTarget` statistics
computed once from the teacher's emissions and transitions), so the student's transitions learn from the
teacher too. An utterance the teacher's truncation cut differently gets no slot target.

Several teachers (``--model.distill_from '[a.ckpt, b.ckpt, c.ckpt]'``, e.g. one model per seed, whose average
is often more accurate than each; ``benchmarks/ensemble_eval.py`` says whether it is on dev) teach as one: each
computes its targets from the words with its own tokenizer before training, as above, and the cache holds
their mean logits per utterance and per word (:func:`average_targets`; with ``distill_crf``, the mean of their
CRF scores too). Hidden states are not averaged (``distill_hidden_weight`` > 0 is an error); the student may
start from the first teacher's weights when it shares the student's tokenizer (``distill_init``, as with one
teacher).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from chatft.core.crf_posterior import CrfTarget, crf_target
from chatft.core.decoding import SlotDecoder
from chatft.core.errors import ConfigError
from chatft.core.features import pad_batch, tokenize_examples
from chatft.core.inference_loop import MODEL_INPUTS

log = logging.getLogger(__name__)


def soft_kl(student: Tensor, teacher: Tensor, temperature: float) -> Tensor:
    """``KL(softmax(teacher/T) || softmax(student/T))`` summed over the last axis, one value per row."""
    s = F.log_softmax(student.float() / temperature, dim=-1)
    t = F.log_softmax(teacher.float() / temperature, dim=-1)
    return F.kl_div(s, t, log_target=True, reduction="none").sum(-1)


def distillation_loss(
    student_intent: Tensor,
    teacher_intent: Tensor,
    student_slots: Tensor | None,
    teacher_slots: Tensor | None,
    word_mask: Tensor,
    temperature: float = 1.0,
    slot_loss_coef: float = 1.0,
) -> Tensor:
    """``T² * (mean intent KL + slot_loss_coef * mean KL over real words)``; exactly 0 when logits are equal."""
    loss = soft_kl(student_intent, teacher_intent, temperature).mean()
    if student_slots is not None and teacher_slots is not None:
        per_word = soft_kl(student_slots, teacher_slots, temperature)
        mask = word_mask.to(per_word.dtype)
        loss = loss + slot_loss_coef * (per_word * mask).sum() / mask.sum().clamp(min=1)
    return temperature**2 * loss


def crf_kl(crf, emissions: Tensor, targets: Sequence[CrfTarget | None], word_mask: Tensor) -> Tensor | None:
    """Mean ``KL(p_teacher(y | x) || p_student(y | x))`` over a batch's utterances that have a target (None when
    none has): ``log Z_S - E_teacher[score_S(y)] - H_teacher``, differentiable in the student's emissions
    ``[B, W, T]`` and its CRF's start, transition and end scores. Exactly 0 (to rounding) when the student's
    CRF and emissions are the teacher's. ``targets[b].n_words`` must be utterance ``b``'s word count."""
    rows = [b for b, target in enumerate(targets) if target is not None]
    if not rows:
        return None
    log_z = crf.log_partition(emissions[rows], word_mask[rows])
    dtype, device = log_z.dtype, log_z.device
    start, trans, end = crf.masked_scores(dtype, device)
    em = emissions[rows].to(dtype)
    kls = []
    for r, b in enumerate(rows):
        target = targets[b]
        q = torch.from_numpy(target.unary).to(device=device, dtype=dtype)
        expected = (q * em[r, : target.n_words]).sum() + q[0] @ start + q[-1] @ end
        if target.pair_mass.size:
            i = torch.from_numpy(target.pair_from).to(device)
            j = torch.from_numpy(target.pair_to).to(device)
            mass = torch.from_numpy(target.pair_mass).to(device=device, dtype=dtype)
            expected = expected + (mass * trans[i, j]).sum()
        kls.append(log_z[r] - expected - target.entropy)
    return torch.stack(kls).mean()


def same_tokenizer(a, b) -> bool:
    """Whether two fast tokenizers turn words into the same ids: their serialized state (vocabulary,
    normalizer, pre-tokenizer, added tokens) and class are equal (:func:`~chatft.training.arrow_features.
    tokenizer_digest`, the feature cache's key), not only their sizes (MPNet's and BERT's differ by 5 ids)."""
    from chatft.training.arrow_features import tokenizer_digest

    return a is b or tokenizer_digest(a) == tokenizer_digest(b)


def fit_rows(rows: Tensor, n_words: int) -> tuple[Tensor, int]:
    """A teacher's word rows ``[k, T]`` cut or zero-padded to the student's ``n_words`` rows, and how many of
    them the teacher saw (``min(k, n_words)``): the two tokenizers' truncation may keep different words."""
    seen = min(rows.size(0), n_words)
    out = rows.new_zeros(n_words, rows.size(1))
    out[:seen] = rows[:seen]
    return out, seen


def word_targets(
    loaded,
    words: Sequence[Sequence[str]],
    n_words: Sequence[int],
    batch_size: int = 64,
    device: torch.device | str | None = None,
) -> list[tuple[Tensor, Tensor | None, int]]:
    """A teacher's ``(intent logits [I], slot rows [n_words[i], T] or None, words it saw)`` for each utterance
    of ``words``, from its own tokenizer and ``max_length``.

    ``loaded`` is the teacher's :class:`~chatft.model.inference.InferenceModel`; tokenization, word alignment,
    padding and the forward pass are the predictors' (:func:`~chatft.core.features.tokenize_examples`,
    :func:`~chatft.core.features.pad_batch`, :meth:`InferenceModel.logits`: eval mode, no gradient), in
    batches of similar length. Slot rows are fitted to the student's word counts ``n_words`` (:func:`fit_rows`).
    """
    features = tokenize_examples(loaded.tokenizer, words, loaded.max_length)
    pad_id = loaded.tokenizer.pad_token_id or 0
    out: list = [None] * len(features)
    order = sorted(range(len(features)), key=lambda k: len(features[k].input_ids))
    for lo in range(0, len(order), batch_size):
        chunk = [features[k] for k in order[lo : lo + batch_size]]
        arrays = pad_batch(chunk, pad_id)
        intents, slots, _ = loaded.logits({k: arrays[k] for k in MODEL_INPUTS}, device)
        for b, f in enumerate(chunk):
            intent = torch.from_numpy(intents[b].copy())
            if slots is None:
                out[f.index] = (intent, None, 0)
                continue
            rows, seen = fit_rows(torch.from_numpy(slots[b, : len(f.word_starts)].copy()), n_words[f.index])
            out[f.index] = (intent, rows, seen)
    return out


def hidden_distance(student: Tensor, teacher: Tensor, attention_mask: Tensor) -> Tensor:
    """Mean cosine distance ``1 - cos`` between student and teacher hidden states ``[B, L, H]`` over real tokens.

    Cosine, as DistilBERT's hidden-state term: it asks for the teacher's directions, not its scale, so one weight
    suits encoders whose activations have different magnitudes. 0 (to float rounding) when they are equal.
    """
    cos = F.cosine_similarity(student.float(), teacher.float(), dim=-1)
    mask = attention_mask.to(cos.dtype)
    return ((1 - cos) * mask).sum() / mask.sum().clamp(min=1)


def init_from_teacher(student, teacher, layers: int | list[int] | None) -> list[int]:
    """Start ``student`` from ``teacher``'s fine-tuned weights; returns the teacher layers it copied.

    The student gets the teacher's embeddings, its heads (and CRF), and the teacher's transformer layers that
    ``layers`` names (the student's ``encoder_layers``: ``K`` the first K, or a list): student layer ``j`` is
    teacher layer ``layers[j]``. DistilBERT (Sanh et al., 2019) initialises its student from the teacher for
    the same reason: the soft targets alone say little where the teacher is near one-hot on its own training
    data, while its fine-tuned weights hold what it learned about the task. Both are :class:`JointModel`s of
    the same encoder family; a teacher whose shapes differ is a one-line error.
    """
    from chatft.model.encoders import layer_indices, layer_list

    blocks = layer_list(teacher.encoder)
    keep = layer_indices(layers if layers is not None else len(blocks), len(blocks))
    prefix = next(name for name, module in teacher.named_modules() if module is blocks) + "."
    state = {}
    for key, value in teacher.state_dict().items():
        if key.startswith(prefix):
            index, rest = key[len(prefix) :].split(".", 1)
            if int(index) not in keep:
                continue
            key = f"{prefix}{keep.index(int(index))}.{rest}"
        state[key] = value
    try:
        student.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        raise ConfigError(
            f"--model.distill_init: the teacher's weights do not fit the student ({first}); the student must "
            "use the teacher's encoder and options (CRF, labels), or pass --model.distill_init false"
        ) from None
    return keep


def teacher_paths(distill_from: str | Path | Sequence[str | Path] | None) -> list[str]:
    """``--model.distill_from`` as a list of checkpoint paths (one path, a list of them, or none)."""
    if not distill_from:
        return []
    if isinstance(distill_from, (str, Path)):
        return [str(distill_from)]
    return [str(p) for p in distill_from]


def _check_teacher_file(path: str | Path, intent_labels: Sequence[str], slot_labels: Sequence[str]) -> None:
    """A one-line error unless ``path`` is a checkpoint with the student's label lists."""
    from chatft.model.checkpoint import checkpoint_labels

    if not Path(path).expanduser().is_file():
        raise ConfigError(f"--model.distill_from {path}: no such checkpoint file")
    intents, slots = checkpoint_labels(path)
    if list(intents) != list(intent_labels) or list(slots) != list(slot_labels):
        raise ConfigError(
            f"--model.distill_from {path}: the teacher's labels differ from this data's "
            f"({len(intents)} intents and {len(slots)} slot tags vs {len(intent_labels)} and {len(slot_labels)}, "
            "or another order); distill from a teacher trained on the same label lists"
        )


def average_targets(
    per_teacher: Sequence[Sequence[tuple[Tensor, Tensor | None, int]]],
) -> list[tuple[Tensor, Tensor | None, int]]:
    """Several teachers' :func:`word_targets` as one teacher's: for each utterance the mean of their intent
    logits and of their slot rows (a logit average, the geometric mean of their distributions), and the fewest
    words any of them saw (a word one teacher's truncation cut has no averaged row)."""
    out = []
    for rows in zip(*per_teacher, strict=True):
        intent = torch.stack([r[0] for r in rows]).mean(0)
        seen = min(r[2] for r in rows)
        slots = None if rows[0][1] is None else torch.stack([r[1] for r in rows]).mean(0)
        if slots is not None:
            slots[seen:] = 0
        out.append((intent, slots, seen))
    return out


def mean_decoder(decoders: Sequence[SlotDecoder | None]) -> SlotDecoder | None:
    """One slot decoder for several models: the members' mean start, transition and end scores (their mode, the
    first's). For CRFs that is the CRF whose path scores are the members' mean (as averaged emission rows are),
    i.e. the normalised geometric mean of their tag-sequence distributions; one decoder, or one with nothing
    learned to average (per-word argmax, or no slots: None), is returned as it is."""
    first = decoders[0]
    if len(decoders) == 1 or first is None or first.start is None:
        return first
    mean = {k: np.mean([getattr(d, k) for d in decoders], 0) for k in ("start", "trans", "end")}
    return SlotDecoder(mode=first.mode, **mean)


class Teacher:
    """A trained checkpoint used for its soft targets (eval mode, no gradient, outputs cached by utterance index).

    Args:
        model: the teacher's :class:`~chatft.model.joint.JointModel`.
        weight: ``w`` in ``(1 - w) * usual loss + w * soft loss``.
        temperature: softmax temperature of both distributions.
        slot_loss_coef: weight of the slot KL (the student's ``slot_loss_coef``, as in its usual loss).
        hidden_weight: ``b`` of the added term ``b * hidden_distance`` (0: the teacher's hidden states are
            neither computed into the cache nor compared; with it, the cache holds ``[tokens, H]`` floats per
            utterance: about 120 MB for ATIS's 4,478 training utterances at H = 384).
        inference: the teacher's :class:`~chatft.model.inference.InferenceModel` when its tokenizer is not the
            student's (None: it is, and the teacher runs on the student's batches). Then :meth:`fill` computes
            every training utterance's targets before training and :meth:`targets` only reads them.
        crf_targets: the slot term is :func:`crf_kl` (the teacher and the student both have a CRF) instead of
            the per-word KL of emission scores.
    """

    def __init__(
        self,
        model,
        weight: float,
        temperature: float,
        slot_loss_coef: float = 1.0,
        hidden_weight: float = 0.0,
        inference=None,
        crf_targets: bool = False,
        ensemble: Sequence = (),
    ) -> None:
        self.model = model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.weight = weight
        self.temperature = temperature
        self.slot_loss_coef = slot_loss_coef
        self.hidden_weight = hidden_weight
        self.inference = inference
        #: Several teachers: every teacher's :class:`~chatft.model.inference.InferenceModel` (``inference`` is
        #: the first's, ``model`` its model); their targets are averaged (:meth:`fill`).
        self.ensemble = list(ensemble)
        self.crf_targets = crf_targets
        #: With ``crf_targets``: each utterance's :class:`CrfTarget` (None: no slot target for it).
        self._crf: dict[int, CrfTarget | None] = {}
        self._decoder = None
        self._cache: dict[int, tuple[Tensor, Tensor | None, Tensor | None]] = {}
        #: With another tokenizer: how many of each utterance's words the teacher saw (its slot targets).
        self._seen: dict[int, int] = {}
        self.stats = {"teacher_batches": 0, "teacher_seconds": 0.0, "cached_batches": 0}
        #: With another tokenizer: utterances and seconds :meth:`fill` took.
        self.filled = (0, 0.0)

    @classmethod
    def load(
        cls,
        path: str | Path | Sequence[str | Path],
        intent_labels: Sequence[str],
        slot_labels: Sequence[str],
        vocab_size: int,
        device: torch.device | str,
        tokenizer=None,
        **options,
    ) -> Teacher:
        """Load the teacher checkpoint (or several: a list); its label lists must be the student's (one-line
        error).

        ``tokenizer``: the student's. When the teacher's differs (:func:`same_tokenizer`) the teacher keeps its
        own (``inference``); otherwise (or without one) its vocabulary size must be ``vocab_size``. Several
        teachers always give targets computed from the words (their average, :meth:`fill`); ``model`` is the
        first's, whose weights the student may start from when it shares the student's tokenizer."""
        from chatft.model.inference import load_for_inference

        paths = teacher_paths(path)
        for p in paths:
            _check_teacher_file(p, intent_labels, slot_labels)
        loaded = [load_for_inference(p, device=str(device)) for p in paths]
        own = tokenizer is not None and not same_tokenizer(loaded[0].tokenizer, tokenizer)
        if not own:
            teacher_vocab = loaded[0].model.encoder.config.vocab_size
            if teacher_vocab != vocab_size:
                raise ConfigError(
                    f"--model.distill_from {paths[0]}: the teacher's encoder has a {teacher_vocab}-token "
                    f"vocabulary, the student's {vocab_size}; teacher and student must share the tokenizer"
                )
        ensemble = loaded if len(loaded) > 1 else ()
        return cls(loaded[0].model, inference=loaded[0] if own else None, ensemble=ensemble, **options)

    def _crf_target(self, rows: Tensor, n_words: int) -> CrfTarget | None:
        """The :class:`CrfTarget` of one utterance from the teacher's word emissions ``[n, T]`` (None: no words,
        or not the student's ``n_words``)."""
        if rows is None or rows.size(0) == 0 or rows.size(0) != n_words:
            return None
        if self._decoder is None:  # the teachers are frozen: their masked scores never change
            from chatft.model.decoding import slot_decoder_of

            self._decoder = mean_decoder([slot_decoder_of(m) for m in self.members()])
        d = self._decoder
        return crf_target(rows.detach().double().cpu().numpy(), d.start, d.trans, d.end)

    def members(self) -> list:
        """The teachers' models: each member of an ensemble, or the one teacher."""
        return [loaded.model for loaded in self.ensemble] or [self.model]

    def to(self, device: torch.device | str) -> Teacher:
        for model in self.members():
            model.to(device)
        return self

    @property
    def own_tokenizer(self) -> bool:
        """Whether the teacher reads words with a tokenizer other than the student's (targets from :meth:`fill`)."""
        return self.inference is not None

    @property
    def precomputed(self) -> bool:
        """Whether every target is computed from the training words before training (:meth:`fill`): a teacher
        with its own tokenizer, or several teachers."""
        return self.own_tokenizer or bool(self.ensemble)

    def fill(
        self,
        words: Sequence[Sequence[str]],
        n_words: Sequence[int],
        device: torch.device | str | None = None,
        batch_size: int = 64,
    ) -> str:
        """Compute the targets of every training utterance (index ``i``: ``words[i]``, the student keeps
        ``n_words[i]`` of its words) with the teacher's own tokenizer, into the cache; returns the line saying
        what it cost. Then the teacher model is moved to the CPU: it never runs again. Several teachers: each
        computes its targets with its own tokenizer, and the cache holds their average (:func:`average_targets`)."""
        start = time.perf_counter()
        if self.ensemble:
            rows = average_targets(
                [word_targets(t, words, n_words, batch_size, device) for t in self.ensemble]
            )
        else:
            rows = word_targets(self.inference, words, n_words, batch_size, device)
        for i, (intent, slots, seen) in enumerate(rows):
            self._cache[i] = (intent, slots, None)
            self._seen[i] = seen
            if self.crf_targets:  # a word the teacher did not see leaves the whole sequence without a target
                self._crf[i] = self._crf_target(None if slots is None else slots[:seen], n_words[i])
        seconds = time.perf_counter() - start
        self.filled = (len(rows), seconds)
        self.to("cpu")
        if self.ensemble:
            encoders = ", ".join(str(t.hparams.get("encoder")) for t in self.ensemble)
            return (
                f"distillation: {len(self.ensemble)} teachers ({encoders}; each from the words, with its "
                f"tokenizer) computed the averaged targets of {len(rows)} training utterances in {seconds:.1f} s"
            )
        return (
            f"distillation: the teacher ({self.inference.hparams.get('encoder')}, its own tokenizer, max_length "
            f"{self.inference.max_length}) computed the targets of {len(rows)} training utterances in "
            f"{seconds:.1f} s"
        )

    @torch.no_grad()
    def targets(self, batch: dict) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """The teacher's intent logits ``[B, I]``, word-level slot logits ``[B, W, T]`` and (with
        ``hidden_weight``) last hidden states ``[B, L, H]`` for a training batch, padded as the batch is."""
        index = batch["index"].tolist()
        if self.precomputed or all(i in self._cache for i in index):
            self.stats["cached_batches"] += 1
            intents = torch.stack([self._cache[i][0] for i in index])
            slots = self._padded([self._cache[i][1] for i in index], batch["word_mask"].size(1))
            hidden = self._padded([self._cache[i][2] for i in index], batch["input_ids"].size(1))
            if self.precomputed:  # filled on the CPU before training
                device = batch["word_mask"].device
                return intents.to(device), None if slots is None else slots.to(device), None
            return intents, slots, hidden
        start = time.perf_counter()
        intents, slots, _, hidden = self.model(
            batch["input_ids"], batch["attention_mask"], batch["word_index"], return_hidden=True
        )
        self.stats["teacher_seconds"] += time.perf_counter() - start
        self.stats["teacher_batches"] += 1
        n_words = batch["word_mask"].sum(1).tolist()
        n_tokens = batch["attention_mask"].sum(1).tolist()
        for b, i in enumerate(index):
            row = None if slots is None else slots[b, : n_words[b]].clone()
            states = hidden[b, : n_tokens[b]].clone() if self.hidden_weight > 0 else None
            self._cache[i] = (intents[b].clone(), row, states)
            if self.crf_targets:
                self._crf[i] = self._crf_target(row, n_words[b])
        return intents, slots, hidden if self.hidden_weight > 0 else None

    @staticmethod
    def _padded(rows: list[Tensor | None], length: int) -> Tensor | None:
        """Cached per-utterance rows ``[n_i, D]`` stacked into ``[B, length, D]`` with zeros after each."""
        if rows[0] is None:
            return None
        out = rows[0].new_zeros(len(rows), length, rows[0].size(-1))
        for b, row in enumerate(rows):
            out[b, : row.size(0)] = row
        return out

    def mix(
        self,
        hard_loss: Tensor,
        batch: dict,
        intent_logits: Tensor,
        slot_logits: Tensor | None,
        hidden: Tensor | None = None,
        crf=None,
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """(``(1 - w) * hard_loss + w * soft loss + b * hidden distance``, soft loss, hidden distance or None)
        for the student's outputs on ``batch`` (``crf``: the student's CRF, needed with ``crf_targets``)."""
        teacher_intent, teacher_slots, teacher_hidden = self.targets(batch)
        word_mask = batch["word_mask"]
        if self.precomputed:  # words a teacher's truncation cut have no slot target
            seen = torch.tensor([self._seen[i] for i in batch["index"].tolist()], device=word_mask.device)
            word_mask = word_mask & (torch.arange(word_mask.size(1), device=word_mask.device) < seen[:, None])
        soft = distillation_loss(
            intent_logits,
            teacher_intent,
            None if self.crf_targets else slot_logits,
            None if self.crf_targets else teacher_slots,
            word_mask,
            self.temperature,
            self.slot_loss_coef,
        )
        if self.crf_targets and slot_logits is not None:
            kl = crf_kl(
                crf, slot_logits, [self._crf.get(i) for i in batch["index"].tolist()], batch["word_mask"]
            )
            if kl is not None:
                soft = soft + self.slot_loss_coef * kl
        loss = (1 - self.weight) * hard_loss + self.weight * soft
        if self.hidden_weight <= 0:
            return loss, soft, None
        distance = hidden_distance(hidden, teacher_hidden, batch["attention_mask"])
        return loss + self.hidden_weight * distance, soft, distance

    @property
    def teaches(self) -> bool:
        """Whether any loss term reads the teacher's outputs (``distill_weight 0`` and no hidden term: no)."""
        return self.weight > 0 or self.hidden_weight > 0

    def summary(self) -> str:
        """One line: what the teacher cost and what the cache saved."""
        if not self.teaches:
            return (
                "distillation: --model.distill_weight 0: the teacher gave the student its starting weights only "
                "and never ran"
            )
        s = self.stats
        n, seconds = self.filled
        if self.ensemble:
            return (
                f"distillation: the {len(self.ensemble)} teachers' averaged targets for {n} training utterances "
                f"took {seconds:.1f} s before training; {s['cached_batches']} batches read them"
            )
        if self.own_tokenizer:
            return (
                f"distillation: the teacher's targets for {n} training utterances took {seconds:.1f} s before "
                f"training (its own tokenizer); {s['cached_batches']} batches read them"
            )
        per = 1000 * s["teacher_seconds"] / max(1, s["teacher_batches"])
        return (
            f"distillation: the teacher ran on {s['teacher_batches']} batches ({s['teacher_seconds']:.1f} s, "
            f"{per:.0f} ms per batch); {s['cached_batches']} batches read its cached logits instead "
            f"(~{s['cached_batches'] * per / 1000:.0f} s of teacher forward passes saved)"
        )
