"""Integrated Gradients word attributions for a PyTorch :class:`~chatft.model.joint.JointModel`, with Captum.

Captum's ``LayerIntegratedGradients`` integrates the gradient of the explained probability along the straight
line from a baseline to the utterance, over the encoder's input (token) embeddings: the baseline is the same
utterance with every word's sub-words replaced by the padding token (``[CLS]``/``[SEP]`` and the positions
stay). A sub-word's attribution is the sum over the embedding dimensions; a word's is the sum over its
sub-words, so a word's scores add up, with the others', to ``p(utterance) - p(baseline)`` (Captum's
completeness property, up to its convergence delta).

Targets: the intent probability (softmax over the intents with ``<unk>`` excluded, divided by the fitted
temperature, as the predictors decode), and for a slot the mean over its words of the softmax probability
of each word's tag. For CRF models that is the emission softmax, not the posterior marginal the predictors
report (forward-backward is not written in torch here): an approximation, said in the guide.

Kept out of :mod:`chatft.core.attribution` because it needs torch and Captum (the ``explain`` extra); the
explanation object it fills is that module's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from chatft.core.attribution import SlotTarget
from chatft.core.tags import exclude_unk

__all__ = ["DEFAULT_STEPS", "integrated_gradients"]

#: Interpolation steps between the baseline and the utterance: fewer than Captum's default 50 to keep an
#: explanation cheap; not tuned. tests/test_explain.py checks that the scores still add up to
#: p(utterance) - p(baseline) within 0.02 on the tiny model.
DEFAULT_STEPS = 32


def _word_ids(tokenizer, words: Sequence[str], max_length: int) -> tuple[list[int], list[int | None]]:
    enc = tokenizer(list(words), is_split_into_words=True, truncation=True, max_length=max_length)
    return list(enc["input_ids"]), list(enc.word_ids())


def integrated_gradients(
    model,
    tokenizer,
    words: Sequence[str],
    max_length: int,
    intent: int,
    slots: Sequence[SlotTarget] = (),
    temperature: float = 1.0,
    n_steps: int = DEFAULT_STEPS,
) -> tuple[list[float], list[list[float]]]:
    """(intent scores, one score list per slot), one number per word (0 for words cut by truncation)."""
    try:
        from captum.attr import LayerIntegratedGradients
    except ImportError:  # pragma: no cover - depends on the install
        from chatft.core.errors import ConfigError

        raise ConfigError(
            "integrated_gradients needs Captum: pip install 'chatft[explain]' (or use --explain occlusion)"
        ) from None
    device = next(model.parameters()).device
    ids, word_ids = _word_ids(tokenizer, words, max_length)
    pad = tokenizer.pad_token_id or 0
    input_ids = torch.tensor([ids], device=device)
    baseline = torch.tensor(
        [[pad if w is not None else t for t, w in zip(ids, word_ids, strict=True)]], device=device
    )
    attention = torch.ones_like(input_ids)
    starts = [p for p, w in enumerate(word_ids) if w is not None and (p == 0 or word_ids[p - 1] != w)]
    word_index = torch.tensor([starts or [0]], device=device)

    def intent_prob(input_ids, attention_mask, word_index):
        logits = model(input_ids, attention_mask, word_index)[0].float() / temperature
        return torch.softmax(exclude_unk(logits), -1)

    def slot_support(input_ids, attention_mask, word_index, slot: SlotTarget):
        emissions = model(input_ids, attention_mask, word_index)[1].float()
        probs = torch.softmax(exclude_unk(emissions), -1)
        total = 0
        for k, tag in enumerate(slot.tag_ids):
            pos = slot.start + k
            if pos < len(starts):
                total = total + probs[:, pos, tag]
        return total / len(slot.tag_ids) if torch.is_tensor(total) else probs[:, 0, 0] * 0

    layer = model.encoder.get_input_embeddings()

    def run(forward, target, extra=()) -> list[float]:
        lig = LayerIntegratedGradients(forward, layer)
        attr = lig.attribute(
            input_ids,
            baselines=baseline,
            additional_forward_args=(attention, word_index, *extra),
            target=target,
            n_steps=n_steps,
            internal_batch_size=n_steps,
        )
        per_token = attr.sum(-1)[0].detach().float().cpu().numpy()
        out = np.zeros(len(words))
        for p, w in enumerate(word_ids):
            if w is not None:
                out[w] += per_token[p]
        return out.tolist()

    was_training = model.training
    model.eval()
    try:
        intent_scores = run(intent_prob, intent)
        slot_scores = [run(slot_support, None, (slot,)) for slot in slots]
    finally:
        model.train(was_training)
    return intent_scores, slot_scores
