"""Dialogue state tracking for the chat loop: an intent and a frame of slot values carried across turns.

The rules, applied to each turn's :class:`~chatft.core.prediction.Prediction`:

1. **Which frame.** The turn continues the current frame when its intent is the current intent, when its
   intent is listed in the current intent's ``follow_ups`` (``atis_airfare`` after ``atis_flight``: the
   intent becomes the new one, the slots stay), or when the model is unsure of the intent
   (``intent_confidence < min_intent_confidence``: a fragment such as "to denver" keeps the current intent).
   Any other intent starts a new, empty frame.
2. **Slots.** The turn's slots are written into the frame; a later value for a slot replaces the earlier one
   (within a turn too). The frame's intent may rename slot types first (``aliases``): a fragment such as
   "next friday" is tagged ``date`` on its own, which for a flight booking means ``depart_date``. A value is
   first mapped to its canonical form when the policy lists it as a synonym (``coke`` -> ``coca-cola``;
   case and spacing do not matter). A slot declared ``multiple`` keeps a list instead: every value of the
   frame's turns, in order, without repeats ("ham and pineapple" keeps both).
3. **Response.** If a slot the intent requires is missing, ask for the first one (its ``ask`` question, or
   "What is the <slot name>?"); otherwise confirm with the intent's ``confirm`` template or a generic
   sentence listing the frame. Templates fill ``{slot}`` placeholders from the frame (a list reads "ham and
   pineapple"); a part in square brackets is left out when a placeholder inside it has no value
   (``Adding {food}[ and {drink}].``), and a list of templates means "the first one whose placeholders
   outside brackets all have values" (rephrasing); when none fits, the generic sentence is used.

Requirements, questions and templates come from a small YAML file (a *dialogue policy*); chatft ships
``atis`` and ``demo`` in ``chatft/resources/dialogue/``. Its keys::

    min_intent_confidence: 0.5          # below this, a turn keeps the current intent
    slot_names: {toloc.city_name: destination}           # readable names for questions and summaries
    slots:                              # optional, per slot type
      topping:
        multiple: true                  # keep every value in a list
        synonyms: {pineapple: [ananas]} # canonical value: [other ways to say it]
    intents:
      atis_flight:
        description: a flight search
        required: [fromloc.city_name, toloc.city_name]   # asked for in this order
        ask: {toloc.city_name: Where do you want to fly to?}
        confirm: Searching flights from {fromloc.city_name} to {toloc.city_name}[ on {depart_date}].
        follow_ups: [atis_airfare]      # intents that continue this intent's frame
        aliases: {date: depart_date}    # slot types renamed when they fill this intent's frame
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from chatft.core.errors import ConfigError
from chatft.core.prediction import Prediction
from chatft.core.tags import entity_types
from chatft.dialogue.policy_file import read_policy_file, yaml_error  # noqa: F401 - yaml_error: its old home

SHIPPED = Path(__file__).resolve().parent.parent / "resources" / "dialogue"
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
_OPTIONAL = re.compile(r"\[([^\[\]]*)\]")
_INTENT_KEYS = ("description", "required", "ask", "confirm", "follow_ups", "aliases")
_SLOT_KEYS = ("multiple", "synonyms")
_TOP_KEYS = ("intents", "slots", "slot_names", "min_intent_confidence")

#: A frame value: one string, or a list of strings for a slot declared ``multiple``.
Value = str | list[str]
#: A template: one string, or alternatives tried in order.
Template = str | tuple[str, ...]


def _normal(value: str) -> str:
    return " ".join(value.lower().split())


def join_values(value: Value) -> str:
    """How a frame value reads in a sentence: ``ham``, ``ham and pineapple``, ``ham, olives and pineapple``."""
    if isinstance(value, str):
        return value
    return value[0] if len(value) == 1 else ", ".join(value[:-1]) + " and " + value[-1]


def render(template: Template, frame: dict[str, Value]) -> str | None:
    """Fill a template from the frame, or None when no alternative has values for its required placeholders.

    Placeholders inside ``[...]`` are optional: the bracketed part is dropped when one of them is missing.
    """
    for text in (template,) if isinstance(template, str) else template:
        outside = _OPTIONAL.sub("", text)
        if any(m.group(1).strip() not in frame for m in _PLACEHOLDER.finditer(outside)):
            continue

        def optional(m: re.Match) -> str:
            names = [p.group(1).strip() for p in _PLACEHOLDER.finditer(m.group(1))]
            return m.group(1) if all(n in frame for n in names) else ""

        filled = _OPTIONAL.sub(optional, text)
        return _PLACEHOLDER.sub(lambda m: join_values(frame[m.group(1).strip()]), filled)
    return None


def _template(value, where: str) -> Template:
    """A template from YAML (a string or a list of strings), with balanced brackets."""
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise ConfigError(f"{where}: expected a template string or a list of template strings")
    for t in texts:
        if _OPTIONAL.sub("", t).count("[") or _OPTIONAL.sub("", t).count("]"):
            raise ConfigError(f"{where}: unbalanced or nested [ ] in template {t!r}")
    return value if isinstance(value, str) else tuple(texts)


@dataclass(frozen=True)
class SlotPolicy:
    """How one slot type's values enter the frame: one value or a list, and synonyms mapped to a canonical value."""

    multiple: bool = False
    synonyms: dict[str, str] = field(default_factory=dict)  # normalised variant -> canonical value

    def canonical(self, value: str) -> str:
        return self.synonyms.get(_normal(value), value)

    @classmethod
    def from_dict(cls, spec, where: str) -> SlotPolicy:
        spec = spec or {}
        bad = set(spec) - set(_SLOT_KEYS) if isinstance(spec, dict) else set()
        if not isinstance(spec, dict) or bad:
            raise ConfigError(f"{where}: unknown keys {sorted(bad)} ({', '.join(_SLOT_KEYS)})")
        synonyms: dict[str, str] = {}
        raw = spec.get("synonyms") or {}
        if not isinstance(raw, dict):
            raise ConfigError(
                f"{where}: synonyms must map a canonical value to a list of other ways to say it"
            )
        for canonical, variants in raw.items():
            variants = [variants] if isinstance(variants, str) else variants
            if not isinstance(variants, list) or not all(isinstance(v, str) for v in variants):
                raise ConfigError(f"{where}: synonyms of {canonical!r} must be a string or a list of strings")
            for v in [str(canonical), *variants]:
                synonyms[_normal(v)] = str(canonical)
        return cls(multiple=bool(spec.get("multiple", False)), synonyms=synonyms)


@dataclass(frozen=True)
class IntentPolicy:
    """What one intent needs: required slots (in asking order), questions, a confirmation, follow-up intents."""

    description: str | None = None
    required: tuple[str, ...] = ()
    ask: dict[str, Template] = field(default_factory=dict)
    confirm: Template | None = None
    follow_ups: tuple[str, ...] = ()
    aliases: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DialoguePolicy:
    """Per-intent requirements and templates (see the module docstring for the YAML layout)."""

    intents: dict[str, IntentPolicy] = field(default_factory=dict)
    slot_names: dict[str, str] = field(default_factory=dict)
    min_intent_confidence: float = 0.5
    slots: dict[str, SlotPolicy] = field(default_factory=dict)

    @classmethod
    def load(cls, name_or_path: str | Path | None) -> DialoguePolicy:
        """A shipped policy by name (``atis``, ``demo``), a YAML file, or None for an empty policy."""
        if name_or_path is None:
            return cls()
        raw, where = read_policy_file(name_or_path, SHIPPED, not_found=FileNotFoundError)
        return cls.from_dict(raw, where=where)

    @classmethod
    def from_dict(cls, raw: dict, where: str = "policy") -> DialoguePolicy:
        if not isinstance(raw, dict):
            raise ConfigError(
                f"{where}: expected a mapping with 'intents' (keys: docs/guides/dialogue.md, 'Dialogue policies')"
            )
        unknown = set(raw) - set(_TOP_KEYS)
        if unknown:
            raise ConfigError(f"{where}: unknown keys {sorted(unknown)} ({', '.join(_TOP_KEYS)})")
        intents = {}
        for intent, spec in (raw.get("intents") or {}).items():
            spec = spec or {}
            bad = set(spec) - set(_INTENT_KEYS) if isinstance(spec, dict) else set()
            if not isinstance(spec, dict) or bad:
                raise ConfigError(
                    f"{where}: intent {intent!r}: unknown keys {sorted(bad)} ({', '.join(_INTENT_KEYS)})"
                )
            at = f"{where}: intent {intent!r}"
            intents[str(intent)] = IntentPolicy(
                description=spec.get("description"),
                required=tuple(spec.get("required") or ()),
                ask={k: _template(v, f"{at}: ask {k!r}") for k, v in (spec.get("ask") or {}).items()},
                confirm=_template(spec["confirm"], f"{at}: confirm") if spec.get("confirm") else None,
                follow_ups=tuple(spec.get("follow_ups") or ()),
                aliases=dict(spec.get("aliases") or {}),
            )
        slots = {
            str(slot): SlotPolicy.from_dict(spec, f"{where}: slot {slot!r}")
            for slot, spec in (raw.get("slots") or {}).items()
        }
        return cls(
            intents=intents,
            slot_names=dict(raw.get("slot_names") or {}),
            min_intent_confidence=float(raw.get("min_intent_confidence", 0.5)),
            slots=slots,
        )

    def unknown_labels(self, intent_labels, slot_labels) -> list[str]:
        """Intents and slot types named in the policy that the model cannot predict (worth a warning)."""
        types = set(entity_types(slot_labels))
        known = set(intent_labels)
        out = [f"intent {i}" for i in self.intents if i not in known]
        for p in self.intents.values():
            out += [f"intent {i}" for i in p.follow_ups if i not in known]
            named = (*p.required, *p.ask, *p.aliases, *p.aliases.values())
            out += [f"slot {s}" for s in named if types and s not in types]
        out += [f"slot {s}" for s in self.slots if types and s not in types]
        return sorted(set(out))

    def intent(self, name: str | None) -> IntentPolicy:
        return self.intents.get(name or "", IntentPolicy())

    def slot_name(self, slot: str) -> str:
        return self.slot_names.get(slot, slot)

    def slot(self, name: str) -> SlotPolicy:
        return self.slots.get(name, SlotPolicy())


@dataclass
class DialogueState:
    """The current intent and its frame of slot values."""

    intent: str | None = None
    frame: dict[str, Value] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "intent": self.intent,
            "frame": {k: list(v) if isinstance(v, list) else v for k, v in self.frame.items()},
        }


#: What a turn the model calls out of scope gets (``chat --fallback_response`` changes it).
FALLBACK_RESPONSE = "Sorry, I didn't get that."


class DialogueTracker:
    """Keeps a :class:`DialogueState` across turns and answers each turn (rules in the module docstring).

    A turn predicted out of scope (``Prediction.out_of_scope``) gets ``fallback_response`` and changes
    nothing: its slots are not trusted into the frame, and the dialogue goes on where it was.
    """

    def __init__(
        self, policy: DialoguePolicy | None = None, fallback_response: str = FALLBACK_RESPONSE
    ) -> None:
        self.policy = policy or DialoguePolicy()
        self.state = DialogueState()
        self.fallback_response = fallback_response

    def reset(self) -> None:
        self.state = DialogueState()

    def _continues(self, pred: Prediction) -> bool:
        current = self.state.intent
        if current is None:
            return False
        return (
            pred.intent == current
            or pred.intent in self.policy.intent(current).follow_ups
            or pred.intent_confidence < self.policy.min_intent_confidence
        )

    def update(self, pred: Prediction) -> dict:
        """Apply one turn; returns ``{"new_frame", "state", "missing", "response"}``."""
        if getattr(pred, "out_of_scope", False):
            missing = self.missing() if self.state.intent is not None else []
            return {
                "new_frame": False,
                "state": self.state.to_dict(),
                "missing": missing,
                "response": self.fallback_response,
            }
        continues = self._continues(pred)
        if not continues:
            self.state = DialogueState(intent=pred.intent)
        elif pred.intent_confidence >= self.policy.min_intent_confidence:
            self.state.intent = pred.intent  # same intent, or a follow-up intent that takes over the frame
        aliases = self.policy.intent(self.state.intent).aliases
        for slot in pred.slots:
            name = aliases.get(slot.label, slot.label)
            spec = self.policy.slot(name)
            value = spec.canonical(slot.value)
            if not spec.multiple:
                self.state.frame[name] = value
                continue
            values = self.state.frame.setdefault(name, [])
            if not isinstance(values, list):  # defensive: a frame built by hand with a plain string
                values = self.state.frame[name] = [values]
            if value not in values:
                values.append(value)
        missing = self.missing()
        return {
            "new_frame": not continues,
            "state": self.state.to_dict(),
            "missing": missing,
            "response": self.respond(missing),
        }

    def missing(self) -> list[str]:
        return [s for s in self.policy.intent(self.state.intent).required if s not in self.state.frame]

    def respond(self, missing: list[str] | None = None) -> str:
        """A question for the first missing required slot, else a confirmation of the frame."""
        missing = self.missing() if missing is None else missing
        spec = self.policy.intent(self.state.intent)
        frame = self.state.frame
        if missing:
            slot = missing[0]
            question = render(spec.ask[slot], frame) if slot in spec.ask else None
            return question or f"What is the {self.policy.slot_name(slot)}?"
        confirmation = render(spec.confirm, frame) if spec.confirm else None
        if confirmation is not None:
            return confirmation
        what = spec.description or (self.state.intent or "that")
        if not frame:
            return f"OK: {what}."
        details = ", ".join(f"{self.policy.slot_name(k)} {join_values(v)}" for k, v in frame.items())
        return f"OK: {what} with {details}."
