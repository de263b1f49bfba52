"""Finding a slot value in an utterance, and mapping a span of text back to a slot's value list.

People rarely say a value the way the schema spells it: "moderately priced" (``moderate``), "the center of
town" (``centre``), "Asian food" (``asian oriental``). The tracker extracts spans, so the same loose match
serves both directions:

- training labels (:mod:`chatft.dialogue.state_labels`) look for the gold value in the user's and the system's
  words: the exact words first, then words that match loosely (:func:`words_match`: equal, one a prefix of the
  other, or one letter edit apart, for words of 5+ letters), then, for a value of several words, one of its
  content words ("asian" for ``asian oriental``);
- decoding (:func:`normalise_value`) maps a predicted span to the value list: exact, then the variants seen
  when the training labels were derived (``{"moderately": "moderate"}``), then the same loose match against
  the list; a span that matches nothing is kept as said (open values: names, times).

Pure functions, no torch.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

__all__ = ["Word", "words_of", "words_match", "find_value", "normalise_value"]

_WORD = re.compile(r"\w+(?:'\w+)?")
#: Words of a multi-word value never matched on their own ("the" of "the golden curry").
_STOP = frozenset(
    "a an and the of in on at to for food restaurant restaurants house bar cafe kitchen place town part".split()
)
#: A loose match needs words at least this long (shorter ones only match exactly).
MIN_LOOSE = 5

Word = tuple[str, int, int]  # (lower-cased word, start char, end char)


def words_of(text: str) -> list[Word]:
    """The words of ``text`` (letters, digits, inner apostrophes), lower-cased, with character offsets."""
    return [(m.group().lower(), m.start(), m.end()) for m in _WORD.finditer(text)]


def _one_edit(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` are one substitution, insertion, deletion or adjacent swap apart."""
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diff) == 1:
            return True
        return (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and a[diff[0]] == b[diff[1]]
            and a[diff[1]] == b[diff[0]]
        )
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))


def words_match(a: str, b: str) -> bool:
    """Equal words, or words of 5+ letters where one is a prefix of the other (``cheap``/``cheaply``) or
    one letter edit apart (``centre``/``center``)."""
    if a == b:
        return True
    if min(len(a), len(b)) < MIN_LOOSE:
        return False
    return a.startswith(b) or b.startswith(a) or _one_edit(a, b)


def find_value(value: str, words: Sequence[Word]) -> tuple[int, int, str] | None:
    """Where ``value`` is said in ``words``: ``(start char, end char, how)`` of its last mention, ``how`` being
    ``"exact"``, ``"loose"`` (every word matches loosely) or ``"part"`` (one content word of a multi-word value).
    None when it is not there."""
    target = value.lower().split()
    if not target or not words:
        return None
    n = len(target)
    for how in ("exact", "loose"):
        same = (lambda a, b: a == b) if how == "exact" else words_match
        for i in range(len(words) - n, -1, -1):
            if all(same(words[i + k][0], target[k]) for k in range(n)):
                return words[i][1], words[i + n - 1][2], how
    if n > 1:
        content = [t for t in target if t not in _STOP and len(t) >= 3]
        for i in range(len(words) - 1, -1, -1):
            if any(words_match(words[i][0], t) for t in content):
                return words[i][1], words[i][2], "part"
    return None


def normalise_value(
    text: str, values: Sequence[str] | None, variants: Mapping[str, str] | None = None
) -> str:
    """The value a span of text stands for: itself when ``values`` is None (an open slot) or when it is one
    of them; else a learned variant (``variants``: span text -> value), else the one value it matches
    loosely (:func:`find_value` over the span's words, the longest value first); else the text as said."""
    said = " ".join(w for w, _, _ in words_of(text))
    if values is None or not said:
        return said
    if said in values:
        return said
    if variants and said in variants:
        return variants[said]
    words = words_of(said)
    for how in ("exact", "loose", "part"):
        for value in sorted(values, key=lambda v: (-len(v.split()), v)):
            found = find_value(value, words)
            if found is not None and found[2] == how:
                return value
    return said


def most_common(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """``{text: value}`` keeping, for each text, the value it stood for most often (ties: alphabetical)."""
    counts: dict[str, dict[str, int]] = {}
    for text, value in pairs:
        counts.setdefault(text, {}).setdefault(value, 0)
        counts[text][value] += 1
    return {t: min(c, key=lambda v: (-c[v], v)) for t, c in sorted(counts.items())}
