"""Units the encoder's vocabulary lacks, added as tokens with embedding rows of their own.

Which units: :func:`chatft.core.units.choose_units` (characters the tokenizer maps to ``[UNK]``, frequent in
the training words). Here: the tokenizer learns them as added tokens (matched on the raw text, before
lowercasing or accent stripping, so ``吴`` is one token wherever it appears), and the encoder's word-embedding
matrix grows by one row per unit, initialised by :data:`INITS` and trained with the rest. The tokenizer's
files and the encoder's config (with its new ``vocab_size``) then travel in every checkpoint and export
(:mod:`chatft.model.assets`), so prediction reads the same units with the same ids.
"""

from __future__ import annotations

from collections.abc import Sequence

from chatft.core.errors import ConfigError

#: How a new embedding row starts: ``mean``: the mean of the pretrained rows (a "some word" vector);
#: ``unk``: a copy of the ``[UNK]`` row (what the model read for these characters before).
INITS = ("mean", "unk")


def extend_tokenizer(tokenizer, units: Sequence[str]):
    """Add ``units`` to the fast ``tokenizer`` (in place; returns it). Already known units are skipped."""
    from tokenizers import AddedToken

    if units:
        tokenizer.add_tokens([AddedToken(u, normalized=False, single_word=False) for u in units])
    return tokenizer


def unit_ids(tokenizer, units: Sequence[str]) -> list[int]:
    """The ids ``tokenizer`` gives ``units`` (after :func:`extend_tokenizer`)."""
    return [tokenizer.convert_tokens_to_ids(u) for u in units]


def grow_embeddings(encoder, ids: Sequence[int], init: str = "mean", unk_id: int | None = None) -> None:
    """Make room for the rows ``ids`` in ``encoder``'s word embeddings and initialise them by ``init``.

    The matrix grows to ``max(ids) + 1`` rows (never shrinks); ``config.vocab_size`` follows, so the config a
    checkpoint embeds rebuilds the same shape.
    """
    import torch

    if init not in INITS:
        raise ConfigError(f"--model.added_token_init must be one of {', '.join(INITS)} (got {init!r})")
    if not ids:
        return
    old = encoder.get_input_embeddings().weight
    base = old.shape[0]
    size = max(base, max(ids) + 1)
    if size > base:
        encoder.resize_token_embeddings(size, mean_resizing=False)
    weight = encoder.get_input_embeddings().weight
    with torch.no_grad():
        if init == "unk":
            if unk_id is None:
                raise ConfigError("--model.added_token_init unk: the tokenizer has no unknown token")
            row = weight[unk_id].clone()
        else:
            row = weight[:base].mean(dim=0)
        weight[list(ids)] = row
