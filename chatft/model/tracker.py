"""StateTracker: the learned dialogue state tracker's network (a plain ``nn.Module``, exportable to ONNX).

Built like TripPy (Heck et al. 2020), without its closed-list parts: one encoder pass per turn over
``[CLS] user [SEP] previous state [SEP] system [SEP]`` (:mod:`chatft.dialogue.turn_input`), then per
informable slot

- a **gate** over :data:`~chatft.dialogue.state_labels.GATES` (carry, dontcare, user span, system span,
  remove) from the ``[CLS]`` vector;
- **start/end logits** over the tokens for the value's span (decoding keeps it inside the user's words for
  ``user``, the system's for ``system``): open values (names, times) need no list;
- **value logits** over the slot's value list (padded to the longest list), the fallback when a span
  matches no listed value (paraphrases: "high end" for ``expensive``; the list is optional in the schema);

and one multi-label **request** head over the requestable slots.

``forward(input_ids, attention_mask, token_type_ids)`` returns ``(gate_logits [B, S, G], start_logits
[B, S, T], end_logits [B, S, T], value_logits [B, S, V], request_logits [B, R])``, padding positions of the
span logits set to a large negative number. Decoding them into a state is numpy
(:func:`chatft.dialogue.state_update.decode_turn`), the same for PyTorch and ONNX.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["StateTracker", "NEG"]

#: Span logit of a padding token (finite, so ONNX and fp16 stay NaN-free).
NEG = -1.0e4


class StateTracker(nn.Module):
    """Encoder + per-slot gate, span and value heads + request head."""

    def __init__(
        self,
        encoder: nn.Module,
        num_slots: int,
        num_gates: int,
        num_values: int,
        num_requests: int,
        head_dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        hidden = encoder.config.hidden_size
        self.num_slots, self.num_gates, self.num_values = num_slots, num_gates, num_values
        self.dropout = nn.Dropout(head_dropout)
        self.gate_head = nn.Linear(hidden, num_slots * num_gates)
        self.span_head = nn.Linear(hidden, num_slots * 2)
        self.value_head = nn.Linear(hidden, num_slots * num_values)
        self.request_head = nn.Linear(hidden, max(1, num_requests))
        self.num_requests = num_requests

    def forward(
        self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """See the module docstring for the shapes."""
        hidden = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        hidden = self.dropout(hidden)
        cls = hidden[:, 0]
        b, t = input_ids.shape
        gates = self.gate_head(cls).view(b, self.num_slots, self.num_gates)
        spans = self.span_head(hidden).view(b, t, self.num_slots, 2).permute(0, 2, 3, 1)  # [B, S, 2, T]
        pad = (attention_mask == 0)[:, None, :]
        start = spans[:, :, 0].masked_fill(pad, NEG)
        end = spans[:, :, 1].masked_fill(pad, NEG)
        values = self.value_head(cls).view(b, self.num_slots, self.num_values)
        requests = self.request_head(cls)[:, : self.num_requests]
        return gates, start, end, values, requests

    @staticmethod
    def loss(outputs: tuple[Tensor, ...], batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Gate CE + span CE (start and end, over turns with a span) + value CE (turns with a listed new
        value) + request BCE (summed over requestable slots); each part a mean over what it scores (0 when nothing)."""
        gates, start, end, values, requests = (o.float() for o in outputs)
        gate_loss = F.cross_entropy(gates.flatten(0, 1), batch["gate"].flatten())

        def ce(logits: Tensor, target: Tensor) -> Tensor:
            target = target.flatten()
            if bool((target >= 0).any()):
                return F.cross_entropy(logits.flatten(0, 1), target, ignore_index=-100)
            return logits.sum() * 0.0

        span_loss = (ce(start, batch["start"]) + ce(end, batch["end"])) / 2
        value_loss = ce(values.masked_fill(~batch["value_mask"], NEG), batch["value"])
        if requests.size(1):
            # summed over the requestable slots (a mean over 7 mostly-negative labels learned too slowly)
            request_loss = F.binary_cross_entropy_with_logits(
                requests, batch["requests"].float(), reduction="sum"
            ) / requests.size(0)
        else:
            request_loss = requests.sum() * 0.0
        total = gate_loss + span_loss + value_loss + request_loss
        return {
            "loss": total,
            "gate": gate_loss,
            "span": span_loss,
            "value": value_loss,
            "request": request_loss,
        }


def build_tracker(
    encoder_name: str,
    num_slots: int,
    num_gates: int,
    num_values: int,
    num_requests: int,
    head_dropout: float = 0.1,
    encoder_dropout: float | None = None,
    pretrained: bool = True,
) -> StateTracker:
    """The tracker around ``encoder_name`` loaded as ``--model.encoder`` loads it for the NLU model."""
    from chatft.model.encoders import load_encoder

    encoder = load_encoder(encoder_name, pretrained=pretrained, dropout=encoder_dropout)
    return StateTracker(encoder, num_slots, num_gates, num_values, num_requests, head_dropout)
