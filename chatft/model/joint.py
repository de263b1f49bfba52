"""JointModel: a pretrained encoder with an intent head and a word-level slot head (optional CRF).

Plain ``nn.Module`` (no Lightning) so it can be exported and served on its own. The intent head reads
the ``[CLS]`` vector (or the mean of the real tokens' vectors: ``intent_pooling="mean"``, the pooling
sentence-transformers encoders such as the default were trained with); the slot head reads each word's
first sub-word, gathered into a word sequence, so loss, CRF and decoding all run over real words and never
see padding or continuation sub-words.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from chatft.core.tags import decoding_transitions
from chatft.model.crf import CRF
from chatft.model.heads import CosineHead


class JointModel(nn.Module):
    """Encoder + intent classifier + slot tagger.

    ``num_slot_tags == 0`` builds an intent-only model (sentence classification data). The first class
    of each head is ``<unk>`` and is never predicted. Decoding happens outside the model, in numpy
    (:class:`chatft.core.decoding.Decoder`, built with :func:`chatft.model.decoding.slot_decoder_of`),
    the same for ``test``, ``predict`` and both predictors.
    """

    def __init__(
        self,
        encoder: nn.Module,
        num_intents: int,
        slot_tags: Sequence[str],
        use_crf: bool = False,
        bio_constrained: bool = True,
        head_dropout: float = 0.1,
        intent_pooling: str = "cls",
        intent_head: str = "linear",
    ) -> None:
        super().__init__()
        if intent_head not in ("linear", "cosine"):
            raise ValueError(f"intent_head must be linear or cosine, got {intent_head!r}")
        self.encoder = encoder
        self.intent_pooling = intent_pooling
        hidden = encoder.config.hidden_size
        self.dropout = nn.Dropout(head_dropout)
        # cosine: scores by direction only (chatft.model.heads says why); linear: w.x + b.
        self.intent_head = (
            CosineHead(hidden, num_intents) if intent_head == "cosine" else nn.Linear(hidden, num_intents)
        )
        self.num_slot_tags = len(slot_tags)
        self.slot_head = nn.Linear(hidden, self.num_slot_tags) if self.num_slot_tags else None
        self.use_crf = use_crf and self.num_slot_tags > 0
        self.bio_constrained = bio_constrained
        allowed_start = allowed_trans = None
        if self.num_slot_tags:
            start, trans = decoding_transitions(list(slot_tags))  # BIO rule; <unk> never predicted
            allowed_start, allowed_trans = torch.from_numpy(start), torch.from_numpy(trans)
        self.crf = CRF(self.num_slot_tags, allowed_start, allowed_trans) if self.use_crf else None
        self.register_buffer("allowed_start", allowed_start, persistent=False)
        self.register_buffer("allowed_trans", allowed_trans, persistent=False)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor,
        word_index: Tensor,
        return_features: bool = False,
        return_hidden: bool = False,
    ):
        """Intent logits ``[B, I]`` and word-level slot emissions ``[B, W, T]`` (``None`` without slots).

        ``return_features``: also return the pooled feature ``[B, H]`` the intent head reads (``[CLS]`` or mean
        vector before dropout), which the Mahalanobis out-of-scope score measures (:mod:`chatft.core.oos`).
        ``return_hidden``: return the features and then the encoder's last hidden states ``[B, L, H]`` (before
        dropout; what hidden-state distillation compares, :mod:`chatft.training.distill`).
        """
        hidden = last_hidden = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask
        ).last_hidden_state
        mean = self.intent_pooling == "mean"
        if mean:
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        else:
            pooled = hidden[:, 0]
        hidden = self.dropout(hidden)
        # cls reads the dropped-out hidden tensor, as before the option existed (the same random stream).
        intent_logits = self.intent_head(self.dropout(pooled) if mean else hidden[:, 0])
        slot_logits = None
        if self.slot_head is not None:
            words = hidden.gather(1, word_index.unsqueeze(-1).expand(-1, -1, hidden.size(-1)))
            slot_logits = self.slot_head(words)
        if return_hidden:
            return intent_logits, slot_logits, pooled, last_hidden
        if return_features:
            return intent_logits, slot_logits, pooled
        return intent_logits, slot_logits

    def loss(
        self,
        intent_logits: Tensor,
        slot_logits: Tensor | None,
        intent: Tensor,
        word_tags: Tensor,
        word_mask: Tensor,
        slot_loss_coef: float = 1.0,
        label_smoothing: float = 0.0,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """(total, intent loss, slot loss): intent CE + ``slot_loss_coef`` x (slot CE or CRF NLL)."""
        intent_loss = F.cross_entropy(intent_logits.float(), intent, label_smoothing=label_smoothing)
        if slot_logits is None:
            return intent_loss, intent_loss, intent_loss.new_zeros(())
        if self.crf is not None:
            slot_loss = self.crf(slot_logits, word_tags, word_mask, reduction="mean")
        else:
            tags = word_tags.masked_fill(~word_mask, -100)
            slot_loss = F.cross_entropy(
                slot_logits.float().flatten(0, 1),
                tags.flatten(),
                ignore_index=-100,
                label_smoothing=label_smoothing,
            )
        return intent_loss + slot_loss_coef * slot_loss, intent_loss, slot_loss
