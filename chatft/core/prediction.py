"""What a prediction looks like (no torch), and the one place that builds it (:func:`build_prediction`).

A :class:`Prediction` is what ``python -m chatft predict`` writes (one JSON object per line), what
:class:`~chatft.serving.predictor.Predictor` and :class:`~chatft.serving.onnx_predictor.OnnxPredictor`
return, and what the chat loop reads. Its fields:

* ``text``: the input line; ``words``: how it was split (:func:`chatft.core.text.split_words`); ``tags``: one
  BIO tag per word; ``truncated``: True when the utterance had more sub-word tokens than ``max_length`` (the
  cut words are tagged ``O``, as ``test`` scores them).
* ``intent``, ``intent_confidence``: the most probable intent and its softmax probability (temperature-scaled
  when the model was calibrated at the end of ``fit``); ``intents_top_k``: ``[[label, probability], ...]``,
  most probable first (``<unk>`` is never predicted).
* ``out_of_scope``: True when the model's out-of-scope decision (:mod:`chatft.core.oos`) rejected the
  utterance; ``intent`` is then the fallback name (``nlu_fallback`` by default) and ``intent_confidence`` the
  probability of the best-ranked intent; the ranking and the slots are still given.
* ``slots``: ``{"label", "value", "start", "end", "confidence", "text", "typed", "extractor", "processors"}``
  with character offsets, so ``text[start:end] == slot["text"]``. Spans are chunked from the tags with
  conlleval's rules (what seqeval scores). A slot's confidence is the minimum of its words' tag probabilities
  (see :mod:`chatft.core.decoding`). ``value`` is the canonical value (a synonym's value, or the typed value
  as a string: ``50``, ``250 USD``, ``2026-12-03``; else the text), ``typed`` the typed value (``{"dim",
  "value", "unit"|"grain"}``, or None), ``extractor`` ``chatft`` (the model) or ``RegexEntityExtractor`` (a
  regex or lookup table), ``processors`` what changed the value (:mod:`chatft.core.entities`).
* ``explanation``: only when asked for (``predict --explain``, ``Predictor.explain``, ``"explain": true``): the
  word attributions of :mod:`chatft.core.attribution` (absent from :meth:`Prediction.to_dict` otherwise).
* ``empty``: True for a text without words (blank or whitespace only): no model is run for it, ``intent``
  is None, ``intent_confidence`` 0.0 and ``words``, ``tags``, ``intents_top_k`` and ``slots`` are empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from chatft.core.oos import FALLBACK_INTENT
from chatft.core.tags import UNK_INDEX, bio_chunks

if TYPE_CHECKING:
    from chatft.core.decoding import Decoded

__all__ = ["MODEL_EXTRACTOR", "Prediction", "Slot", "build_prediction", "top_k_intents"]

#: ``extractor`` of the slots the model tagged (Rasa's ``extractor`` field).
MODEL_EXTRACTOR = "chatft"


@dataclass(frozen=True)
class Slot:
    """One filled slot: its type (``fromloc.city_name``), its canonical value, the text it covers and where,
    a confidence, and what found and changed it (see the module docstring). ``text`` defaults to ``value``."""

    label: str
    value: str
    start: int
    end: int
    confidence: float
    text: str = None  # type: ignore[assignment]
    typed: dict | None = None
    extractor: str = MODEL_EXTRACTOR
    processors: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.text is None:
            object.__setattr__(self, "text", self.value)


@dataclass(frozen=True)
class Prediction:
    """Intent and slots of one utterance (see the module docstring for each field)."""

    text: str
    words: list[str]
    tags: list[str]
    intent: str | None
    intent_confidence: float
    intents_top_k: list[tuple[str, float]]
    slots: list[Slot] = field(default_factory=list)
    truncated: bool = False
    out_of_scope: bool = False
    empty: bool = False
    explanation: dict | None = None

    def to_dict(self) -> dict:
        """Plain JSON-ready dict with the documented keys (``intents_top_k`` as ``[label, prob]`` lists;
        ``explanation`` only when there is one)."""
        out = asdict(self)
        if out["explanation"] is None:
            del out["explanation"]
        out["intents_top_k"] = [[label, prob] for label, prob in self.intents_top_k]
        for slot in out["slots"]:
            slot["processors"] = list(slot["processors"])
        return out

    def slot_values(self) -> dict[str, str]:
        """``{label: value}``; when a label occurs twice, the later value wins."""
        return {s.label: s.value for s in self.slots}


def top_k_intents(probs: Sequence[float], labels: Sequence[str], k: int) -> list[tuple[str, float]]:
    """The ``k`` most probable intents, ``<unk>`` (index 0) excluded, most probable first."""
    candidates = [i for i in range(len(labels)) if i != UNK_INDEX] or [UNK_INDEX]
    order = sorted(candidates, key=lambda i: (-probs[i], i))
    return [(labels[i], float(probs[i])) for i in order[: max(k, 1)]]


def build_prediction(
    text: str,
    spans: Sequence[tuple[str, int, int]],
    decoded: Decoded | None,
    intent_labels: Sequence[str],
    top_k: int = 3,
    fallback_intent: str | None = None,
) -> Prediction:
    """The :class:`Prediction` of ``text`` from its word spans (:func:`chatft.core.text.split_words`) and its
    decoded outputs (:class:`chatft.core.decoding.Decoded`).

    A text without words (blank or whitespace only) gets the empty prediction: intent None, confidence 0, no
    ranking, words, tags or slots, ``empty`` True (``decoded`` is then ignored and may be None). An utterance
    decoded out of scope gets ``fallback_intent`` (default ``nlu_fallback``) as its intent; its ranking,
    confidence and slots stay.
    """
    if not spans or decoded is None:
        return Prediction(
            text=text, words=[], tags=[], intent=None, intent_confidence=0.0, intents_top_k=[], empty=True
        )
    conf = decoded.tag_confidences
    slots = [
        Slot(
            label=typ,
            value=text[spans[i][1] : spans[j - 1][2]],
            start=spans[i][1],
            end=spans[j - 1][2],
            confidence=float(min(conf[i:j], default=0.0)),
        )
        for typ, i, j in bio_chunks(decoded.tags)
    ]
    return Prediction(
        text=text,
        words=[w for w, _, _ in spans],
        tags=list(decoded.tags),
        intent=(fallback_intent or FALLBACK_INTENT)
        if decoded.out_of_scope
        else intent_labels[decoded.intent],
        intent_confidence=float(decoded.intent_probs[decoded.intent]),
        intents_top_k=top_k_intents(decoded.intent_probs, intent_labels, top_k),
        slots=slots,
        truncated=bool(decoded.truncated),
        out_of_scope=bool(decoded.out_of_scope),
    )
