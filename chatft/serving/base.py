"""What every predictor does, without torch: text -> words -> features -> padded batches -> logits -> Prediction.

:class:`~chatft.serving.predictor.Predictor` (PyTorch) and :class:`~chatft.serving.onnx_predictor.OnnxPredictor`
(onnxruntime) subclass :class:`BasePredictor` and differ only in :meth:`BasePredictor.logits`. Everything
else is here, once: words from :func:`chatft.core.text.split_words`, tokenization and word alignment as in
training and batches of similar length (:func:`chatft.core.inference_loop.decode_words`), decoding with
:class:`chatft.core.decoding.Decoder` (the decoding ``test`` scores: calibrated intents, the out-of-scope
decision, words cut by truncation tagged ``O``) and :func:`chatft.core.prediction.build_prediction`, then the
entity values (:class:`chatft.core.entities.EntityResolver`: regexes, lookup tables, synonyms, typed numbers,
money and dates relative to ``reference_time``). A text without words gets an empty prediction and never
reaches the model. :meth:`BasePredictor.explain` adds word attributions (:mod:`chatft.core.attribution`):
occlusion here, on either backend; the PyTorch predictor adds Integrated Gradients.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

import numpy as np

from chatft.core.attribution import SlotTarget, check_request, explain_prediction, occlusion
from chatft.core.decoding import Decoded, Decoder
from chatft.core.entities import EntityResolver
from chatft.core.entity_resources import EntityResources
from chatft.core.errors import ConfigError
from chatft.core.inference_loop import decode_words
from chatft.core.prediction import Prediction, build_prediction
from chatft.core.tags import entity_types
from chatft.core.text import split_words

__all__ = ["BasePredictor"]


class BasePredictor:
    """Batching, padding, decoding and result assembly shared by the predictors.

    Args:
        tokenizer: A fast tokenizer (or :class:`~chatft.serving.onnx_predictor.WordTokenizer`).
        decoder: Labels and slot decoding of the model.
        max_length: Max sub-word tokens per utterance; words beyond are predicted ``O`` (``truncated``).
        pad_id: Token id used for padding.
        top_k: How many intents to list in ``intents_top_k``.
        entities: The project's synonyms, regexes and lookup tables (from the checkpoint or export; None:
            none). Slot values are typed (numbers, money, dates) by the rule of :mod:`chatft.core.values`
            either way; set ``predictor.resolver.typed_values = False`` to turn that off.
    """

    #: The attribution methods :meth:`explain` runs on this backend.
    explain_methods: tuple[str, ...] = ("occlusion",)

    def __init__(
        self,
        tokenizer,
        decoder: Decoder,
        max_length: int,
        pad_id: int,
        top_k: int = 3,
        entities: EntityResources | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.decoder = decoder
        self.max_length = int(max_length)
        self.pad_id = pad_id
        self.top_k = top_k
        self.resolver = EntityResolver(entities, entity_types(decoder.slot_labels))

    @property
    def intent_labels(self) -> tuple[str, ...]:
        return self.decoder.intent_labels

    @property
    def slot_labels(self) -> tuple[str, ...]:
        return self.decoder.slot_labels

    @property
    def oos(self):
        """Temperature and out-of-scope decision (:class:`chatft.core.oos.OOSState`): the one fitted at the end
        of ``fit``, or for a checkpoint without calibration the uncalibrated one ``test`` uses
        (:meth:`chatft.model.spec.ModelSpec.uncalibrated_oos`); None for an ONNX export without ``oos.json``."""
        return self.decoder.oos

    def logits(
        self, arrays: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Intent logits ``[B, I]``, word slot logits ``[B, W, T]`` (None without slots) and the pooled
        features ``[B, H]`` the Mahalanobis out-of-scope score reads (None where the backend has none) of a
        padded batch (the arrays :data:`chatft.core.inference_loop.MODEL_INPUTS` names)."""
        raise NotImplementedError

    def __call__(self, text: str, reference_time: datetime | None = None) -> Prediction:
        return self.batch([text], reference_time=reference_time)[0]

    def batch(
        self,
        texts: Sequence[str],
        batch_size: int = 32,
        reference_time: datetime | None = None,
        resolve: bool = True,
    ) -> list[Prediction]:
        """Predict many utterances; batches group similar lengths (less padding), output keeps input order.

        ``reference_time``: what relative dates ("tomorrow") are read against (default: now). ``resolve``:
        False gives the model's slots only (values = texts); :meth:`resolve` applies the entity values later.
        """
        if isinstance(texts, str):
            raise TypeError(
                f"{type(self).__name__}.batch takes a list of texts; call the predictor itself for one text"
            )
        spans = [split_words(t) for t in texts]
        todo = [i for i, s in enumerate(spans) if s]
        results = [build_prediction(t, [], None, self.intent_labels) for t in texts]
        decoded = self.decode_words([[w for w, _, _ in spans[i]] for i in todo], batch_size)
        for i, d in zip(todo, decoded, strict=True):
            results[i] = build_prediction(
                texts[i], spans[i], d, self.intent_labels, self.top_k, self.decoder.fallback_intent
            )
        return self.resolve(results, reference_time) if resolve else results

    def resolve(
        self, predictions: Sequence[Prediction], reference_time: datetime | None = None
    ) -> list[Prediction]:
        """Regexes, lookup tables, synonyms and typed values applied to predictions made with ``resolve=False``."""
        return self.resolver.resolve_all(predictions, reference_time)

    def decode_words(
        self, words: Sequence[Sequence[str]], batch_size: int = 32, word_probabilities: bool = False
    ) -> list[Decoded]:
        """Decode utterances already split into words, in input order (the loop :meth:`batch` runs:
        :func:`chatft.core.inference_loop.decode_words` with this predictor's forward pass).

        ``word_probabilities``: also give every kept word's probabilities over all tags
        (:meth:`chatft.core.decoding.Decoder.decode`), as the data audit needs.
        """
        return decode_words(
            words,
            self.tokenizer,
            self.logits,
            self.decoder,
            self.max_length,
            self.pad_id,
            batch_size,
            word_probabilities,
        )

    def explain(
        self,
        text: str,
        method: str | None = None,
        intent: str | None = None,
        reference_time: datetime | None = None,
    ) -> Prediction:
        """The prediction of ``text`` with its ``explanation``: a score per word for the predicted intent (or
        for ``intent``: "why not atis_airfare?") and per predicted slot (:mod:`chatft.core.attribution`)."""
        pred = self(text, reference_time=reference_time)
        return replace(pred, explanation=self.explanation(pred, method, intent))

    def explanation(self, pred: Prediction, method: str | None = None, intent: str | None = None) -> dict:
        """The explanation object of a prediction this predictor made (``method`` default:
        :data:`chatft.core.attribution.DEFAULT_METHOD`; see :func:`chatft.core.attribution.explain_prediction`)."""
        method = check_request(method, intent, self.explain_methods, self.intent_labels)
        return explain_prediction(
            pred, method, self.attribute, self.word_scores, self.intent_labels, self.slot_labels, intent
        )

    def word_scores(self, words: Sequence[Sequence[str]]) -> list[Decoded]:
        """The score function of :mod:`chatft.core.attribution`: decoded words with every tag's probability."""
        return self.decode_words(words, word_probabilities=True)

    def attribute(
        self, words: Sequence[str], method: str, intent: int, slots: Sequence[SlotTarget]
    ) -> tuple[list[float], list[list[float]]]:
        """(intent scores, slot scores) of ``words`` by ``method``; occlusion runs through :meth:`decode_words`."""
        if method != "occlusion":
            raise ConfigError(f"{type(self).__name__} cannot explain with {method}")
        return occlusion(words, self.word_scores, intent, slots)
