"""Predictor: raw text -> intent, confidence and slots with character offsets, from a checkpoint.

    from chatft import Predictor
    predictor = Predictor.from_checkpoint("runs/atis/.../best.ckpt", device="cpu")
    result = predictor("book a flight from boston to denver tomorrow")
    result.intent, result.intent_confidence, [(s.label, s.value) for s in result.slots]
    predictor.batch(["list flights to denver", "what is fare code h"])   # dynamic padding

Loading needs only the checkpoint file (see :mod:`chatft.training.artifacts`). Text is split into words with
:func:`chatft.core.text.split_words`, tokenized and decoded exactly as ``test`` decodes (same word alignment, same
BIO-constrained/CRF decoding, words beyond ``max_length`` tagged ``O``), so tags and intents equal what
``python -m chatft predict`` writes. Results are :class:`~chatft.core.decoding.Prediction` objects.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from chatft.core.decoding import intent_probabilities
from chatft.core.features import tokenize_examples
from chatft.core.oos import OOSState
from chatft.core.prediction import Prediction, build_prediction
from chatft.core.text import split_words
from chatft.training.artifacts import InferenceModel, load_for_inference, slot_decoder_of
from chatft.training.collate import collate

__all__ = ["Predictor", "raw_predictions"]


def raw_predictions(
    model,
    batch: dict,
    intent_logits: Tensor,
    slot_logits: Tensor | None,
    intent_labels: Sequence[str],
    slot_labels: Sequence[str],
    oos: OOSState | None = None,
    features: Tensor | None = None,
) -> list[dict]:
    """Per utterance of a collated batch: ``index``, ``intent``, ``intent_probs`` (all intents),
    ``tags`` (every word; cut words ``O``), ``tag_confidences`` (kept words), ``truncated``, and
    ``out_of_scope`` / ``fallback_intent``.

    Tags come from ``model.decode``, the decoding ``test`` scores; probabilities and confidences are computed
    in float64 numpy (:mod:`chatft.core.decoding`), the same code the ONNX predictor runs. With ``oos`` (the
    checkpoint's fitted state), intent probabilities are temperature-scaled and the out-of-scope decision is
    applied (``features``: the pooled encoder features, needed by the Mahalanobis score).
    """
    intents, _, paths = model.decode(intent_logits, slot_logits, batch["word_mask"])
    logits = intent_logits.float().cpu().numpy()
    if oos is not None:
        feats = features.float().cpu().numpy() if features is not None and oos.needs_features else None
        probs, out_of_scope = oos.decide(logits, feats)
        intent_ids = probs.argmax(-1).tolist()
    else:
        probs = intent_probabilities(logits)
        out_of_scope = [False] * len(logits)
        intent_ids = intents.tolist()
    decoder = slot_decoder_of(model) if slot_logits is not None else None
    emissions = slot_logits.float().cpu().numpy() if slot_logits is not None else None
    out = []
    for i, (index, n_words) in enumerate(
        zip(batch["index"].tolist(), batch["n_words"].tolist(), strict=True)
    ):
        path = paths[i]
        tags = [slot_labels[t] for t in path] + ["O"] * (n_words - len(path)) if decoder else []
        out.append(
            {
                "index": index,
                "intent": intent_labels[int(intent_ids[i])],
                "intent_probs": probs[i].tolist(),
                "tags": tags,
                "tag_confidences": decoder.confidences(emissions[i], path) if decoder else [],
                "truncated": int(batch["word_mask"][i].sum()) < n_words,
                "out_of_scope": bool(out_of_scope[i]),
                "fallback_intent": oos.fallback_intent if oos is not None else None,
            }
        )
    return out


class Predictor:
    """A trained joint intent + slot model ready to serve (PyTorch).

    Build it with :meth:`from_checkpoint`. ``predictor(text)`` predicts one utterance; ``predictor.batch(texts)``
    many, batched by length with dynamic padding and returned in input order.
    """

    def __init__(self, loaded: InferenceModel, device: str = "cpu", top_k: int = 3) -> None:
        self.loaded = loaded
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.intent_labels = loaded.intent_labels
        self.slot_labels = loaded.slot_labels
        self.max_length = loaded.max_length
        #: Temperature and out-of-scope decision fitted at the end of ``fit`` (None for older checkpoints).
        self.oos = loaded.oos
        self.device = torch.device(device)
        self.top_k = top_k
        self.pad_id = self.tokenizer.pad_token_id or 0

    @classmethod
    def from_checkpoint(
        cls, path: str, device: str = "cpu", max_length: int | None = None, top_k: int = 3
    ) -> Predictor:
        """Load a ``.ckpt`` written by ``fit``; ``max_length`` defaults to the one the model was trained with."""
        return cls(load_for_inference(path, device=device, max_length=max_length), device=device, top_k=top_k)

    def __call__(self, text: str) -> Prediction:
        return self.batch([text])[0]

    @torch.inference_mode()
    def batch(self, texts: Sequence[str], batch_size: int = 32) -> list[Prediction]:
        """Predict many utterances; batches group similar lengths (less padding), output keeps input order."""
        if isinstance(texts, str):
            raise TypeError("Predictor.batch takes a list of texts; call the predictor itself for one text")
        spans = [split_words(t) for t in texts]
        features = tokenize_examples(
            self.tokenizer,
            [[w for w, _, _ in s] for s in spans],
            [None] * len(texts),
            [0] * len(texts),
            self.max_length,
        )
        order = sorted(range(len(features)), key=lambda i: len(features[i].input_ids))
        results: list[Prediction | None] = [None] * len(texts)
        for lo in range(0, len(order), batch_size):
            batch = collate([features[i] for i in order[lo : lo + batch_size]], self.pad_id)
            tensors = {k: batch[k].to(self.device) for k in ("input_ids", "attention_mask", "word_index")}
            intent_logits, slot_logits, pooled = self.model(**tensors, return_features=True)
            raw = raw_predictions(
                self.model,
                {**batch, "word_mask": batch["word_mask"].to(self.device)},
                intent_logits,
                slot_logits,
                self.intent_labels,
                self.slot_labels,
                oos=self.oos,
                features=pooled,
            )
            for r in raw:
                i = r["index"]
                results[i] = assemble(texts[i], spans[i], r, self.intent_labels, self.top_k)
        return results  # type: ignore[return-value]


def assemble(text: str, spans, raw: dict, intent_labels: Sequence[str], top_k: int = 3) -> Prediction:
    """A :class:`Prediction` from one :func:`raw_predictions` row and the word spans of ``text``."""
    return build_prediction(
        text,
        spans,
        raw["intent"],
        raw["intent_probs"],
        intent_labels,
        raw["tags"],
        raw["tag_confidences"],
        raw["truncated"],
        top_k=top_k,
        out_of_scope=raw.get("out_of_scope", False),
        fallback_intent=raw.get("fallback_intent"),
    )
