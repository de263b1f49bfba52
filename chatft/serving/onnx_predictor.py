"""OnnxPredictor: serve an exported model with onnxruntime, numpy and ``tokenizers`` only.

    from chatft import OnnxPredictor
    predictor = OnnxPredictor("exports/atis")          # a folder written by `python -m chatft export`
    predictor("book a flight from boston to denver tomorrow").slots
    predictor.batch(["list flights to denver", "what is fare code h"])

Same inputs, same words, same decoding and the same :class:`~chatft.core.decoding.Prediction` as
:class:`~chatft.serving.predictor.Predictor`; importing this module imports neither Lightning nor torch nor
transformers (the tokenizer is read from ``tokenizer.json`` with the ``tokenizers`` library).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from chatft.core.decoding import SlotDecoder, intent_probabilities
from chatft.core.features import Features, tokenize_examples
from chatft.core.oos import OOSState
from chatft.core.prediction import Prediction, build_prediction
from chatft.core.text import split_words

__all__ = ["OnnxPredictor"]


class _Encoded:
    def __init__(self, encodings: list, single: bool) -> None:
        self._enc = encodings
        self._single = single

    def __getitem__(self, key: str):
        if key != "input_ids":
            raise KeyError(key)
        ids = [e.ids for e in self._enc]
        return ids[0] if self._single else ids

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


def _pad(features: Sequence[Features], pad_id: int) -> dict[str, np.ndarray]:
    """Dynamic padding in numpy (what :func:`chatft.core.features.collate` does in torch)."""
    n = len(features)
    seq = max(len(f.input_ids) for f in features)
    words = max(1, max(len(f.word_starts) for f in features))
    input_ids = np.full((n, seq), pad_id, dtype=np.int64)
    attention_mask = np.zeros((n, seq), dtype=np.int64)
    word_index = np.zeros((n, words), dtype=np.int64)
    for b, f in enumerate(features):
        input_ids[b, : len(f.input_ids)] = f.input_ids
        attention_mask[b, : len(f.input_ids)] = 1
        word_index[b, : len(f.word_starts)] = f.word_starts
    return {"input_ids": input_ids, "attention_mask": attention_mask, "word_index": word_index}


class OnnxPredictor:
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
        self.intent_labels = tuple(json.loads((self.folder / m["intent_labels"]).read_text(encoding="utf-8")))
        self.slot_labels = (
            tuple(json.loads((self.folder / m["slot_labels"]).read_text(encoding="utf-8")))
            if m.get("slot_labels")
            else ()
        )
        decoding = json.loads((self.folder / m["decoding"]).read_text(encoding="utf-8"))
        self.decoder = SlotDecoder.from_dict(decoding) if decoding.get("mode") != "none" else None
        self.tokenizer = WordTokenizer(self.folder / m["tokenizer"], m["unk_token"], m["pad_token_id"])
        self.max_length = int(max_length or m["max_length"])
        self.top_k = top_k
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(
            str(self.folder / m["model"]), options, providers=list(providers or ["CPUExecutionProvider"])
        )
        self._inputs = [i.name for i in self.session.get_inputs()]
        self._outputs = [o.name for o in self.session.get_outputs()]
        #: Temperature and out-of-scope decision (``oos.json``); None for exports without one.
        self.oos = (
            OOSState.from_dict(json.loads((self.folder / m["oos"]).read_text(encoding="utf-8")))
            if m.get("oos")
            else None
        )

    def __call__(self, text: str) -> Prediction:
        return self.batch([text])[0]

    def batch(self, texts: Sequence[str], batch_size: int = 32) -> list[Prediction]:
        """Predict many utterances; batches group similar lengths (less padding), output keeps input order."""
        if isinstance(texts, str):
            raise TypeError(
                "OnnxPredictor.batch takes a list of texts; call the predictor itself for one text"
            )
        spans = [split_words(t) for t in texts]
        words = [[w for w, _, _ in s] for s in spans]
        features = tokenize_examples(
            self.tokenizer, words, [None] * len(texts), [0] * len(texts), self.max_length
        )
        order = sorted(range(len(features)), key=lambda i: len(features[i].input_ids))
        results: list[Prediction | None] = [None] * len(texts)
        for lo in range(0, len(order), batch_size):
            chunk = [features[i] for i in order[lo : lo + batch_size]]
            arrays = _pad(chunk, self.tokenizer.pad_token_id)
            outputs = dict(
                zip(self._outputs, self.session.run(None, {k: arrays[k] for k in self._inputs}), strict=True)
            )
            if self.oos is not None:
                probs, out_of_scope = self.oos.decide(
                    outputs["intent_logits"], outputs.get("intent_features")
                )
            else:
                probs = intent_probabilities(outputs["intent_logits"])
                out_of_scope = np.zeros(len(chunk), dtype=bool)
            for b, f in enumerate(chunk):
                i = f.index
                intent = int(probs[b].argmax())
                tags: list[str] = []
                conf: list[float] = []
                if self.decoder is not None:
                    emissions = outputs["slot_logits"][b, : len(f.word_starts)]
                    path = self.decoder.decode(emissions)
                    conf = self.decoder.confidences(emissions, path)
                    tags = [self.slot_labels[t] for t in path] + ["O"] * (f.n_words - len(path))
                results[i] = build_prediction(
                    texts[i],
                    spans[i],
                    self.intent_labels[intent],
                    probs[b].tolist(),
                    self.intent_labels,
                    tags,
                    conf,
                    f.truncated,
                    top_k=self.top_k,
                    out_of_scope=bool(out_of_scope[b]),
                    fallback_intent=self.oos.fallback_intent if self.oos is not None else None,
                )
        return results  # type: ignore[return-value]
