"""Label vocabularies: intent names and BIO slot tags <-> integer ids.

Vocabularies are built from the *training* split only. Index 0 is always ``<unk>``: an intent or tag that
appears only in dev/test maps there, and the model is never allowed to predict it, so such gold labels
always count as errors instead of being silently dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from chatft.core.tags import OUTSIDE, UNK, UNK_INDEX

__all__ = ["UNK", "LabelVocab", "known_count", "slot_tag_vocab"]


@dataclass(frozen=True)
class LabelVocab:
    """An ordered list of labels with ``<unk>`` at index 0."""

    labels: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.labels or self.labels[UNK_INDEX] != UNK:
            raise ValueError(f"a LabelVocab must start with {UNK!r}, got {list(self.labels[:3])}")
        if len(set(self.labels)) != len(self.labels):
            raise ValueError("a LabelVocab must not contain duplicate labels")
        object.__setattr__(self, "_index", {label: i for i, label in enumerate(self.labels)})

    @classmethod
    def build(cls, observed: Iterable[str], first: Sequence[str] = ()) -> LabelVocab:
        """Vocabulary of ``<unk>``, then ``first`` (e.g. ``O``), then the other observed labels sorted."""
        seen = set(observed) - {UNK} - set(first)
        return cls((UNK, *first, *sorted(seen)))

    @classmethod
    def from_list(cls, labels: Sequence[str]) -> LabelVocab:
        """Rebuild from a saved list (e.g. from ``hparams.yaml``); adds ``<unk>`` if it is missing."""
        labels = list(labels)
        return cls(tuple(labels) if labels and labels[0] == UNK else (UNK, *labels))

    def __len__(self) -> int:
        return len(self.labels)

    def __contains__(self, label: str) -> bool:
        return label in self._index  # type: ignore[attr-defined]

    def id(self, label: str) -> int:
        """The id of ``label``, or 0 (``<unk>``) for a label not seen in training."""
        return self._index.get(label, 0)  # type: ignore[attr-defined]

    def ids(self, labels: Iterable[str]) -> list[int]:
        return [self.id(label) for label in labels]

    def name(self, index: int) -> str:
        return self.labels[index]

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(list(self.labels), indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> LabelVocab:
        return cls.from_list(json.loads(Path(path).read_text(encoding="utf-8")))


def known_count(labels: Iterable[str]) -> int:
    """Labels in ``labels`` other than ``<unk>``: the placeholder every vocabulary starts with is not an intent
    or a tag, so counts shown to users and per-intent averages leave it out."""
    return sum(label != UNK for label in labels)


def slot_tag_vocab(tags: Iterable[str]) -> LabelVocab:
    """Tag vocabulary with ``O`` first after ``<unk>``, so id 1 is always the outside tag."""
    return LabelVocab.build(tags, first=(OUTSIDE,))
