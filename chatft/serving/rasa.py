"""A :class:`~chatft.core.prediction.Prediction` in Rasa's ``/model/parse`` format (Rasa's HTTP API spec).

Rasa (``RasaNLUHttpInterpreter``, ``nlu: url:`` in ``endpoints.yml``) posts ``{"text", "message_id"}`` to
``<url>/model/parse`` and reads ``text``, ``intent`` (``name``, ``confidence``), ``intent_ranking`` and
``entities`` (``entity``, ``value``, ``start``, ``end``, ``confidence_entity``, ``extractor``). Rasa's optional
entity fields (``role``, ``group`` and their confidences, ``processors``) and ``response_selector`` are not
filled: chatft's slots have no roles or groups. Offsets index the text as sent, so ``text[start:end] == value``.

A blank text gets what Rasa answers for an empty message: no intent (``name`` null, confidence 0), an empty
ranking, no entities. The model is not asked: a guess from no words would only mislead Rasa's policies.
"""

from __future__ import annotations

from chatft.core.prediction import Prediction

__all__ = ["EXTRACTOR", "empty_parse", "to_rasa"]

EXTRACTOR = "chatft"


def empty_parse(text: str) -> dict:
    """Rasa's parse result for a blank message."""
    return {"text": text, "intent": {"name": None, "confidence": 0.0}, "intent_ranking": [], "entities": []}


def to_rasa(pred: Prediction) -> dict:
    """Rasa's parse result for one prediction: intent, ranking (the predictor's top k), entities."""
    return {
        "text": pred.text,
        "intent": {"name": pred.intent, "confidence": pred.intent_confidence},
        "intent_ranking": [{"name": name, "confidence": conf} for name, conf in pred.intents_top_k],
        "entities": [
            {
                "entity": s.label,
                "value": s.value,
                "start": s.start,
                "end": s.end,
                "confidence_entity": s.confidence,
                "extractor": EXTRACTOR,
            }
            for s in pred.slots
        ],
    }
