"""Numpy decoding shared by every predictor and by ``test`` (no torch): softmax, BIO-constrained Viterbi,
CRF marginals, and the one rule that turns a model's logits into intents and word tags (:class:`Decoder`).

**Confidences.** A word's confidence is the probability of its chosen tag: the softmax over the tags the model
can predict (``<unk>`` excluded) for softmax models; the exact posterior marginal ``p(tag_t | utterance)``
from forward-backward over the CRF's (constrained) scores for CRF models. A slot's confidence is the
*minimum* over its words: a cautious value for deciding whether to confirm a slot with the user.

:class:`SlotDecoder` decodes word emissions (argmax, BIO-constrained Viterbi over log-softmax, or CRF
Viterbi); :func:`chatft.model.decoding.slot_decoder_of` builds it from a PyTorch model, ``export`` saves it
for ONNX models. :class:`Decoder` adds the intents (calibrated, with the out-of-scope decision of
:mod:`chatft.core.oos`) and the truncation rule. ``test`` scores, ``predict`` writes and both predictors return
what :meth:`Decoder.decode` gives, so their tags, intents and out-of-scope decisions cannot differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from chatft.core.oos import OOSState
from chatft.core.tags import FORBIDDEN_SCORE, OUTSIDE, exclude_unk

__all__ = ["Decoded", "Decoder", "SlotDecoder", "intent_probabilities", "log_softmax", "softmax"]


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax in float64."""
    x = np.asarray(x, dtype=np.float64)
    z = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    z = x - np.max(x, axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def intent_probabilities(logits: np.ndarray) -> np.ndarray:
    """Softmax over intents with ``<unk>`` (index 0) excluded, as the model decodes: ``[..., I]`` float64."""
    return softmax(exclude_unk(np.array(logits, dtype=np.float64)))


def _logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    m = np.max(x, axis=axis, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True))).squeeze(axis)


@dataclass(frozen=True)
class SlotDecoder:
    """Word tags and their confidences from word emissions ``[W, T]``, in numpy.

    ``mode`` is ``"softmax"`` (per-word argmax), ``"softmax_bio"`` (best valid BIO path over log-softmax
    scores) or ``"crf"`` (Viterbi over emissions + learned transitions). ``start``/``trans``/``end`` are the
    path scores with forbidden entries already replaced by :data:`FORBIDDEN_SCORE` (``softmax_bio``: zeros
    and penalties only); ``None`` for ``softmax``.
    """

    mode: str
    start: np.ndarray | None = None
    trans: np.ndarray | None = None
    end: np.ndarray | None = None

    def decode_batch(self, emissions: np.ndarray, lengths: Sequence[int]) -> list[list[int]]:
        """The paths of a padded batch ``[B, W, T]`` whose utterance ``b`` has ``lengths[b]`` words: equal to
        a per-utterance Viterbi on each ``emissions[b, :lengths[b]]`` (same float64 operations per utterance, same
        ties), in a few numpy calls per word position instead of per word of every utterance."""
        em = np.asarray(emissions, dtype=np.float64)
        lengths = np.asarray(lengths, dtype=np.intp)
        if self.mode == "softmax":
            best = exclude_unk(em.copy()).argmax(-1).tolist()
            return [row[:n] for row, n in zip(best, lengths.tolist(), strict=True)]
        if self.mode == "softmax_bio":
            em = log_softmax(em)
        return _viterbi_batch(em, lengths, self.start, self.trans, self.end, self._plan)

    @cached_property
    def _plan(self) -> _Plan:
        """The transition matrix's structure, read once per decoder (:func:`_transition_plan`)."""
        return _transition_plan(self.trans)

    def probabilities_batch(self, emissions: np.ndarray, lengths: Sequence[int]) -> np.ndarray:
        """``[B, W, T]``: the softmax over tags (``<unk>`` excluded), or the CRF posterior marginals, of each ``emissions[b, :lengths[b]]`` (rows past an
        utterance's length are zeros for CRF decoders, softmax of the padding otherwise: never read)."""
        em = np.asarray(emissions, dtype=np.float64)
        if self.mode != "crf":
            return softmax(exclude_unk(em.copy()))
        return _crf_marginals_batch(em, np.asarray(lengths), self.start, self.trans, self.end)

    def to_dict(self) -> dict:
        out: dict = {"mode": self.mode}
        for key in ("start", "trans", "end"):
            value = getattr(self, key)
            out[key] = None if value is None else np.asarray(value, dtype=np.float64).tolist()
        return out

    @classmethod
    def from_dict(cls, d: dict) -> SlotDecoder:
        arrays = {
            k: None if d.get(k) is None else np.asarray(d[k], dtype=np.float64)
            for k in ("start", "trans", "end")
        }
        return cls(d["mode"], **arrays)

    @classmethod
    def from_constraints(
        cls,
        use_crf: bool,
        bio_constrained: bool,
        allowed_start: np.ndarray | None,
        allowed_trans: np.ndarray | None,
        start: np.ndarray | None = None,
        trans: np.ndarray | None = None,
        end: np.ndarray | None = None,
    ) -> SlotDecoder:
        """Build from the model's constraint masks (and CRF scores), applying the forbidden penalty."""
        if not use_crf and not bio_constrained:
            return cls("softmax")
        n = len(allowed_start)
        start = np.zeros(n) if start is None else np.asarray(start, dtype=np.float64)
        trans = np.zeros((n, n)) if trans is None else np.asarray(trans, dtype=np.float64)
        end = np.zeros(n) if end is None else np.asarray(end, dtype=np.float64)
        start = np.where(np.asarray(allowed_start, dtype=bool), start, FORBIDDEN_SCORE)
        trans = np.where(np.asarray(allowed_trans, dtype=bool), trans, FORBIDDEN_SCORE)
        return cls("crf" if use_crf else "softmax_bio", start, trans, end)


@dataclass
class Decoded:
    """One utterance decoded: the intent id (the best-ranked one, also when out of scope), all intent
    probabilities (calibrated when the model was), a tag for every word (words cut by truncation tagged ``O``),
    the confidence of each kept word's tag, whether words were cut, and whether the out-of-scope decision
    (:mod:`chatft.core.oos`) rejected the utterance.

    Not frozen: ``predict`` returns these from ``predict_step`` and Lightning rebuilds dataclasses it finds in
    step outputs (``apply_to_collection`` refuses frozen ones).
    """

    intent: int
    intent_probs: list[float]
    tags: list[str]
    tag_confidences: list[float]
    truncated: bool
    out_of_scope: bool = False
    #: ``[kept words, tags]``: each kept word's probabilities over all tags, when asked for (else None).
    tag_probs: np.ndarray | None = None


@dataclass(frozen=True)
class Decoder:
    """Logits -> :class:`Decoded`: the intent argmax (``<unk>`` never), the out-of-scope decision, the slot
    path, then ``O`` for cut words.

    ``slots`` is None for intent-only models (their utterances get no tags). ``oos`` is the temperature and
    out-of-scope decision fitted at the end of ``fit`` (None: plain softmax, nothing out of scope).
    """

    intent_labels: tuple[str, ...]
    slot_labels: tuple[str, ...] = ()
    slots: SlotDecoder | None = None
    oos: OOSState | None = None

    @property
    def fallback_intent(self) -> str | None:
        """The intent name an out-of-scope utterance gets (None: the default, ``nlu_fallback``)."""
        return self.oos.fallback_intent if self.oos is not None else None

    def intents(
        self, intent_logits: np.ndarray, features: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(probabilities [B, I], out_of_scope [B])``: calibrated and decided with ``oos`` when there is one.

        ``features`` (the pooled encoder features ``[B, H]``) are read only by the Mahalanobis score.
        """
        if self.oos is None:
            probs = intent_probabilities(intent_logits)
            return probs, np.zeros(len(probs), dtype=bool)
        return self.oos.decide(intent_logits, features if self.oos.needs_features else None)

    def decode(
        self,
        intent_logits: np.ndarray,
        slot_logits: np.ndarray | None,
        kept: Sequence[int],
        n_words: Sequence[int],
        features: np.ndarray | None = None,
        confidences: bool = True,
        word_probabilities: bool = False,
    ) -> list[Decoded]:
        """Decode a padded batch: ``intent_logits [B, I]``, ``slot_logits [B, W, T]`` (or None), ``features``
        ``[B, H]`` (or None; see :meth:`intents`).

        ``kept[b]`` words of utterance ``b`` reached the model (a prefix), ``n_words[b]`` it has in all.
        ``confidences=False`` skips the tag confidences (``test`` does not need them);
        ``word_probabilities=True`` keeps every kept word's probabilities over all tags (``tag_probs``).
        """
        probs, out_of_scope = self.intents(intent_logits, features)
        batch = len(kept)
        paths: list[list[int]] = [[] for _ in range(batch)]
        conf: list[list[float]] = [[] for _ in range(batch)]
        word_probs: list[np.ndarray | None] = [None] * batch
        if self.slots is not None and slot_logits is not None:
            # One pass over the padded batch (the old per-utterance loop spent most of a small model's
            # batch time here); only the first kept[b] words of row b are read.
            width = max(kept, default=0)
            emissions = np.asarray(slot_logits[:batch, :width], dtype=np.float64)
            paths = self.slots.decode_batch(emissions, kept)
            if confidences or word_probabilities:
                all_probs = self.slots.probabilities_batch(emissions, kept)
            if confidences and width:
                flat = np.zeros((batch, width), dtype=np.intp)
                for b, path in enumerate(paths):
                    flat[b, : len(path)] = path
                chosen = np.take_along_axis(all_probs, flat[:, :, None], axis=2)[:, :, 0].tolist()
                conf = [row[: len(path)] for row, path in zip(chosen, paths, strict=True)]
            if word_probabilities:
                word_probs = [all_probs[b, :n] for b, n in enumerate(kept)]
        labels = self.slot_labels
        has_tags = self.slots is not None and slot_logits is not None
        best = probs.argmax(-1).tolist()
        out = []
        for b, (n_kept, n, row) in enumerate(zip(kept, n_words, probs.tolist(), strict=True)):
            tags = [labels[t] for t in paths[b]] + [OUTSIDE] * (n - n_kept) if has_tags else []
            out.append(
                Decoded(
                    best[b],
                    row,
                    tags,
                    conf[b],
                    n_kept < n,
                    out_of_scope=bool(out_of_scope[b]),
                    tag_probs=word_probs[b],
                )
            )
        return out


@dataclass(frozen=True)
class _Plan:
    """How :func:`_viterbi_batch` maximizes over previous tags, column by column of ``trans [prev, next]``.

    ``constant``: (value c, next tags whose whole column is c): every previous tag scores ``score + c``, so
    one argmax serves them all (BIO: ``O`` and every ``B-x``, c = 0). ``sparse``: next tags whose column is
    :data:`FORBIDDEN_SCORE` but for a few allowed previous tags (BIO: ``I-x`` after ``B-x`` or ``I-x``), with
    those tags (``allowed [n, K]``, ascending, padded by repeating the last) and their scores. ``dense``:
    the other next tags (a CRF's learned columns), maximized over every previous tag.
    """

    constant: tuple[tuple[float, np.ndarray], ...]
    sparse: np.ndarray
    allowed: np.ndarray
    allowed_scores: np.ndarray
    dense: np.ndarray


_MAX_SPARSE = 8


def _transition_plan(trans: np.ndarray) -> _Plan:
    n = trans.shape[1]
    constant: dict[float, list[int]] = {}
    sparse: list[int] = []
    allowed: list[list[int]] = []
    dense: list[int] = []
    for j in range(n):
        col = trans[:, j]
        ok = np.flatnonzero(col != FORBIDDEN_SCORE)
        if np.all(col == col[0]):
            constant.setdefault(float(col[0]), []).append(j)
        elif 0 < len(ok) <= _MAX_SPARSE:
            sparse.append(j)
            allowed.append(ok.tolist())
        else:
            dense.append(j)
    width = max((len(a) for a in allowed), default=1)
    table = np.array([a + [a[-1]] * (width - len(a)) for a in allowed], dtype=np.intp).reshape(-1, width)
    return _Plan(
        tuple((c, np.array(cols, dtype=np.intp)) for c, cols in constant.items()),
        np.array(sparse, dtype=np.intp),
        table,
        trans[table, np.array(sparse, dtype=np.intp)[:, None]] if sparse else np.zeros((0, width)),
        np.array(dense, dtype=np.intp),
    )


def _viterbi_step(score: np.ndarray, trans: np.ndarray, plan: _Plan | None) -> tuple[np.ndarray, np.ndarray]:
    """``(best previous tag [B, T], its path score [B, T])`` for every next tag: for each row of ``score``
    exactly what ``(score[:, None] + trans).argmax(0)`` and the max give (same sums, first index on ties).

    With a plan the sparse columns are maximized over their allowed tags only; that is exact when the best
    allowed candidate beats ``max(score) + FORBIDDEN_SCORE``, the largest a forbidden one can reach
    (rounding is monotonic); otherwise (never seen: an allowed path 10^4 below the best) the step is dense.
    """
    if plan is not None:
        batch, n = score.shape
        idx = np.empty((batch, n), dtype=np.intp)
        val = np.empty((batch, n))
        ok = True
        if len(plan.sparse):
            cand = score[:, plan.allowed] + plan.allowed_scores  # [B, sparse, K]
            k = cand.argmax(-1)
            best = np.take_along_axis(cand, k[:, :, None], axis=-1)[:, :, 0]
            bound = score.max(-1, keepdims=True) + FORBIDDEN_SCORE
            ok = bool(np.all(best > bound))
            idx[:, plan.sparse] = plan.allowed[np.arange(len(plan.sparse)), k]
            val[:, plan.sparse] = best
        if ok:
            for c, cols in plan.constant:
                shifted = score + c
                arg = shifted.argmax(-1)
                idx[:, cols] = arg[:, None]
                val[:, cols] = shifted[np.arange(batch), arg][:, None]
            if len(plan.dense):
                cand = score[:, :, None] + trans[:, plan.dense]
                arg = cand.argmax(1)
                idx[:, plan.dense] = arg
                val[:, plan.dense] = np.take_along_axis(cand, arg[:, None, :], axis=1)[:, 0]
            return idx, val
    cand = score[:, :, None] + trans  # [B, prev, next]
    idx = cand.argmax(1)
    return idx, np.take_along_axis(cand, idx[:, None, :], axis=1)[:, 0]


def _viterbi_batch(
    em: np.ndarray,
    lengths: np.ndarray,
    start: np.ndarray,
    trans: np.ndarray,
    end: np.ndarray,
    plan: _Plan | None = None,
) -> list[list[int]]:
    """The best path of each ``em[b, :lengths[b]]`` (first index wins ties, like ``torch.max`` on CPU) at once (an utterance's score stops at its length)."""
    batch, width = em.shape[:2]
    if width == 0:
        return [[] for _ in range(batch)]
    score = start + em[:, 0]
    history = []
    for t in range(1, width):
        active = lengths > t
        if not active.any():
            break
        rows = np.flatnonzero(active)
        idx, val = _viterbi_step(score[rows], trans, plan)
        score[rows] = val + em[rows, t]
        full = np.zeros((batch, score.shape[1]), dtype=np.intp)
        full[rows] = idx
        history.append(full)
    best = (score + end).argmax(-1)
    paths = np.zeros((batch, width), dtype=np.intp)
    last = lengths - 1
    rows = np.arange(batch)
    paths[rows, np.maximum(last, 0)] = best
    current = best.copy()
    for t in range(len(history), 0, -1):  # history[t - 1] maps the tag at t to the best tag at t - 1
        moving = last >= t
        current = np.where(moving, history[t - 1][rows, current], current)
        paths[moving, t - 1] = current[moving]
    return [p[:n] for p, n in zip(paths.tolist(), lengths.tolist(), strict=True)]


def crf_forward_backward(
    em: np.ndarray, start: np.ndarray, trans: np.ndarray, end: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float]:
    """Log-space forward and backward scores ``alpha, beta [W, T]`` and ``log Z`` of one utterance's emissions
    ``[W, T]`` (W >= 1) under a CRF's masked scores, in the inputs' float dtype (float64 here)."""
    n_words, n_tags = em.shape
    alpha = np.empty((n_words, n_tags))
    beta = np.empty((n_words, n_tags))
    alpha[0] = start + em[0]
    for t in range(1, n_words):
        alpha[t] = _logsumexp(alpha[t - 1][:, None] + trans, axis=0) + em[t]
    beta[-1] = end
    for t in range(n_words - 2, -1, -1):
        beta[t] = _logsumexp(trans + (em[t + 1] + beta[t + 1])[None, :], axis=1)
    return alpha, beta, float(_logsumexp(alpha[-1] + end, axis=0))


def _crf_marginals(em: np.ndarray, start: np.ndarray, trans: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Posterior marginals ``p(y_t = j | x)`` ``[W, T]`` by forward-backward in log space (float64)."""
    if em.shape[0] == 0:
        return np.zeros((0, em.shape[1]))
    alpha, beta, log_z = crf_forward_backward(em, start, trans, end)
    return np.exp(alpha + beta - log_z)


@np.errstate(divide="ignore", invalid="ignore")  # an underflowed row divides 0 by 0: found and redone below
def _crf_marginals_batch(
    em: np.ndarray, lengths: np.ndarray, start: np.ndarray, trans: np.ndarray, end: np.ndarray
) -> np.ndarray:
    """:func:`_crf_marginals` of each ``em[b, :lengths[b]]`` at once, ``[B, W, T]`` (zeros past a length).

    Forward-backward in probability space, rescaled at every word (Rabiner's scaling): each step multiplies
    by ``exp(trans)``, computed once, where the log-space recursion takes T x T exponentials per word and
    utterance (ATIS, 120 tags: most of a CRF model's serving time went there). Each word's scale cancels
    when its marginals are normalised, so the result is the log-space one up to rounding (1e-12). The
    products are summed elementwise, not by BLAS, so an utterance's marginals are bitwise the same whatever
    else is in its batch. An utterance whose scaled sums underflow (an allowed path more than ~700 nats below the best)
    is recomputed with the log-space :func:`_crf_marginals`.
    """
    batch, width, n_tags = em.shape
    out = np.zeros((batch, width, n_tags))
    lengths = np.asarray(lengths, dtype=np.intp)
    if width == 0 or batch == 0:
        return out
    trans_e = np.exp(trans - trans.max())
    # exp of each word's emissions, shifted by its max: the shift is one more per-word scale.
    em_e = np.exp(em - em.max(-1, keepdims=True))
    alpha = np.empty((batch, width, n_tags))
    a = np.exp(start - start.max()) * em_e[:, 0]
    alpha[:, 0] = a / a.sum(-1, keepdims=True)
    for t in range(1, width):
        a = (alpha[:, t - 1, :, None] * trans_e).sum(1) * em_e[:, t]
        alpha[:, t] = a / a.sum(-1, keepdims=True)
    beta = np.empty((batch, width, n_tags))
    end_e = np.exp(end - end.max())
    last = lengths - 1
    b_next = np.broadcast_to(end_e, (batch, n_tags)).copy()
    for t in range(width - 1, -1, -1):
        if t < width - 1:
            step = ((em_e[:, t + 1] * beta[:, t + 1])[:, None, :] * trans_e).sum(-1)
            step /= step.sum(-1, keepdims=True)
            b_next = np.where((t < last)[:, None], step, end_e)
        beta[:, t] = b_next  # rows at t == last start from end; rows past their length are never read
    joint = alpha * beta
    joint /= joint.sum(-1, keepdims=True)
    valid = np.arange(width)[None, :] < lengths[:, None]
    bad = ~np.isfinite(joint).all(-1) & valid
    for b in np.flatnonzero(bad.any(-1)).tolist():
        n = int(lengths[b])
        joint[b, :n] = _crf_marginals(em[b, :n], start, trans, end)
    out[valid] = joint[valid]
    return out
