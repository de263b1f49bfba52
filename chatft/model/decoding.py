"""The numpy slot decoder equivalent to a torch :class:`~chatft.model.joint.JointModel`.

Decoding runs outside the model, in numpy (:class:`chatft.core.decoding.SlotDecoder`), the same for ``test``,
``predict``, both predictors and the ONNX export (which saves it as ``decoding.json``).
"""

from __future__ import annotations

from chatft.core.decoding import SlotDecoder

__all__ = ["slot_decoder_of"]


def slot_decoder_of(model) -> SlotDecoder | None:
    """The :class:`~chatft.core.decoding.SlotDecoder` of ``model``'s slot head: softmax, BIO-constrained
    Viterbi, or Viterbi over its CRF's learned transitions (None without slots)."""
    if not model.num_slot_tags:
        return None
    if model.crf is not None:
        crf = model.crf
        return SlotDecoder.from_constraints(
            True,
            True,
            crf.allowed_start.cpu().numpy(),
            crf.allowed_trans.cpu().numpy(),
            crf.start_transitions.detach().double().cpu().numpy(),
            crf.transitions.detach().double().cpu().numpy(),
            crf.end_transitions.detach().double().cpu().numpy(),
        )
    return SlotDecoder.from_constraints(
        False,
        model.bio_constrained,
        model.allowed_start.cpu().numpy(),
        model.allowed_trans.cpu().numpy(),
    )
