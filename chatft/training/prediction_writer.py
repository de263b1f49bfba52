"""JsonlPredictionWriter: ``predict`` results as JSON Lines, one object per input line, in input order.

Each process predicts its own shard; at the end of the epoch the rows are gathered on rank 0, sorted by their
input index (duplicates from a padding sampler dropped) and written there, so the file is the same with one
process or many. Each line is a :class:`chatft.core.prediction.Prediction` as a dict; with ``--explain METHOD``
(``--predictions.explain``) it gains an ``explanation`` (:mod:`chatft.core.attribution`), computed on rank 0
while writing, one utterance at a time.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import BasePredictionWriter

from chatft.core.attribution import METHODS, check_request, explain_prediction, occlusion
from chatft.core.decoding import Decoder
from chatft.core.entities import EntityResolver
from chatft.core.errors import ConfigError
from chatft.core.inference_loop import decode_words
from chatft.core.prediction import build_prediction
from chatft.core.tags import entity_types
from chatft.core.values import reference_time as parse_reference_time

DEFAULT_NAME = "predictions.jsonl"


def output_path(output: str | None, trainer: L.Trainer) -> Path:
    """``--predictions.output``, else ``predictions.jsonl`` in the run's output folder (``eval/`` next to the
    checkpoint, or ``--trainer.default_root_dir``); shared by the NLU and the tracker writers."""
    if output:
        return Path(output).expanduser()
    return Path(trainer.log_dir or trainer.default_root_dir) / DEFAULT_NAME


def gather_rows(trainer: L.Trainer, predictions: list) -> list:
    """This rank's rows (``predictions`` is a list of per-batch lists), and under DDP every rank's, rank by
    rank, so rank 0 can write the one file."""
    rows = [row for batch in predictions for row in batch]
    if trainer.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
        gathered: list = [None] * trainer.world_size
        torch.distributed.all_gather_object(gathered, rows)
        rows = [row for part in gathered for row in part]
    return rows


class JsonlPredictionWriter(BasePredictionWriter):
    """Write ``predict``'s outputs to a JSON Lines file and print its path.

    Args:
        output: File to write. Default: ``predictions.jsonl`` in the run's log folder
            (``<trainer.default_root_dir>/lightning_logs/version_N/``).
        top_k: How many intents (most probable first) to list in ``intents_top_k``.
        reference_time: What relative dates in the texts ("tomorrow") are read against, ISO 8601
            (``2026-12-02T09:30:00``); default: now.
        explain: Add word attributions to each line (``explanation``): occlusion or integrated_gradients
            (Captum). ``predict --explain METHOD`` is short for ``--predictions.explain METHOD``.
        explain_intent: Explain this intent instead of the predicted one ("why not atis_airfare?").
    """

    def __init__(
        self,
        output: str | None = None,
        top_k: int = 3,
        reference_time: str | None = None,
        explain: str | None = None,
        explain_intent: str | None = None,
    ) -> None:
        super().__init__(write_interval="epoch")
        self.output = output
        self.top_k = top_k
        if explain is not None and explain not in METHODS:
            raise ConfigError(f"--predictions.explain {explain!r}: choose from {', '.join(METHODS)}")
        self.explain = explain
        self.explain_intent = explain_intent
        try:
            self.reference_time = parse_reference_time(reference_time) if reference_time else None
        except ValueError:
            raise ConfigError(
                f"--predictions.reference_time {reference_time!r}: expected an ISO 8601 date-time such as "
                "2026-12-02T09:30:00"
            ) from None
        self.path: Path | None = None

    def write_on_epoch_end(self, trainer, pl_module, predictions, batch_indices) -> None:
        rows = gather_rows(trainer, predictions)
        path = output_path(self.output, trainer)
        if trainer.is_global_zero:
            by_index = {}
            for index, decoded in rows:
                by_index.setdefault(index, decoded)
            self.write(path, sorted(by_index.items()), trainer.datamodule, pl_module)
            print(f"predictions: {path}", flush=True)
        self.path = path
        trainer.strategy.barrier("chatft-predictions-written")

    def write(self, path: Path, rows: list, datamodule, pl_module) -> None:
        """Write ``(input index, decoded)`` rows in their order; text and word offsets come from the datamodule's
        predict inputs."""
        inputs = getattr(datamodule, "predict_inputs", None)
        if inputs is None or len(inputs) < len(rows):
            raise RuntimeError(
                "JsonlPredictionWriter needs IntentSlotDataModule's predict_inputs (texts and words)"
            )
        labels = pl_module.intent_vocab.labels
        fallback = pl_module.oos_state.fallback_intent  # the intent name of utterances decoded out of scope
        # Regexes, lookup tables and synonyms the checkpoint carries; typed values relative to now.
        resolver = EntityResolver(
            getattr(pl_module, "entity_resources", None),
            entity_types((getattr(pl_module, "hparams", None) or {}).get("slot_labels") or ()),
        )
        now = self.reference_time or datetime.now().replace(microsecond=0)
        explainer = self._explainer(datamodule, pl_module) if self.explain else None
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            for i, decoded in rows:
                text, spans = inputs[i]
                pred = resolver.resolve(
                    build_prediction(text, spans, decoded, labels, self.top_k, fallback), now
                )
                row = pred.to_dict()
                if explainer is not None:
                    row["explanation"] = explainer(pred)
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        os.replace(tmp, path)

    def _explainer(self, datamodule, pl_module):
        """prediction -> explanation object, with the module's model, the datamodule's tokenizer and the
        decoding the predictors use (so the scores equal ``Predictor.explain``'s)."""
        from chatft.model.decoding import slot_decoder_of

        intent_labels = tuple(pl_module.intent_vocab.labels)
        slot_labels = tuple(pl_module.slot_vocab.labels) if pl_module.slot_vocab else ()
        method = check_request(self.explain, self.explain_intent, METHODS, intent_labels)
        model = pl_module.model
        decoder = Decoder(intent_labels, slot_labels, slot_decoder_of(model), pl_module.oos_state)
        tokenizer, max_length = datamodule.tokenizer, datamodule.max_length
        device = next(model.parameters()).device

        def logits(arrays):
            with torch.inference_mode():
                tensors = {k: torch.from_numpy(v).to(device) for k, v in arrays.items()}
                intent, slots, features = model(**tensors, return_features=True)
            return (
                intent.float().cpu().numpy(),
                None if slots is None else slots.float().cpu().numpy(),
                features.float().cpu().numpy(),
            )

        def score(words):
            pad = tokenizer.pad_token_id or 0
            return decode_words(words, tokenizer, logits, decoder, max_length, pad, word_probabilities=True)

        def attribute(words, method, intent, targets):
            if method == "occlusion":
                return occlusion(words, score, intent, targets)
            from chatft.model.attribution import integrated_gradients

            temperature = pl_module.oos_state.temperature if pl_module.oos_state is not None else 1.0
            return integrated_gradients(model, tokenizer, words, max_length, intent, targets, temperature)

        return lambda pred: explain_prediction(
            pred, method, attribute, score, intent_labels, slot_labels, self.explain_intent
        )
