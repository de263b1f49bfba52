"""One constructor for the model: a checkpoint of every option combination reloads to the training module's
logits, and "not calibrated" decides out of scope the same way in ``test``/``predict`` and in the predictors."""

from __future__ import annotations

import dataclasses
import inspect
import itertools

import numpy as np
import pytest
import torch

from chatft.core.features import pad_batch, tokenize_examples
from chatft.model.assets import ASSETS_KEY
from chatft.model.decoding import slot_decoder_of
from chatft.model.inference import load_for_inference
from chatft.model.spec import ModelSpec
from chatft.training.module import IntentSlotModule

TEXTS = [["list", "flights", "to", "boston"], ["what", "is", "fare", "code", "h", "please"], ["hi"]]
INTENTS = ["<unk>", "oos", "flight", "fare"]
SLOTS = ["<unk>", "O", "B-city", "I-city"]


def save(module: IntentSlotModule, path, assets: bool = True) -> None:
    """What Lightning writes for ``module`` (the keys chatft reads), through the module's own hook."""
    ckpt = {"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}
    module.on_save_checkpoint(ckpt)
    if not assets:  # a checkpoint from before the assets were embedded
        del ckpt[ASSETS_KEY]
    torch.save(ckpt, path)


def arrays_of(loaded) -> dict[str, np.ndarray]:
    features = tokenize_examples(loaded.tokenizer, TEXTS, loaded.max_length)
    arrays = pad_batch(features, loaded.tokenizer.pad_token_id)
    return {k: arrays[k] for k in ("input_ids", "attention_mask", "word_index")}


#: use_crf x bio_constrained x intent_pooling x encoder_layers (x intent_head) with slots; pooling x layers without (CRF and BIO
#: options do nothing without a slot head).
OPTIONS = [
    *itertools.product([False, True], [False, True], ["cls", "mean"], [True], [None, 1, [1]], ["linear"]),
    *itertools.product([False], [True], ["cls", "mean"], [False], [None, 1, [1]], ["linear"]),
    # the cosine intent head with each pooling, with and without slots and a CRF
    (True, True, "cls", True, None, "cosine"),
    (False, True, "mean", True, 1, "cosine"),
    (False, True, "mean", False, None, "cosine"),
]


@pytest.mark.parametrize(("use_crf", "bio", "pooling", "slots", "layers", "head"), OPTIONS)
def test_every_option_combination_reloads_to_the_same_logits(
    tiny_encoder, tmp_path, use_crf, bio, pooling, slots, layers, head
):
    torch.manual_seed(0)
    module = IntentSlotModule(
        tiny_encoder,
        intent_labels=INTENTS,
        slot_labels=SLOTS if slots else None,
        use_crf=use_crf,
        bio_constrained=bio,
        intent_pooling=pooling,
        intent_head=head,
        encoder_layers=layers,
        encoder_dropout=0.2 if layers == 1 else None,
        head_dropout=0.3 if pooling == "mean" else 0.1,
    )
    with torch.no_grad():  # heads away from their init, so a head read the wrong way shows
        for p in module.model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model = module.model.eval()
    # Checkpoints from before the assets were embedded rebuild the encoder from hyper_parameters["encoder"].
    for assets in (True, False) if use_crf == bio else (True,):
        path = tmp_path / f"assets-{assets}.ckpt"
        save(module, path, assets)
        loaded = load_for_inference(path)
        assert loaded.spec == module.spec
        arrays = arrays_of(loaded)
        tensors = {k: torch.from_numpy(v) for k, v in arrays.items()}
        with torch.no_grad():
            want = model(**tensors, return_features=True)
        got = loaded.logits(arrays)
        for w, g in zip(want, got, strict=True):
            assert (w is None and g is None) or np.array_equal(w.numpy(), g)
        want_slots, got_slots = slot_decoder_of(model), slot_decoder_of(loaded.model)
        assert (want_slots and want_slots.to_dict()) == (got_slots and got_slots.to_dict())
        assert loaded.model.encoder.config.num_hidden_layers == (2 if layers is None else 1)


def test_the_spec_has_the_modules_options_and_defaults():
    """Every ModelSpec field is an IntentSlotModule argument with the same default: an option of the network
    cannot be added to training without being read back by inference."""
    params = inspect.signature(IntentSlotModule.__init__).parameters
    for field in dataclasses.fields(ModelSpec):
        assert field.name in params
        if field.name == "intent_pooling":
            # None: chosen from the training set when fit starts and saved; until then (and for checkpoints
            # from before the option) the spec reads [CLS].
            assert (params[field.name].default, field.default) == (None, "cls")
        elif field.name not in ("intent_labels", "slot_labels"):
            assert field.default == params[field.name].default, field.name


def test_old_hyper_parameters_take_the_old_defaults():
    spec = ModelSpec.from_hparams({"intent_labels": ["a", "b"], "encoder": "enc"})
    assert spec == ModelSpec(intent_labels=("<unk>", "a", "b"), encoder="enc")
    assert (spec.intent_pooling, spec.use_crf, spec.bio_constrained, spec.oos_label) == (
        "cls",
        False,
        True,
        "oos",
    )


def _oos_wins(tiny_encoder) -> IntentSlotModule:
    torch.manual_seed(0)
    module = IntentSlotModule(tiny_encoder, intent_labels=INTENTS, slot_labels=SLOTS)
    with torch.no_grad():
        module.model.intent_head.bias[INTENTS.index("oos")] = 100.0  # the oos intent wins every argmax
    return module.eval()


def test_not_calibrated_means_the_same_in_test_and_in_the_predictors(tiny_encoder, tmp_path):
    """A checkpoint with an ``oos`` intent and no calibration (a fit without dev, or interrupted): ``test`` and
    ``predict`` call an utterance whose argmax is ``oos`` out of scope; so must Predictor and OnnxPredictor."""
    from chatft import OnnxPredictor, Predictor
    from chatft.model.batching import collate
    from chatft.serving.export import export_onnx

    module = _oos_wins(tiny_encoder)
    path = tmp_path / "uncalibrated.ckpt"
    save(module, path)
    loaded = load_for_inference(path)
    features = tokenize_examples(loaded.tokenizer, TEXTS, loaded.max_length)
    batch = collate(features, loaded.tokenizer.pad_token_id)
    with torch.no_grad():
        intent_logits, slot_logits, pooled = module.model(
            batch["input_ids"], batch["attention_mask"], batch["word_index"], return_features=True
        )
    in_test = module.decode(batch, intent_logits, slot_logits, pooled, confidences=True)
    assert [d.out_of_scope for d in in_test] == [True, True, True]

    texts = [" ".join(words) for words in TEXTS]
    predictor = Predictor.from_checkpoint(str(path))
    results = predictor.batch(texts)
    assert [(r.intent, r.out_of_scope) for r in results] == [("nlu_fallback", True)] * 3
    assert loaded.calibrated is False
    assert predictor.oos == module.spec.uncalibrated_oos()
    export_onnx(str(path), tmp_path / "onnx")
    onnx = OnnxPredictor(tmp_path / "onnx")
    assert [(r.intent, r.out_of_scope) for r in onnx.batch(texts)] == [("nlu_fallback", True)] * 3
