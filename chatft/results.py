"""What a prediction looks like, and the numpy decoding shared by every predictor (no torch, no Lightning).

A :class:`Prediction` is what ``python -m chatft predict`` writes (one JSON object per line), what
:class:`~chatft.predict.Predictor` and :class:`~chatft.onnx_predictor.OnnxPredictor` return, and what the
chat loop reads. Its fields:

* ``text``: the input line; ``words``: how it was split (:func:`chatft.text.split_words`); ``tags``: one BIO
  tag per word; ``truncated``: True when the utterance had more sub-word tokens than ``max_length`` (the cut
  words are tagged ``O``, as ``test`` scores them).
* ``intent``, ``intent_confidence``: the most probable intent and its softmax probability;
  ``intents_top_k``: ``[[label, probability], ...]``, most probable first (``<unk>`` is never predicted).
* ``slots``: ``{"label", "value", "start", "end", "confidence"}`` with character offsets, so
  ``text[start:end] == value``. Spans are chunked from the tags with conlleval's rules (what seqeval scores).

**Confidences.** A word's confidence is the probability of its chosen tag: the softmax over the tags the model
can predict (``<unk>`` excluded) for softmax models; the exact posterior marginal ``p(tag_t | utterance)``
from forward-backward over the CRF's (constrained) scores for CRF models. A slot's confidence is the
*minimum* over its words: a cautious value for deciding whether to confirm a slot with the user.

:class:`SlotDecoder` reproduces :meth:`chatft.model.JointModel.decode` in numpy (argmax, BIO-constrained
Viterbi over log-softmax, or CRF Viterbi): ONNX models are decoded with it, outside the graph.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

__all__ = ["FORBIDDEN_SCORE", "Prediction", "Slot", "SlotDecoder", "bio_chunks", "build_prediction"]

#: Same finite penalty as :data:`chatft.crf.FORBIDDEN_SCORE` (kept here so this module needs no torch).
FORBIDDEN_SCORE = -1e4


@dataclass(frozen=True)
class Slot:
    """One filled slot: its type (``fromloc.city_name``), the text it covers and where, and a confidence."""

    label: str
    value: str
    start: int
    end: int
    confidence: float


@dataclass(frozen=True)
class Prediction:
    """Intent and slots of one utterance (see the module docstring for each field)."""

    text: str
    words: list[str]
    tags: list[str]
    intent: str
    intent_confidence: float
    intents_top_k: list[tuple[str, float]]
    slots: list[Slot] = field(default_factory=list)
    truncated: bool = False

    def to_dict(self) -> dict:
        """Plain JSON-ready dict with the documented keys (``intents_top_k`` as ``[label, prob]`` lists)."""
        out = asdict(self)
        out["intents_top_k"] = [[label, prob] for label, prob in self.intents_top_k]
        return out

    def slot_values(self) -> dict[str, str]:
        """``{label: value}``; when a label occurs twice, the later value wins."""
        return {s.label: s.value for s in self.slots}


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
    x = np.array(logits, dtype=np.float64)
    if x.shape[-1] > 1:
        x[..., 0] = -np.inf
    return softmax(x)


def _logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    m = np.max(x, axis=axis, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True))).squeeze(axis)


def bio_chunks(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """Spans ``(type, start_word, end_word_exclusive)`` of BIO tags, chunked as conlleval/seqeval do.

    ``B-x`` starts a span; ``I-x`` continues a span of type ``x`` and starts one after ``O`` or another type;
    any other tag (``O``, ``<unk>``) ends the current span.
    """
    chunks: list[tuple[str, int, int]] = []
    cur_type, begin = None, 0
    for i, tag in enumerate(tags):
        prefix, typ = (tag[0], tag[2:]) if tag[:2] in ("B-", "I-") else ("O", None)
        if cur_type is not None and (prefix != "I" or typ != cur_type):
            chunks.append((cur_type, begin, i))
            cur_type = None
        if prefix in ("B", "I") and cur_type is None:
            cur_type, begin = typ, i
    if cur_type is not None:
        chunks.append((cur_type, begin, len(tags)))
    return chunks


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
            scores = em.copy()
            scores[:, 0] = -np.inf
            return scores.argmax(-1).tolist()
        if self.mode == "softmax_bio":
            em = log_softmax(em)
        return _viterbi(em, self.start, self.trans, self.end)

    def word_probabilities(self, emissions: np.ndarray) -> np.ndarray:
        """``[W, T]``: softmax over tags (``<unk>`` excluded), or CRF posterior marginals."""
        em = np.asarray(emissions, dtype=np.float64)
        if self.mode == "crf":
            return _crf_marginals(em, self.start, self.trans, self.end)
        scores = em.copy()
        if scores.shape[-1] > 1:
            scores[:, 0] = -np.inf
        return softmax(scores)

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


def top_k_intents(probs: Sequence[float], labels: Sequence[str], k: int) -> list[tuple[str, float]]:
    """The ``k`` most probable intents, ``<unk>`` (index 0) excluded, most probable first."""
    order = sorted(range(1, len(labels)) if len(labels) > 1 else [0], key=lambda i: (-probs[i], i))
    return [(labels[i], float(probs[i])) for i in order[: max(k, 1)]]


def build_prediction(
    text: str,
    spans: Sequence[tuple[str, int, int]],
    intent: str,
    intent_probs: Sequence[float],
    intent_labels: Sequence[str],
    tags: Sequence[str],
    tag_confidences: Sequence[float],
    truncated: bool,
    top_k: int = 3,
) -> Prediction:
    """Assemble a :class:`Prediction` from decoded outputs and the word spans of ``text``.

    ``tags`` covers every word (cut words tagged ``O``); ``tag_confidences`` covers the kept words.
    """
    intent_id = list(intent_labels).index(intent)
    slots = [
        Slot(
            label=typ,
            value=text[spans[i][1] : spans[j - 1][2]],
            start=spans[i][1],
            end=spans[j - 1][2],
            confidence=float(min(tag_confidences[i:j], default=0.0)),
        )
        for typ, i, j in bio_chunks(tags)
    ]
    return Prediction(
        text=text,
        words=[w for w, _, _ in spans],
        tags=list(tags),
        intent=intent,
        intent_confidence=float(intent_probs[intent_id]),
        intents_top_k=top_k_intents(intent_probs, intent_labels, top_k),
        slots=slots,
        truncated=bool(truncated),
    )
