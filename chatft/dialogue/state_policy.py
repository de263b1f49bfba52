"""What the bot says when a learned tracker keeps the state: a small policy over the tracked slots.

``chat`` and ``serve`` with a tracker checkpoint answer each turn with :meth:`StatePolicy.respond`, in this order:

1. **Requests.** When the user asked for something ("what is the phone number?"), a placeholder sentence naming
   it (``answer`` template, default ``"You asked for the {requests}: your back end answers that."``): chatft
   tracks requests, the facts come from your back end.
2. **Ask.** Else (or after that sentence) the first ``required`` slot that is not set (``dontcare`` counts as
   set) is asked for: its ``ask`` question, else ``"What <slot name> would you like?"``.
3. **Confirm.** When every required slot is set: the ``confirm`` template, else ``"OK: <description> with
   <slot> <value>, ..."``.

The policy is a YAML file (``--requirements``; chatft ships ``woz`` for the WOZ 2.0 restaurant domain in
``chatft/resources/dialogue/trackers/``). Every key is optional::

    description: a restaurant          # used by the generic confirmation
    required: [food, area, price range]     # asked in this order (default: every informable slot, schema order)
    slot_names: {price range: price range}  # readable names for questions and summaries
    ask: {food: What kind of food would you like?}
    confirm: I will look for a {price range} {food} restaurant in the {area}.
    dontcare: {area: any part of town}  # how a dontcare value reads (default: "any <slot name>")
    answer: You asked for the {requests}; your back end answers that.

Templates are the NLU policy's (:func:`chatft.dialogue.tracker.render`: ``{slot}`` placeholders, optional
``[...]`` parts, a list of alternatives). The rule-based tracker of intent and slot models
(:mod:`chatft.dialogue.tracker`) is separate and unchanged. Torch-free.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from chatft.core.errors import ConfigError
from chatft.dialogue.dialogues import DONTCARE
from chatft.dialogue.policy_file import read_policy_file
from chatft.dialogue.tracker import SHIPPED, Template, _template, join_values, render

__all__ = ["StatePolicy", "SHIPPED_TRACKER_POLICIES", "DEFAULT_ANSWER"]

#: Shipped policies for learned trackers (``--requirements woz``).
SHIPPED_TRACKER_POLICIES = SHIPPED / "trackers"
DEFAULT_ANSWER = "You asked for the {requests}: your back end answers that."
_KEYS = ("description", "required", "slot_names", "ask", "confirm", "dontcare", "answer")


@dataclass(frozen=True)
class StatePolicy:
    """Which slots to ask for and how to answer (see the module docstring).

    ``required`` None: every informable slot of the tracker, in the schema's order (:meth:`for_slots`).
    """

    required: tuple[str, ...] | None = None
    description: str | None = None
    slot_names: dict[str, str] = field(default_factory=dict)
    ask: dict[str, Template] = field(default_factory=dict)
    confirm: Template | None = None
    dontcare: dict[str, str] = field(default_factory=dict)
    answer: Template = DEFAULT_ANSWER

    @classmethod
    def load(cls, name_or_path: str | Path | None) -> StatePolicy:
        """A shipped policy by name (``woz``), a YAML file, or None for the default policy."""
        if name_or_path is None:
            return cls()
        raw, where = read_policy_file(name_or_path, SHIPPED_TRACKER_POLICIES)
        return cls.from_dict(raw, where=where)

    @classmethod
    def from_dict(cls, raw: Mapping, where: str = "policy") -> StatePolicy:
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where}: expected a mapping with keys {', '.join(_KEYS)}")
        unknown = sorted(set(raw) - set(_KEYS))
        if unknown:
            raise ConfigError(f"{where}: unknown keys {unknown} (a tracker policy has {', '.join(_KEYS)})")
        required = raw.get("required")
        if required is not None and (
            not isinstance(required, list) or not all(isinstance(s, str) for s in required)
        ):
            raise ConfigError(f"{where}: required must be a list of slot names")
        for key in ("slot_names", "ask", "dontcare"):
            if not isinstance(raw.get(key) or {}, Mapping):
                raise ConfigError(f"{where}: {key} must map slot names to text")
        return cls(
            required=tuple(required) if required is not None else None,
            description=raw.get("description"),
            slot_names={str(k): str(v) for k, v in (raw.get("slot_names") or {}).items()},
            ask={str(k): _template(v, f"{where}: ask {k!r}") for k, v in (raw.get("ask") or {}).items()},
            confirm=_template(raw["confirm"], f"{where}: confirm") if raw.get("confirm") else None,
            dontcare={str(k): str(v) for k, v in (raw.get("dontcare") or {}).items()},
            answer=_template(raw["answer"], f"{where}: answer") if raw.get("answer") else DEFAULT_ANSWER,
        )

    def for_slots(self, slots: Sequence[str]) -> StatePolicy:
        """This policy for a tracker with these informable slots: ``required`` defaults to all of them; a
        required slot the tracker does not know is a :class:`ConfigError`."""
        unknown = [s for s in self.required or () if s not in slots]
        if unknown:
            raise ConfigError(
                f"the dialogue policy requires slots this tracker does not track: {', '.join(unknown)} "
                f"(its slots: {', '.join(slots)})"
            )
        if self.required is not None:
            return self
        return StatePolicy(
            tuple(slots),
            self.description,
            self.slot_names,
            self.ask,
            self.confirm,
            self.dontcare,
            self.answer,
        )

    def slot_name(self, slot: str) -> str:
        return self.slot_names.get(slot, slot)

    def missing(self, state: Mapping[str, str]) -> list[str]:
        """The required slots not set yet, in asking order (``dontcare`` is set)."""
        return [s for s in self.required or () if s not in state]

    def readable(self, state: Mapping[str, str]) -> dict[str, str]:
        """The state as templates read it: ``dontcare`` becomes ``any <slot name>`` (or the policy's text)."""
        return {
            s: (self.dontcare.get(s, f"any {self.slot_name(s)}") if v == DONTCARE else v)
            for s, v in state.items()
        }

    def respond(self, state: Mapping[str, str], requests: Sequence[str] = ()) -> str:
        """The bot's reply after a turn: a sentence for the requests, then a question or a confirmation."""
        parts = []
        if requests:
            names = join_values([self.slot_name(r) for r in requests])
            parts.append(render(self.answer, {"requests": names}) or DEFAULT_ANSWER.format(requests=names))
        frame = self.readable(state)
        missing = self.missing(state)
        if missing:
            slot = missing[0]
            question = render(self.ask[slot], frame) if slot in self.ask else None
            parts.append(question or f"What {self.slot_name(slot)} would you like?")
        else:
            confirmation = render(self.confirm, frame) if self.confirm else None
            if confirmation is None:
                what = self.description or "that"
                details = ", ".join(
                    f"{self.slot_name(s)} {frame[s]}" for s in (self.required or ()) if s in frame
                )
                confirmation = f"OK: {what} with {details}." if details else f"OK: {what}."
            parts.append(confirmation)
        return " ".join(parts)
