"""Dialogue state tracking for the chat loop: an intent and a frame of slot values carried across turns.

The rules, applied to each turn's :class:`~chatft.core.prediction.Prediction`:

1. **Which frame.** The turn continues the current frame when its intent is the current intent, when its
   intent is listed in the current intent's ``follow_ups`` (``atis_airfare`` after ``atis_flight``: the
   intent becomes the new one, the slots stay), or when the model is unsure of the intent
   (``intent_confidence < min_intent_confidence``: a fragment such as "to denver" keeps the current intent).
   Any other intent starts a new, empty frame.
2. **Slots.** The turn's slots are written into the frame; a later value for a slot replaces the earlier one
   (within a turn too). The frame's intent may rename slot types first (``aliases``): a fragment such as
   "next friday" is tagged ``date`` on its own, which for a flight booking means ``depart_date``.
3. **Response.** If a slot the intent requires is missing, ask for the first one (its ``ask`` question, or
   "What is the <slot name>?"); otherwise confirm with the intent's ``confirm`` template (``{slot}``
   placeholders are filled from the frame) or a generic sentence listing the frame.

Requirements, questions and templates come from a small YAML file (a *dialogue policy*); chatft ships
``atis`` and ``demo`` in ``chatft/resources/dialogue/``. Its keys::

    min_intent_confidence: 0.5          # below this, a turn keeps the current intent
    slot_names: {toloc.city_name: destination}           # readable names for questions and summaries
    intents:
      atis_flight:
        description: a flight search
        required: [fromloc.city_name, toloc.city_name]   # asked for in this order
        ask: {toloc.city_name: Where do you want to fly to?}
        confirm: Searching flights from {fromloc.city_name} to {toloc.city_name}.
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

SHIPPED = Path(__file__).resolve().parent.parent / "resources" / "dialogue"
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")


@dataclass(frozen=True)
class IntentPolicy:
    """What one intent needs: required slots (in asking order), questions, a confirmation, follow-up intents."""

    description: str | None = None
    required: tuple[str, ...] = ()
    ask: dict[str, str] = field(default_factory=dict)
    confirm: str | None = None
    follow_ups: tuple[str, ...] = ()
    aliases: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DialoguePolicy:
    """Per-intent requirements and templates (see the module docstring for the YAML layout)."""

    intents: dict[str, IntentPolicy] = field(default_factory=dict)
    slot_names: dict[str, str] = field(default_factory=dict)
    min_intent_confidence: float = 0.5

    @classmethod
    def load(cls, name_or_path: str | Path | None) -> DialoguePolicy:
        """A shipped policy by name (``atis``, ``demo``), a YAML file, or None for an empty policy."""
        if name_or_path is None:
            return cls()
        path = Path(name_or_path).expanduser()
        if not path.is_file() and (SHIPPED / f"{name_or_path}.yaml").is_file():
            path = SHIPPED / f"{name_or_path}.yaml"
        if not path.is_file():
            shipped = ", ".join(sorted(p.stem for p in SHIPPED.glob("*.yaml")))
            raise FileNotFoundError(
                f"{name_or_path}: dialogue policy not found (a YAML file, or one of: {shipped})"
            )
        import yaml

        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
        return cls.from_dict(raw, where=str(path))

    @classmethod
    def from_dict(cls, raw: dict, where: str = "policy") -> DialoguePolicy:
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: expected a mapping with 'intents' (see chatft/dialogue.py)")
        unknown = set(raw) - {"intents", "slot_names", "min_intent_confidence"}
        if unknown:
            raise ConfigError(
                f"{where}: unknown keys {sorted(unknown)} (intents, slot_names, min_intent_confidence)"
            )
        intents = {}
        for intent, spec in (raw.get("intents") or {}).items():
            spec = spec or {}
            bad = set(spec) - {"description", "required", "ask", "confirm", "follow_ups", "aliases"}
            if not isinstance(spec, dict) or bad:
                raise ConfigError(
                    f"{where}: intent {intent!r}: unknown keys {sorted(bad)} "
                    "(description, required, ask, confirm, follow_ups, aliases)"
                )
            intents[str(intent)] = IntentPolicy(
                description=spec.get("description"),
                required=tuple(spec.get("required") or ()),
                ask=dict(spec.get("ask") or {}),
                confirm=spec.get("confirm"),
                follow_ups=tuple(spec.get("follow_ups") or ()),
                aliases=dict(spec.get("aliases") or {}),
            )
        return cls(
            intents=intents,
            slot_names=dict(raw.get("slot_names") or {}),
            min_intent_confidence=float(raw.get("min_intent_confidence", 0.5)),
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
        return sorted(set(out))

    def intent(self, name: str | None) -> IntentPolicy:
        return self.intents.get(name or "", IntentPolicy())

    def slot_name(self, slot: str) -> str:
        return self.slot_names.get(slot, slot)


@dataclass
class DialogueState:
    """The current intent and its frame of slot values."""

    intent: str | None = None
    frame: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"intent": self.intent, "frame": dict(self.frame)}


class DialogueTracker:
    """Keeps a :class:`DialogueState` across turns and answers each turn (rules in the module docstring)."""

    def __init__(self, policy: DialoguePolicy | None = None) -> None:
        self.policy = policy or DialoguePolicy()
        self.state = DialogueState()

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
        continues = self._continues(pred)
        if not continues:
            self.state = DialogueState(intent=pred.intent)
        elif pred.intent_confidence >= self.policy.min_intent_confidence:
            self.state.intent = pred.intent  # same intent, or a follow-up intent that takes over the frame
        aliases = self.policy.intent(self.state.intent).aliases
        for slot in pred.slots:
            self.state.frame[aliases.get(slot.label, slot.label)] = slot.value
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
        if missing:
            slot = missing[0]
            return spec.ask.get(slot) or f"What is the {self.policy.slot_name(slot)}?"
        frame = self.state.frame
        if spec.confirm:
            return _PLACEHOLDER.sub(lambda m: frame.get(m.group(1).strip(), ""), spec.confirm)
        what = spec.description or (self.state.intent or "that")
        if not frame:
            return f"OK: {what}."
        details = ", ".join(f"{self.policy.slot_name(k)} {v}" for k, v in frame.items())
        return f"OK: {what} with {details}."
