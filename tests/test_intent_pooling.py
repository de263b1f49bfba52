"""--model.intent_pooling mean: the intent head reads the mean of the real tokens' vectors, blind to padding."""

from __future__ import annotations

import pytest
import torch


def _model(tiny_encoder, pooling: str):
    from chatft.training.module import IntentSlotModule

    torch.manual_seed(0)
    module = IntentSlotModule(
        tiny_encoder, intent_labels=["<unk>", "a", "b"], slot_labels=["<unk>", "O"], intent_pooling=pooling
    )
    return module.model.eval()


def test_mean_pooling_reads_the_mean_of_real_tokens_and_ignores_padding(tiny_encoder):
    model = _model(tiny_encoder, "mean")
    ids = torch.tensor([[2, 7, 8, 9, 3]])
    padded = torch.tensor([[2, 7, 8, 9, 3, 0, 0]])
    word_index = torch.tensor([[1, 2, 3]])
    with torch.no_grad():
        logits, _, pooled = model(ids, torch.ones_like(ids), word_index, return_features=True)
        logits_p, _, pooled_p = model(padded, (padded != 0).long(), word_index, return_features=True)
        hidden = model.encoder(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
    torch.testing.assert_close(pooled, hidden.mean(1), rtol=0, atol=1e-6)
    torch.testing.assert_close(logits, model.intent_head(hidden.mean(1)), rtol=0, atol=1e-6)
    torch.testing.assert_close(pooled_p, pooled, rtol=0, atol=1e-5)
    torch.testing.assert_close(logits_p, logits, rtol=0, atol=1e-5)


def test_cls_pooling_reads_the_first_vector(tiny_encoder):
    model = _model(tiny_encoder, "cls")
    ids = torch.tensor([[2, 7, 8, 3]])
    with torch.no_grad():
        _, _, pooled = model(ids, torch.ones_like(ids), torch.tensor([[1, 2]]), return_features=True)
        hidden = model.encoder(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
    assert torch.equal(pooled, hidden[:, 0])


def test_unknown_pooling_is_a_config_error(tiny_encoder):
    from chatft.core.errors import ConfigError

    with pytest.raises(ConfigError, match="--model.intent_pooling must be cls or mean"):
        _model(tiny_encoder, "max")
