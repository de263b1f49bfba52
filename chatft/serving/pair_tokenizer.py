"""PairTokenizer: the part of a Hugging Face fast tokenizer that the learned tracker's input needs, without
transformers.

:func:`chatft.dialogue.turn_input.encode_turns` tokenizes ``(user, previous state + system)`` text pairs with
the system's words cut first (``truncation="only_second"``), padded to the longest, with character offsets and
each token's sequence. The PyTorch tracker passes it the encoder's ``transformers`` tokenizer; the ONNX tracker
passes this class, which reads the same ``tokenizer.json`` with the ``tokenizers`` library (the Rust tokenizer
both wrap): same ids, offsets and truncation, so both backends feed the network the same tokens (a test checks
it token by token).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = ["PairTokenizer"]


class _PairBatch:
    """``tokenizer(firsts, seconds, ...)``'s result as :func:`encode_turns` reads it: ``enc[key]`` lists and
    ``enc.sequence_ids(b)``."""

    def __init__(self, encodings: list) -> None:
        self._enc = encodings
        self._columns = {
            "input_ids": [e.ids for e in encodings],
            "attention_mask": [e.attention_mask for e in encodings],
            "token_type_ids": [e.type_ids for e in encodings],
            "offset_mapping": [e.offsets for e in encodings],
        }

    def __getitem__(self, key: str) -> list:
        return self._columns[key]

    def sequence_ids(self, b: int) -> list[int | None]:
        return self._enc[b].sequence_ids


class PairTokenizer:
    """A ``tokenizers.Tokenizer`` read from ``tokenizer.json``, called like a fast tokenizer on text pairs.

    Args:
        path: the ``tokenizer.json`` an export folder holds.
        sep_token: the separator token written between the previous state and the system's words.
        pad_token: the padding token (and ``pad_token_id``, its id).
    """

    def __init__(self, path: str | Path, sep_token: str, pad_token: str, pad_token_id: int) -> None:
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_file(str(path))
        self.sep_token = sep_token
        self.pad_token = pad_token
        self.pad_token_id = pad_token_id
        self._tok.enable_padding(pad_id=pad_token_id, pad_token=pad_token)
        self._max_length: int | None = None

    def __call__(
        self,
        firsts: Sequence[str],
        seconds: Sequence[str],
        truncation: str = "only_second",
        max_length: int | None = None,
        padding: bool = True,
        return_offsets_mapping: bool = True,
        return_token_type_ids: bool = True,
    ) -> _PairBatch:
        if truncation != "only_second" or not padding:
            raise ValueError("PairTokenizer only truncates the second text and pads to the longest")
        if max_length != self._max_length:
            if max_length:
                self._tok.enable_truncation(max_length, strategy="only_second")
            else:
                self._tok.no_truncation()
            self._max_length = max_length
        return _PairBatch(self._tok.encode_batch(list(zip(firsts, seconds, strict=True))))
