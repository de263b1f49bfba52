"""Numpy decoding shared by every predictor and by ``test`` (no torch): softmax, BIO-constrained Viterbi,
CRF marginals, and the one rule that turns a model's logits into intents and word tags (:class:`Decoder`).

**Confidences.** A word's confidence is the probability of its chosen tag: the softmax over the tags the model
can predict (``<unk>`` excluded) for softmax models; the exact posterior marginal ``p(tag_t | utterance)``
from forward-backward over the CRF's (constrained) scores for CRF models. A slot's confidence is the
*minimum* over its words: a cautious value for deciding whether to confirm a slot with the user.

:class:`SlotDecoder` decodes word emissions (argmax, BIO-constrained Viterbi over log-softmax, or CRF
Viterbi); :func:`chatft.training.artifacts.slot_decoder_of` builds it from a PyTorch model, ``export`` saves it
for ONNX models. :class:`Decoder` adds the intents (calibrated, with the out-of-scope decision of
:mod:`chatft.core.oos`) and the truncation rule. ``test`` scores, ``predict`` writes and both predictors return
what :meth:`Decoder.decode` gives, so their tags, intents and out-of-scope decisions cannot differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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

    def decode(self, emissions: np.ndarray) -> list[int]:
        em = np.asarray(emissions, dtype=np.float64)
        if em.shape[0] == 0:
            return []
        if self.mode == "softmax":
            return exclude_unk(em.copy()).argmax(-1).tolist()
        if self.mode == "softmax_bio":
            em = log_softmax(em)
        return _viterbi(em, self.start, self.trans, self.end)

    def word_probabilities(self, emissions: np.ndarray) -> np.ndarray:
        """``[W, T]``: softmax over tags (``<unk>`` excluded), or CRF posterior marginals."""
        em = np.asarray(emissions, dtype=np.float64)
        if self.mode == "crf":
            return _crf_marginals(em, self.start, self.trans, self.end)
        return softmax(exclude_unk(em.copy()))

    def confidences(self, emissions: np.ndarray, path: Sequence[int]) -> list[float]:
        """Probability of each chosen tag (see the module docstring)."""
        if not len(path):
            return []
        probs = self.word_probabilities(np.asarray(emissions)[: len(path)])
        return [float(probs[i, t]) for i, t in enumerate(path)]

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
        out = []
        for b, (n_kept, n) in enumerate(zip(kept, n_words, strict=True)):
            tags: list[str] = []
            conf: list[float] = []
            word_probs = None
            if self.slots is not None and slot_logits is not None:
                emissions = np.asarray(slot_logits[b, :n_kept], dtype=np.float64)
                path = self.slots.decode(emissions)
                tags = [self.slot_labels[t] for t in path] + [OUTSIDE] * (n - n_kept)
                conf = self.slots.confidences(emissions, path) if confidences else []
                word_probs = self.slots.word_probabilities(emissions) if word_probabilities else None
            out.append(
                Decoded(
                    int(probs[b].argmax()),
                    probs[b].tolist(),
                    tags,
                    conf,
                    n_kept < n,
                    out_of_scope=bool(out_of_scope[b]),
                    tag_probs=word_probs,
                )
            )
        return out


def _viterbi(em: np.ndarray, start: np.ndarray, trans: np.ndarray, end: np.ndarray) -> list[int]:
    """Best path of one utterance (first index wins ties, like ``torch.max`` on CPU)."""
    score = start + em[0]
    history = []
    for t in range(1, em.shape[0]):
        cand = score[:, None] + trans  # [prev, next]
        idx = cand.argmax(0)
        score = cand[idx, np.arange(cand.shape[1])] + em[t]
        history.append(idx)
    best = int((score + end).argmax())
    path = [best]
    for idx in reversed(history):
        best = int(idx[best])
        path.append(best)
    return path[::-1]


def _crf_marginals(em: np.ndarray, start: np.ndarray, trans: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Posterior marginals ``p(y_t = j | x)`` ``[W, T]`` by forward-backward in log space (float64)."""
    n_words, n_tags = em.shape
    if n_words == 0:
        return np.zeros((0, n_tags))
    alpha = np.empty((n_words, n_tags))
    beta = np.empty((n_words, n_tags))
    alpha[0] = start + em[0]
    for t in range(1, n_words):
        alpha[t] = _logsumexp(alpha[t - 1][:, None] + trans, axis=0) + em[t]
    beta[-1] = end
    for t in range(n_words - 2, -1, -1):
        beta[t] = _logsumexp(trans + (em[t + 1] + beta[t + 1])[None, :], axis=1)
    log_z = _logsumexp(alpha[-1] + end, axis=0)
    return np.exp(alpha + beta - log_z)
