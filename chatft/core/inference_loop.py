"""The loop every predictor runs, without torch: words -> features -> padded batches -> logits -> Decoded.

:class:`chatft.serving.base.BasePredictor` (both predictors) and the data audit
(:func:`chatft.training.audit.held_out_probabilities`) run this one function, with the model's forward pass
given as ``logits``, so the audit's probabilities are the predictors' to the bit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from chatft.core.decoding import Decoded, Decoder
from chatft.core.errors import ConfigError
from chatft.core.features import pad_batch, tokenize_examples

__all__ = ["MODEL_INPUTS", "Logits", "decode_words"]

#: The arrays a ``logits`` function receives (all ``int64``, ``[batch, tokens]`` or ``[batch, words]``).
MODEL_INPUTS = ("input_ids", "attention_mask", "word_index")
#: A padded batch of :data:`MODEL_INPUTS` -> intent logits ``[B, I]``, word slot logits ``[B, W, T]`` (None
#: without slots) and pooled features ``[B, H]`` (None where the backend has none).
Logits = Callable[[dict[str, np.ndarray]], tuple[np.ndarray, np.ndarray | None, np.ndarray | None]]


def decode_words(
    words: Sequence[Sequence[str]],
    tokenizer,
    logits: Logits,
    decoder: Decoder,
    max_length: int,
    pad_id: int,
    batch_size: int = 32,
    word_probabilities: bool = False,
) -> list[Decoded]:
    """Decode utterances already split into words, in input order, in batches of similar length (less padding).

    Tokenization and word alignment are training's (:func:`chatft.core.features.tokenize_examples`);
    ``word_probabilities``: also give every kept word's probabilities over all tags
    (:meth:`chatft.core.decoding.Decoder.decode`), as the data audit needs. ``batch_size`` below 1 is a
    :class:`~chatft.core.errors.ConfigError` (0 made ``range`` raise, a negative size decoded nothing).
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1 (utterances per forward pass), got {batch_size}")
    features = tokenize_examples(tokenizer, words, max_length)
    results: list[Decoded | None] = [None] * len(features)
    order = sorted(range(len(features)), key=lambda k: len(features[k].input_ids))
    for lo in range(0, len(order), batch_size):
        chunk = [features[k] for k in order[lo : lo + batch_size]]
        arrays = pad_batch(chunk, pad_id)
        intent_logits, slot_logits, pooled = logits({k: arrays[k] for k in MODEL_INPUTS})
        decoded = decoder.decode(
            intent_logits,
            slot_logits,
            [len(f.word_starts) for f in chunk],
            [f.n_words for f in chunk],
            features=pooled,
            word_probabilities=word_probabilities,
        )
        for f, d in zip(chunk, decoded, strict=True):
            results[f.index] = d
    return results  # type: ignore[return-value]
