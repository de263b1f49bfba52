"""Explanations on a real (tiny) model: the predictors, ``predict --explain``, serve's ``"explain"`` and chat's /why.

The tiny model of tests/test_serve.py (trained once for this module, with its ONNX export). Occlusion is checked
against its definition (the probability lost when a word is erased, computed here with ``predictor.batch``),
PyTorch against onnxruntime, Integrated Gradients against its completeness property.
"""

from __future__ import annotations

import contextlib
import io
import json

import httpx
import numpy as np
import pytest

from chatft.cli import main
from chatft.core.errors import ConfigError

from .conftest import QUIET
from .test_serve import Server, model  # noqa: F401 - the module-scoped tiny model and its ONNX export

TEXT = "book a flight from boston to denver tomorrow"


@pytest.fixture(scope="module")
def predictors(model):  # noqa: F811
    from chatft.serving.onnx_predictor import OnnxPredictor
    from chatft.serving.predictor import Predictor

    return Predictor.from_checkpoint(model["ckpt"]), OnnxPredictor(model["onnx"])


def test_occlusion_is_the_probability_lost_when_a_word_is_erased(predictors):
    torch_predictor, onnx_predictor = predictors
    pred = torch_predictor.explain(TEXT)
    ex = pred.explanation
    assert ex["method"] == "occlusion" and ex["words"] == pred.words and ex["intent"]["name"] == pred.intent
    words = pred.words
    erased = [" ".join(words[:i] + words[i + 1 :]) for i in range(len(words))]
    probs = [dict(p.intents_top_k) for p in torch_predictor.batch(erased)]
    k = torch_predictor.intent_labels.index(pred.intent)
    full = torch_predictor.decode_words([words])[0].intent_probs[k]
    manual = [full - torch_predictor.decode_words([w.split()])[0].intent_probs[k] for w in erased]
    assert ex["intent"]["scores"] == pytest.approx(manual, abs=1e-6)  # padding differs by batch
    assert len(probs) == len(words)
    assert [s["label"] for s in ex["slots"]] == [s.label for s in pred.slots if s.extractor == "chatft"]
    for slot in ex["slots"]:
        assert len(slot["scores"]) == len(words) and TEXT[slot["start"] : slot["end"]] == slot["text"]
    # The same code on onnxruntime: the same scores up to the two backends' float differences.
    onnx_ex = onnx_predictor.explain(TEXT).explanation
    assert onnx_ex["words"] == ex["words"] and onnx_ex["intent"]["name"] == ex["intent"]["name"]
    assert onnx_ex["intent"]["scores"] == pytest.approx(ex["intent"]["scores"], abs=1e-4)
    for a, b in zip(onnx_ex["slots"], ex["slots"], strict=True):
        assert a["scores"] == pytest.approx(b["scores"], abs=1e-4)


def test_another_intent_on_request_and_the_errors(predictors):
    torch_predictor, onnx_predictor = predictors
    other = [label for label in torch_predictor.intent_labels[1:] if label != torch_predictor(TEXT).intent][0]
    ex = onnx_predictor.explain(TEXT, intent=other).explanation
    k = onnx_predictor.intent_labels.index(other)
    assert ex["intent"]["name"] == other
    assert ex["intent"]["probability"] == pytest.approx(
        onnx_predictor.decode_words([TEXT.split()])[0].intent_probs[k]
    )
    with pytest.raises(ConfigError, match="^integrated_gradients needs the PyTorch model"):
        onnx_predictor.explain(TEXT, method="integrated_gradients")
    with pytest.raises(ConfigError, match="^unknown intent 'nope' to explain: the model predicts "):
        torch_predictor.explain(TEXT, intent="nope")
    assert onnx_predictor.explain("   ").explanation == {
        "method": "occlusion",
        "words": [],
        "intent": {"name": None, "probability": 0.0, "scores": []},
        "slots": [],
    }
    assert "explanation" not in onnx_predictor(TEXT).to_dict()


def test_integrated_gradients_scores_add_up_to_the_probability_gained_from_the_baseline(predictors):
    pytest.importorskip("captum")
    import torch

    from chatft.core.tags import exclude_unk

    predictor = predictors[0]
    ex = predictor.explain(TEXT, method="integrated_gradients").explanation
    assert ex["method"] == "integrated_gradients" and len(ex["intent"]["scores"]) == 8
    k = predictor.intent_labels.index(ex["intent"]["name"])
    enc = predictor.tokenizer(TEXT.split(), is_split_into_words=True)
    ids = enc["input_ids"]
    base = [t if w is None else predictor.pad_id for t, w in zip(ids, enc.word_ids(), strict=True)]
    with torch.no_grad():
        logits = predictor.model(
            torch.tensor([base]),
            torch.ones(1, len(ids), dtype=torch.long),
            torch.zeros(1, 1, dtype=torch.long),
        )[0]
        p_base = torch.softmax(exclude_unk(logits.double() / predictor.oos.temperature), -1)[0, k].item()
    assert sum(ex["intent"]["scores"]) == pytest.approx(ex["intent"]["probability"] - p_base, abs=0.02)


def test_predict_explain_adds_the_predictors_explanation_to_each_line(model, predictors, tmp_path):  # noqa: F811
    inputs = tmp_path / "in.txt"
    inputs.write_text(f"{TEXT}\n\nplay some jazz\n", encoding="utf-8")
    with contextlib.redirect_stdout(io.StringIO()):
        main(
            [
                "predict",
                "--ckpt_path",
                model["ckpt"],
                "--data.predict_file",
                str(inputs),
                "--explain",
                "--predictions.output",
                str(tmp_path / "out.jsonl"),
                "--trainer.default_root_dir",
                str(tmp_path),
                *QUIET,
            ]
        )
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    predictor = predictors[0]
    for row in rows:
        want = predictor.explain(row["text"]).explanation
        got = row["explanation"]
        assert got["words"] == want["words"] and got["intent"]["name"] == want["intent"]["name"]
        assert got["intent"]["scores"] == pytest.approx(want["intent"]["scores"], abs=1e-6)
    assert rows[1]["explanation"]["words"] == []


def test_explain_shorthand():
    from chatft.training.lightning_cli import explain_shorthand

    assert explain_shorthand(["--explain", "--x", "1"]) == ["--predictions.explain", "occlusion", "--x", "1"]
    assert explain_shorthand(["--explain", "integrated_gradients"]) == [
        "--predictions.explain",
        "integrated_gradients",
    ]
    assert explain_shorthand(["--explain=occlusion"]) == ["--predictions.explain=occlusion"]


def test_serve_explain_is_an_extra_key(model, predictors, tmp_path):  # noqa: F811
    server = Server("--onnx", model["onnx"], sessions=tmp_path / "s.sqlite").wait_ready()
    try:
        url = server.url
        plain = httpx.post(f"{url}/model/parse", json={"text": TEXT}).json()
        explained = httpx.post(f"{url}/model/parse", json={"text": TEXT, "explain": True}).json()
        ex = explained.pop("explanation")
        assert explained == plain
        want = predictors[1].explain(TEXT).explanation
        assert ex["intent"]["scores"] == pytest.approx(want["intent"]["scores"], abs=1e-6)
        rows = httpx.post(f"{url}/parse", json={"texts": [TEXT, "play some jazz"], "explain": True}).json()
        assert [r["explanation"]["words"] for r in rows] == [TEXT.split(), ["play", "some", "jazz"]]
        assert "explanation" not in httpx.post(f"{url}/parse", json={"texts": [TEXT]}).json()[0]
        bad = httpx.post(
            f"{url}/parse", json={"texts": [TEXT], "explain": {"method": "integrated_gradients"}}
        )
        assert bad.status_code == 400
        assert bad.json()["error"] == "invalid explain"
        assert bad.json()["detail"].startswith("integrated_gradients needs the PyTorch model (a checkpoint)")
        bad = httpx.post(f"{url}/model/parse", json={"text": TEXT, "explain": "yes"})
        assert (bad.status_code, bad.json()["error"]) == (400, "invalid explain")
        page = httpx.get(f"{url}/")
        assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
        assert '<script src="/web/app.js" defer></script>' in page.text
        assert httpx.get(f"{url}/web/app.js").headers["content-type"] == "text/javascript; charset=utf-8"
        assert httpx.get(f"{url}/web/nope.js").status_code == 404
    finally:
        assert server.stop() == 0


def test_chat_why_prints_the_last_utterances_attributions(predictors, monkeypatch):
    from chatft.dialogue.tracker import DialoguePolicy, DialogueTracker
    from chatft.serving.chat import run_interactive

    predictor = predictors[1]
    lines = iter(["/why", TEXT, "/why", "/why nope", "/quit"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(lines))
    out = io.StringIO()
    run_interactive(predictor, DialogueTracker(DialoguePolicy()), out)
    text = out.getvalue().splitlines()
    ex = predictor.explain(TEXT).explanation
    scored = " ".join(f"{w}({s:+.2f})" for w, s in zip(ex["words"], ex["intent"]["scores"], strict=True))
    assert "bot> (nothing to explain yet: type an utterance first)" in text
    assert f"  why {ex['intent']['name']} ({ex['intent']['probability']:.2f}, occlusion): {scored}" in text
    assert sum(line.startswith("  why ") for line in text) == 1 + len(ex["slots"])
    assert any(line.startswith("bot> (unknown intent 'nope' to explain") for line in text)
    assert np.isfinite(ex["intent"]["probability"])
