"""A :class:`~chatft.core.prediction.Prediction` in Rasa's ``/model/parse`` format (Rasa's HTTP API spec).

Rasa (``RasaNLUHttpInterpreter``, ``nlu: url:`` in ``endpoints.yml``) posts ``{"text", "message_id"}`` to
``<url>/model/parse`` and reads ``text``, ``intent`` (``name``, ``confidence``), ``intent_ranking`` and
``entities`` (``entity``, ``value``, ``start``, ``end``, ``confidence_entity``, ``extractor``). Entity values are
filled as Rasa's pipeline fills them (:mod:`chatft.core.entities`): ``extractor`` is ``chatft`` for the model's
slots and ``RegexEntityExtractor`` for regex and lookup-table matches; ``processors`` (only when one changed the
value, as in Rasa) lists ``EntitySynonymMapper`` and/or ``ValueNormalizer``; a typed value is given as Rasa's
``DucklingEntityExtractor`` gives it: ``value`` is the number or ISO date-time itself and ``additional_info``
the whole typed value (``{"dim", "value", "unit"}`` or ``{"dim", "value", "grain"}``). Roles, groups and
``response_selector`` are not filled: chatft's slots have none. Offsets index the text as sent.

A blank text gets what Rasa answers for an empty message: no intent (``name`` null, confidence 0), an empty
ranking, no entities. The model is not asked: a guess from no words would only mislead Rasa's policies.
"""

from __future__ import annotations

from chatft.core.prediction import MODEL_EXTRACTOR, Prediction, Slot

__all__ = ["EXTRACTOR", "empty_parse", "to_rasa"]

EXTRACTOR = MODEL_EXTRACTOR


def empty_parse(text: str) -> dict:
    """Rasa's parse result for a blank message."""
    return {"text": text, "intent": {"name": None, "confidence": 0.0}, "intent_ranking": [], "entities": []}


def to_rasa(pred: Prediction) -> dict:
    """Rasa's parse result for one prediction: intent, ranking (the predictor's top k), entities."""
    return {
        "text": pred.text,
        "intent": {"name": pred.intent, "confidence": pred.intent_confidence},
        "intent_ranking": [{"name": name, "confidence": conf} for name, conf in pred.intents_top_k],
        "entities": [_entity(s) for s in pred.slots],
    }


def _entity(s: Slot) -> dict:
    out = {
        "entity": s.label,
        "value": s.typed["value"] if s.typed else s.value,
        "start": s.start,
        "end": s.end,
        "confidence_entity": s.confidence,
        "extractor": s.extractor,
    }
    if s.processors:
        out["processors"] = list(s.processors)
    if s.typed:
        out["additional_info"] = dict(s.typed)
    return out
