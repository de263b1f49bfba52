"""Entity values after the model: regex and lookup extraction, synonyms, typed values (no torch).

:class:`EntityResolver` turns a :class:`~chatft.core.prediction.Prediction` straight from the model (each
slot's ``value`` its text) into the one a back end reads, in Rasa's pipeline order:

1. **Regexes and lookup tables** (Rasa's ``RegexEntityExtractor``): each pattern whose name is a slot type of
   the model (Rasa uses only patterns named like an entity of the training data) is searched in the text,
   case-insensitively; a lookup table is the pattern ``\\b(element|...)\\b`` of its escaped elements (longest
   first, so "new york city" wins over "new york"). Every match is a slot with ``extractor``
   ``RegexEntityExtractor`` and confidence 1.0, added after the model's slots, as Rasa appends them. Both are
   kept where they overlap, as in Rasa, except a match with the same type, start and end as a model slot,
   which would only repeat it (the model's slot stays, with its confidence).
2. **Synonyms** (Rasa's ``EntitySynonymMapper``): a slot whose value, lower-cased, is a known synonym takes
   the synonym's value; ``processors`` lists ``EntitySynonymMapper``.
3. **Typed values** (:mod:`chatft.core.values`): a slot whose type is typed (by ``value_types`` or its name)
   and whose value parses gets ``typed`` (Duckling's shape) and ``value`` becomes the canonical string
   (``50``, ``250 USD``, ``2026-12-03``); ``processors`` lists ``ValueNormalizer``. It parses the value after
   synonyms, so a synonym ``xmas`` -> ``december 25`` gives a date.

Every slot keeps its ``text`` and character offsets (``text == prediction.text[start:end]``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from datetime import datetime

from chatft.core.entity_resources import EntityResources
from chatft.core.prediction import Prediction, Slot
from chatft.core.values import canonical, dimension_of, normalise

__all__ = ["EntityResolver", "REGEX_EXTRACTOR", "SYNONYM_PROCESSOR", "VALUE_PROCESSOR"]

#: Rasa's names for the components whose work this does (``extractor`` / ``processors`` of an entity).
REGEX_EXTRACTOR = "RegexEntityExtractor"
SYNONYM_PROCESSOR = "EntitySynonymMapper"
VALUE_PROCESSOR = "ValueNormalizer"


def lookup_pattern(elements: Iterable[str]) -> str:
    """Rasa's lookup-table regex: the escaped elements between word boundaries (longest first)."""
    escaped = [re.escape(e) for e in sorted(elements, key=lambda e: (-len(e), e))]
    return r"\b(" + "|".join(escaped) + r")\b"


class EntityResolver:
    """Apply a project's :class:`~chatft.core.entity_resources.EntityResources` to model predictions.

    Args:
        resources: The project's resources (None: no synonyms, regexes or lookups; slots are still typed by
            their names).
        slot_types: The model's slot types: regexes and lookup tables named otherwise are not used (Rasa's
            rule).
        typed_values: Give typed values at all (False: only synonyms, regexes and lookups apply).
    """

    def __init__(
        self, resources: EntityResources | None, slot_types: Iterable[str], typed_values: bool = True
    ) -> None:
        self.resources = resources or EntityResources()
        types = set(slot_types)
        res = self.resources
        named = [(n, p) for n, p in res.regexes] + [(n, lookup_pattern(e)) for n, e in res.lookups]
        self.patterns = [(name, re.compile(p, re.IGNORECASE)) for name, p in named if name in types]
        self.typed_values = typed_values

    def extract(self, text: str) -> list[Slot]:
        """The regex and lookup-table matches of ``text``, pattern by pattern, in text order."""
        return [
            Slot(
                label=name,
                value=m.group(),
                start=m.start(),
                end=m.end(),
                confidence=1.0,
                extractor=REGEX_EXTRACTOR,
            )
            for name, pattern in self.patterns
            for m in pattern.finditer(text)
            if m.end() > m.start()
        ]

    def resolve_slot(self, slot: Slot, reference_time: datetime | None = None) -> Slot:
        """One slot with its synonym and typed value applied (its text and offsets unchanged)."""
        res = self.resources
        value, processors = slot.text, []  # from the text again: resolving twice changes nothing
        mapped = res.synonyms.get(value.lower())
        if mapped is not None and mapped != value:  # (Rasa also names itself when only the case was the same)
            value = mapped
            processors.append(SYNONYM_PROCESSOR)
        typed = None
        dim = dimension_of(slot.label, res.value_types) if self.typed_values else None
        if dim is not None:
            typed = normalise(value, dim, reference_time, res.language, res.currencies)
            if typed is not None:
                value = canonical(typed)
                processors.append(VALUE_PROCESSOR)
        return dataclasses.replace(slot, value=value, typed=typed, processors=tuple(processors))

    def resolve(self, pred: Prediction, reference_time: datetime | None = None) -> Prediction:
        """``pred`` (as the model gave it) with extracted slots added and every slot's value resolved."""
        if pred.empty:
            return pred
        reference_time = reference_time or datetime.now().replace(microsecond=0)
        seen = {(s.label, s.start, s.end) for s in pred.slots}
        extra = [s for s in self.extract(pred.text) if (s.label, s.start, s.end) not in seen]
        slots = [self.resolve_slot(s, reference_time) for s in [*pred.slots, *extra]]
        return dataclasses.replace(pred, slots=slots)

    def resolve_all(
        self, preds: Iterable[Prediction], reference_time: datetime | None = None
    ) -> list[Prediction]:
        """:meth:`resolve` for many, with one reference time (now, once, by default)."""
        reference_time = reference_time or datetime.now().replace(microsecond=0)
        return [self.resolve(p, reference_time) for p in preds]
