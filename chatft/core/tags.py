"""The BIO tag rules, in one place (no torch): parsing, span chunking, allowed transitions, ``<unk>``."""

from __future__ import annotations

from collections.abc import Sequence

#: Finite score given to forbidden starts/transitions in constrained decoding (finite, so a path that
#: must break a rule, e.g. under truncation, still decodes instead of producing NaNs).
FORBIDDEN_SCORE = -1e4


def bio_chunks(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """Spans ``(type, start_word, end_word_exclusive)`` of BIO tags, chunked as conlleval/seqeval do.

    ``B-x`` starts a span; ``I-x`` continues a span of type ``x`` and starts one after ``O`` or another type;
    any other tag (``O``, ``<unk>``) ends the current span.
    """
    chunks: list[tuple[str, int, int]] = []
    cur_type, begin = None, 0
    for i, tag in enumerate(tags):
        prefix, typ = (tag[0], tag[2:]) if tag[:2] in ("B-", "I-") else ("O", None)
        if cur_type is not None and (prefix != "I" or typ != cur_type):
            chunks.append((cur_type, begin, i))
            cur_type = None
        if prefix in ("B", "I") and cur_type is None:
            cur_type, begin = typ, i
    if cur_type is not None:
        chunks.append((cur_type, begin, len(tags)))
    return chunks
