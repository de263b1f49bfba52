"""Training labels of the learned tracker, derived from two consecutive states and the turn's texts.

For each informable slot the tracker decides one of :data:`GATES`; the label of a turn comes from the gold
state before it (``previous``) and after it (``turn.state``):

============  ==============================================================================================
``carry``     the value did not change (also: the slot stays unset)
``dontcare``  the new value is :data:`~chatft.dialogue.dialogues.DONTCARE` ("any part of town")
``user``      a new value, said in the user's words (its last mention: "not chinese, make it thai")
``system``    a new value the user did not say but the system did: a confirmed offer ("Do you want Italian
              food?" "Yes.")
``remove``    the slot was set and is not any more
============  ==============================================================================================

A new value found in neither text (:func:`find_value` tries exact, loose and partial matches) keeps the gate
``user`` with no span (``span is None``): the gate still learns that the slot changed, the span loss skips it,
and :class:`LabelStats` counts it. Spans are character offsets into the user's or the system's text.

Pure functions, no torch: ``data stats`` can report the same counts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from chatft.dialogue.dialogues import DONTCARE, Dialogue
from chatft.dialogue.values import find_value, most_common, words_of

__all__ = ["GATES", "SlotLabel", "LabelStats", "slot_label", "turn_labels", "dialogue_labels"]

#: The per-slot decisions, in the order of the model's gate logits.
GATES = ("carry", "dontcare", "user", "system", "remove")


@dataclass(frozen=True)
class SlotLabel:
    """One slot's label on one turn: the gate and, for ``user``/``system``, the value's character span."""

    gate: str
    span: tuple[int, int] | None = None
    #: How the span was found: ``exact``, ``loose``, ``part``, or ``""``.
    how: str = ""


@dataclass
class LabelStats:
    """Counts over derived labels: gates, how spans were found, values found nowhere, and the variants said
    for values (``(text, value)`` pairs where the text is not the value: the normalisation map)."""

    gates: Counter = field(default_factory=Counter)
    found: Counter = field(default_factory=Counter)
    not_found: Counter = field(default_factory=Counter)
    variant_pairs: list[tuple[str, str, str]] = field(default_factory=list)

    def variants(self) -> dict[str, dict[str, str]]:
        """slot -> {text said: value}, the most frequent value per text (what decoding maps spans through)."""
        slots = sorted({s for s, _, _ in self.variant_pairs})
        return {s: most_common((t, v) for s2, t, v in self.variant_pairs if s2 == s) for s in slots}


def slot_label(previous: str | None, new: str | None, user: str, system: str) -> SlotLabel:
    """The label of one slot going from ``previous`` to ``new`` (None: unset) on a turn with these texts."""
    if new == previous:
        return SlotLabel("carry")
    if new is None:
        return SlotLabel("remove")
    if new == DONTCARE:
        return SlotLabel("dontcare")
    for gate, text in (("user", user), ("system", system)):
        found = find_value(new, words_of(text))
        if found is not None:
            return SlotLabel(gate, (found[0], found[1]), found[2])
    return SlotLabel("user")


def turn_labels(
    previous: Mapping[str, str], state: Mapping[str, str], user: str, system: str, slots: Sequence[str]
) -> dict[str, SlotLabel]:
    """Every slot's label on one turn (slots of ``slots`` only, in that order)."""
    return {s: slot_label(previous.get(s), state.get(s), user, system) for s in slots}


def dialogue_labels(
    dialogues: Sequence[Dialogue], slots: Sequence[str], stats: LabelStats | None = None
) -> list[list[dict[str, SlotLabel]]]:
    """Labels of every turn of every dialogue (gold previous state: the state after the turn before);
    ``stats`` collects the counts and the variants said."""
    out = []
    for dialogue in dialogues:
        previous: Mapping[str, str] = {}
        labels = []
        for turn in dialogue.turns:
            per_slot = turn_labels(previous, turn.state, turn.user, turn.system, slots)
            if stats is not None:
                for slot, label in per_slot.items():
                    stats.gates[label.gate] += 1
                    if label.gate in ("user", "system"):
                        if label.span is None:
                            stats.not_found[slot] += 1
                            continue
                        stats.found[label.how] += 1
                        text = turn.user if label.gate == "user" else turn.system
                        said = " ".join(w for w, _, _ in words_of(text[label.span[0] : label.span[1]]))
                        if said != turn.state[slot]:
                            stats.variant_pairs.append((slot, said, turn.state[slot]))
            labels.append(per_slot)
            previous = turn.state
        out.append(labels)
    return out
