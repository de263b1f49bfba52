"""Characters the tokenizer cannot read: the ``[UNK]`` share of a text collection, and which units to add.

An English WordPiece vocabulary (the default all-MiniLM-L6-v2) holds only a few hundred CJK characters: most
of a Chinese utterance becomes ``[UNK]``, and singer or song names are exactly those characters. The fix
(:func:`chatft.model.vocabulary.extend_tokenizer`) adds such characters to the tokenizer as tokens of their
own, with new embedding rows that training learns. This module decides which, torch-free, on the tokenizer's
Rust backend (``tokenizers.Tokenizer``: the Hugging Face fast tokenizer's ``backend_tokenizer``, or the one
an ONNX export ships), so ``data stats`` can report the same shares without a model.

A *unit* is one character that the tokenizer maps to ``[UNK]`` when it stands alone; characters inside an
``[UNK]`` token that the vocabulary knows on their own (the ``abc`` of ``abc✓``) are never units.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain

#: A unit needs at least this many occurrences in the training words to be added (once is too few to learn
#: an embedding from, and it stays as well off as ``[UNK]``).
MIN_COUNT = 2
#: Units are added only when at least this share of the training characters is ``[UNK]``: a set written in a
#: script the vocabulary lacks is far above it (CAIS: 59.5 %), English data with a few symbols the vocabulary
#: lacks (``$`` for the tests' tiny tokenizer: 1.3 %) is below it and keeps its vocabulary and numbers exactly.
MIN_SHARE = 0.05
#: Utterances per tokenizer call in :func:`unk_share`.
_CHUNK = 10_000


@dataclass(frozen=True)
class UnkShare:
    """How many of the (non-space) characters of some words fall inside ``[UNK]`` tokens, and which."""

    unknown: int
    total: int
    chars: Counter

    @property
    def share(self) -> float:
        return self.unknown / self.total if self.total else 0.0


def unk_id_of(backend) -> int | None:
    """The id of the backend tokenizer's unknown token (None when its model has none)."""
    token = getattr(backend.model, "unk_token", None)
    for name in (token, "[UNK]", "<unk>"):
        if name is not None and backend.token_to_id(name) is not None:
            return backend.token_to_id(name)
    return None


def _plain(backend):
    """A copy of ``backend`` without padding or truncation (a ``tokenizer.json`` may set both)."""
    plain = type(backend).from_str(backend.to_str())
    plain.no_padding()
    plain.no_truncation()
    return plain


def unk_share(backend, utterances: Iterable[Sequence[str]], unk_id: int | None = None) -> UnkShare:
    """The ``[UNK]`` share of the characters of pre-split ``utterances`` (spaces not counted).

    ``fit`` runs this over every training utterance, so the work per utterance is kept in C: the characters
    are counted on one joined string (``str.split`` drops exactly the characters ``str.isspace`` calls
    space), the tokenizer runs on chunks of :data:`_CHUNK` utterances, and only utterances with an
    ``[UNK]`` token are looked at token by token.
    """
    unk_id = unk_id_of(backend) if unk_id is None else unk_id
    utterances = [list(u) for u in utterances if len(u)]
    total = len("".join("".join(chain.from_iterable(utterances)).split()))
    chars: Counter = Counter()
    if unk_id is None or not utterances:
        return UnkShare(0, total, chars)
    for begin in range(0, len(utterances), _CHUNK):
        chunk = utterances[begin : begin + _CHUNK]
        encodings = backend.encode_batch(chunk, is_pretokenized=True, add_special_tokens=False)
        for words, enc in zip(chunk, encodings, strict=True):
            if unk_id not in enc.ids:
                continue
            for tid, wid, (start, end) in zip(enc.ids, enc.word_ids, enc.offsets, strict=True):
                if tid == unk_id and wid is not None:
                    chars.update(c for c in words[wid][start:end] if not c.isspace())
    return UnkShare(sum(chars.values()), total, chars)


def choose_units(
    backend, share: UnkShare, min_count: int = MIN_COUNT, min_share: float = MIN_SHARE
) -> list[str]:
    """The characters to add: seen at least ``min_count`` times inside ``[UNK]`` tokens and ``[UNK]`` on their
    own, most frequent first (ties by code point), when ``share`` reaches ``min_share``; else none."""
    if share.total == 0 or share.share < min_share:
        return []
    unk_id = unk_id_of(backend)
    frequent = sorted(
        (c for c, n in share.chars.items() if n >= min_count), key=lambda c: (-share.chars[c], c)
    )
    alone = _plain(backend).encode_batch(
        [[c] for c in frequent], is_pretokenized=True, add_special_tokens=False
    )
    return [c for c, enc in zip(frequent, alone, strict=True) if list(enc.ids) == [unk_id]]


def with_units(backend, units: Sequence[str]):
    """A copy of ``backend`` with ``units`` added as tokens the way ``fit`` adds them (matched on the raw text)."""
    from tokenizers import AddedToken

    extended = _plain(backend)
    extended.add_tokens([AddedToken(u, normalized=False, single_word=False) for u in units])
    return extended


def describe(added: Sequence[str], before: UnkShare, after: UnkShare) -> str:
    """The one line ``fit`` prints when units were added."""
    return (
        f"vocabulary: {len(added)} units added for characters the tokenizer maps to [UNK] "
        f"(first: {''.join(added[:10])}); [UNK] share of training characters "
        f"{100 * before.share:.1f}% -> {100 * after.share:.1f}% (--data.extend_vocab false: off)"
    )
