"""Predictor: raw text -> intent, confidence and slots with character offsets, from a checkpoint.

    from chatft import Predictor
    predictor = Predictor.from_checkpoint("runs/atis/.../best.ckpt", device="cpu")
    result = predictor("book a flight from boston to denver tomorrow")
    result.intent, result.intent_confidence, [(s.label, s.value) for s in result.slots]
    predictor.batch(["list flights to denver", "what is fare code h"])   # dynamic padding

Loading needs only the checkpoint file (see :mod:`chatft.model.inference`). Everything but the model's
forward pass is :class:`~chatft.serving.base.BasePredictor`'s, shared with the ONNX predictor and decoded as
``test`` decodes (with the temperature and out-of-scope decision stored in the checkpoint, or without one the
uncalibrated decision ``test`` uses), so tags, intents
and out-of-scope calls equal what ``python -m chatft predict`` writes. Results are
:class:`~chatft.core.prediction.Prediction` objects.
"""

from __future__ import annotations

import numpy as np
import torch

from chatft.core.decoding import Decoder
from chatft.model.decoding import slot_decoder_of
from chatft.model.inference import InferenceModel, load_for_inference
from chatft.serving.base import BasePredictor

__all__ = ["Predictor"]


class Predictor(BasePredictor):
    """A trained joint intent + slot model ready to serve (PyTorch).

    Build it with :meth:`from_checkpoint`. ``predictor(text)`` predicts one utterance; ``predictor.batch(texts)``
    many, batched by length with dynamic padding and returned in input order.
    """

    def __init__(self, loaded: InferenceModel, device: str = "cpu", top_k: int = 3) -> None:
        self.loaded = loaded
        self.model = loaded.model
        self.device = torch.device(device)
        # loaded.oos: the temperature and out-of-scope decision fitted at the end of fit, or the uncalibrated one
        decoder = Decoder(loaded.intent_labels, loaded.slot_labels, slot_decoder_of(loaded.model), loaded.oos)
        pad_id = loaded.tokenizer.pad_token_id or 0
        # loaded.entities: synonyms, regexes and lookup tables embedded by fit (None: none, or an older checkpoint)
        super().__init__(loaded.tokenizer, decoder, loaded.max_length, pad_id, top_k, loaded.entities)

    @classmethod
    def from_checkpoint(
        cls, path: str, device: str = "cpu", max_length: int | None = None, top_k: int = 3
    ) -> Predictor:
        """Load a ``.ckpt`` written by ``fit``; ``max_length`` defaults to the one the model was trained with."""
        return cls(load_for_inference(path, device=device, max_length=max_length), device=device, top_k=top_k)

    explain_methods = ("occlusion", "integrated_gradients")

    def attribute(self, words, method: str, intent: int, slots):
        """Occlusion (:class:`BasePredictor`'s), or Integrated Gradients with Captum
        (:func:`chatft.model.attribution.integrated_gradients`)."""
        if method != "integrated_gradients":
            return super().attribute(words, method, intent, slots)
        from chatft.model.attribution import integrated_gradients

        temperature = self.oos.temperature if self.oos is not None else 1.0
        return integrated_gradients(
            self.model, self.tokenizer, words, self.max_length, intent, slots, temperature
        )

    def logits(self, arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        return self.loaded.logits(arrays, self.device)
