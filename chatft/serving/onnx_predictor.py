"""OnnxPredictor: serve an exported model with onnxruntime, numpy and ``tokenizers`` only.

    from chatft import OnnxPredictor
    predictor = OnnxPredictor("exports/atis")          # a folder written by `python -m chatft export`
    predictor("book a flight from boston to denver tomorrow").slots
    predictor.batch(["list flights to denver", "what is fare code h"])

Same inputs, same words, same decoding and the same :class:`~chatft.core.prediction.Prediction` as
:class:`~chatft.serving.predictor.Predictor` (both are :class:`~chatft.serving.base.BasePredictor`; only the
forward pass differs); importing this module imports neither Lightning nor torch nor
transformers (the tokenizer is read from ``tokenizer.json`` with the ``tokenizers`` library).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from chatft.core.decoding import Decoder, SlotDecoder
from chatft.core.entity_resources import EntityResources
from chatft.core.oos import OOSState
from chatft.serving.base import BasePredictor

__all__ = ["OnnxPredictor"]


class _Encoded:
    def __init__(self, encodings: list, single: bool) -> None:
        self._enc = encodings
        self._single = single
        self._ids: list[list[int]] | None = None

    def __getitem__(self, key: str):
        if key != "input_ids":
            raise KeyError(key)
        # Built once: tokenize_examples reads enc["input_ids"][i] per utterance, and rebuilding the list each
        # time made a batch quadratic (0.3 s of a 1.3 s OnnxPredictor.batch over the 893 ATIS test utterances).
        if self._ids is None:
            self._ids = [e.ids for e in self._enc]
        return self._ids[0] if self._single else self._ids

    def word_ids(self, i: int = 0) -> list[int | None]:
        return self._enc[i].word_ids


class WordTokenizer:
    """The part of the Hugging Face fast-tokenizer API that :func:`chatft.core.features.tokenize_examples` uses,
    on a bare ``tokenizers.Tokenizer`` (same Rust tokenizer, same ids, same word alignment)."""

    def __init__(self, path: str | Path, unk_token: str, pad_token_id: int) -> None:
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_file(str(path))
        self._tok.no_padding()
        self.unk_token = unk_token
        self.pad_token_id = pad_token_id

    def tokenize(self, text: str) -> list[str]:
        return self._tok.encode(text, add_special_tokens=False).tokens

    def __call__(self, words, is_split_into_words: bool = True, truncation: bool = True, max_length=None):
        if not is_split_into_words:
            raise ValueError("WordTokenizer only takes pre-split words")
        single = bool(words) and isinstance(words[0], str)
        batch = [words] if single else words
        if truncation and max_length:
            self._tok.enable_truncation(max_length)
        else:
            self._tok.no_truncation()
        encodings = self._tok.encode_batch([list(w) for w in batch], is_pretokenized=True)
        return _Encoded(encodings, single)


class OnnxPredictor(BasePredictor):
    """An exported model (see :mod:`chatft.serving.export`) run with onnxruntime.

    Args:
        folder: The export folder (with ``manifest.json``).
        providers: onnxruntime execution providers (default: CPU).
        top_k: How many intents to list in ``intents_top_k``.
        max_length: Max sub-word tokens per utterance (default: the one in the manifest, i.e. training's).
        threads: onnxruntime intra-op threads (default: onnxruntime's choice).
    """

    def __init__(
        self,
        folder: str | Path,
        providers: Sequence[str] | None = None,
        top_k: int = 3,
        max_length: int | None = None,
        threads: int | None = None,
    ) -> None:
        import onnxruntime as ort

        self.folder = Path(folder).expanduser()
        manifest_path = self.folder / "manifest.json"
        if not manifest_path.is_file():
            raise FileNotFoundError(
                f"{self.folder}: no manifest.json (export a checkpoint with: python -m chatft export)"
            )
        self.manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        m = self.manifest
        intent_labels = tuple(json.loads((self.folder / m["intent_labels"]).read_text(encoding="utf-8")))
        slot_labels = (
            tuple(json.loads((self.folder / m["slot_labels"]).read_text(encoding="utf-8")))
            if m.get("slot_labels")
            else ()
        )
        decoding = json.loads((self.folder / m["decoding"]).read_text(encoding="utf-8"))
        slots = SlotDecoder.from_dict(decoding) if decoding.get("mode") != "none" else None
        # Temperature and out-of-scope decision (oos.json); None for exports without one.
        oos = (
            OOSState.from_dict(json.loads((self.folder / m["oos"]).read_text(encoding="utf-8")))
            if m.get("oos")
            else None
        )
        # Synonyms, regexes and lookup tables (entities.json); None for exports without them.
        entities = EntityResources.load(self.folder) if m.get("entities") else None
        super().__init__(
            WordTokenizer(self.folder / m["tokenizer"], m["unk_token"], m["pad_token_id"]),
            Decoder(intent_labels, slot_labels, slots, oos),
            int(max_length or m["max_length"]),
            m["pad_token_id"],
            top_k,
            entities,
        )
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(
            str(self.folder / m["model"]), options, providers=list(providers or ["CPUExecutionProvider"])
        )
        self._inputs = [i.name for i in self.session.get_inputs()]
        self._outputs = [o.name for o in self.session.get_outputs()]

    def logits(
        self, arrays: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """The graph's outputs by name: ``intent_features`` is absent from exports made before calibration."""
        run = self.session.run(None, {k: arrays[k] for k in self._inputs})
        outputs = dict(zip(self._outputs, run, strict=True))
        return outputs["intent_logits"], outputs.get("slot_logits"), outputs.get("intent_features")
