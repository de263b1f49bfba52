"""Acceptance of entity values end to end: a Rasa project with synonyms (inline and a synonym: block), a regex
and a lookup table is converted with ``python -m chatft data convert``, a tiny BERT is fitted on it, and with the
data folder gone the checkpoint (Predictor), its ONNX export (OnnxPredictor) and ``python -m chatft serve``
(``/model/parse`` over HTTP on 127.0.0.1) all return the normalised values."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from chatft.cli import main as cli_main

from .conftest import cli_args
from .test_serve import Server

REPO = Path(__file__).resolve().parents[1]
REFERENCE = "2026-12-02T09:30:00"  # a Wednesday

NLU = """\
version: "3.1"
nlu:
- intent: transfer
  examples: |
    - send [$250](amount) to my [current account]{"entity": "account", "value": "checking"} [tomorrow](date)
    - send [fifty bucks](amount) to my [savings](account) [tomorrow](date)
    - pay [$40](amount) into my [chequing](account) [next friday](date)
    - move [twenty pounds](amount) to my [savings](account) [today](date)
    - send [$75](amount) to my [current account](account:checking) [monday](date)
    - pay [€30](amount) into my [savings](account) [tomorrow](date)
    - send [$250](amount) to my [chequing](account) [today](date)
    - move [fifty bucks](amount) to my [current account](account:checking) [next friday](date)
- intent: book_flight
  examples: |
    - fly to [denver](city) [next friday](date)
    - book a flight to [boston](city) [tomorrow](date)
    - fly to [boston](city) [monday](date)
    - book a flight to [denver](city) [today](date)
    - fly to [new york](city) [tomorrow](date)
    - book a flight to [new york](city) [next friday](date)
- intent: balance
  examples: |
    - what is the balance of account [1234567890](account_number)
    - balance of account [9876543210](account_number) please
    - what is the balance of account [5550001111](account_number)
    - balance of account [1212121212](account_number) please
- synonym: checking
  examples: |
    - chequing
- synonym: New York
  examples: |
    - nyc
    - big apple
- regex: account_number
  examples: |
    - \\d{10,12}
- lookup: city
  examples: |
    - boston
    - denver
    - new york
"""

#: (text, [(entity, value, start, end, extractor, processors, additional_info)]) at REFERENCE.
EXPECTED = [
    ("send $250 to my current account tomorrow", [
        ("amount", 250, 5, 9, "chatft", ["ValueNormalizer"], {"dim": "amount-of-money", "value": 250, "unit": "USD"}),
        ("account", "checking", 16, 31, "chatft", ["EntitySynonymMapper"], None),
        ("date", "2026-12-03", 32, 40, "chatft", ["ValueNormalizer"],
         {"dim": "time", "value": "2026-12-03", "grain": "day"}),
    ]),
    ("move fifty bucks to my savings today", [
        ("amount", 50, 5, 16, "chatft", ["ValueNormalizer"], {"dim": "amount-of-money", "value": 50, "unit": "USD"}),
        ("account", "savings", 23, 30, "chatft", None, None),
        ("date", "2026-12-02", 31, 36, "chatft", ["ValueNormalizer"],
         {"dim": "time", "value": "2026-12-02", "grain": "day"}),
    ]),
    ("fly to denver next friday", [
        ("city", "denver", 7, 13, "chatft", None, None),
        ("date", "2026-12-04", 14, 25, "chatft", ["ValueNormalizer"],
         {"dim": "time", "value": "2026-12-04", "grain": "day"}),
    ]),
    # an account number not in the training data: the model tags it, the regex's match of the same span is not
    # repeated
    ("what is the balance of account 4444333322", [
        ("account_number", "4444333322", 31, 41, "chatft", None, None),
    ]),
]  # fmt: skip


def entities_of(parse: dict) -> list[tuple]:
    return [
        (
            e["entity"],
            e["value"],
            e["start"],
            e["end"],
            e["extractor"],
            e.get("processors"),
            e.get("additional_info"),
        )
        for e in parse["entities"]
    ]


@pytest.fixture(scope="module")
def fitted(tiny_encoder, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("entities")
    (root / "nlu.yml").write_text(NLU, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    convert = subprocess.run(
        [sys.executable, "-m", "chatft", "data", "convert", "--from", "rasa-yaml", "--output", str(root / "data"),
         *(arg for split in ("train", "dev", "test") for arg in (f"--{split}", str(root / "nlu.yml")))],
        capture_output=True, text=True, env=env, cwd=str(REPO), check=True,
    )  # fmt: skip
    options = dict(
        data__batch_size=4, model__head_learning_rate=3e-3, model__learning_rate=3e-3, trainer__max_epochs=25,
        data__max_length=32,
    )  # fmt: skip
    cli_main(["fit", *cli_args(tiny_encoder, root / "data", root / "run", **options)])
    ckpt = root / "run/lightning_logs/version_0/checkpoints/last.ckpt"
    from chatft.serving.export import export_onnx

    onnx = export_onnx(str(ckpt), str(root / "onnx"))
    shutil.move(root / "data", root / "data-gone")  # the predictors must not need the data folder
    return {"root": root, "ckpt": str(ckpt), "onnx": str(onnx), "convert": convert.stdout}


def test_convert_keeps_synonyms_regex_and_lookup(fitted):
    root = fitted["root"]
    assert (
        f"entities: 6 synonyms, 1 regexes, 1 lookup tables -> {root / 'data' / 'entities.json'}"
        in fitted["convert"]
    )
    saved = json.loads((root / "data-gone" / "entities.json").read_text(encoding="utf-8"))
    assert saved["synonyms"] == {
        "current account": "checking", "checking": "checking", "chequing": "checking", "nyc": "New York",
        "new york": "New York", "big apple": "New York",
    }  # fmt: skip
    assert saved["regexes"] == [{"name": "account_number", "pattern": r"\d{10,12}"}]
    assert saved["lookups"] == [{"name": "city", "elements": ["boston", "denver", "new york"]}]


def test_checkpoint_and_onnx_predictors_give_the_normalised_values(fitted):
    from chatft.serving.onnx_predictor import OnnxPredictor
    from chatft.serving.predictor import Predictor
    from chatft.serving.rasa import to_rasa

    reference = datetime.fromisoformat(REFERENCE)
    for predictor in (Predictor.from_checkpoint(fitted["ckpt"]), OnnxPredictor(fitted["onnx"])):
        for text, want in EXPECTED:
            assert entities_of(to_rasa(predictor(text, reference_time=reference))) == want, (predictor, text)


def test_model_parse_over_http_returns_the_normalised_values(fitted, tmp_path):
    server = Server("--ckpt_path", fitted["ckpt"], sessions=tmp_path / "s.sqlite").wait_ready()
    try:
        for text, want in EXPECTED:
            r = httpx.post(f"{server.url}/model/parse", json={"text": text, "reference_time": REFERENCE})
            assert r.status_code == 200
            assert entities_of(r.json()) == want, text
        r = httpx.post(f"{server.url}/model/parse", json={"text": "hi", "reference_time": "next tuesday"})
        assert (r.status_code, r.json()["error"]) == (400, "invalid reference_time")
        r = httpx.post(f"{server.url}/parse", json={"texts": [EXPECTED[0][0]], "reference_time": REFERENCE})
        slot = r.json()[0]["slots"][2]
        assert {k: slot[k] for k in ("label", "value", "text", "typed")} == {
            "label": "date", "value": "2026-12-03", "text": "tomorrow",
            "typed": {"dim": "time", "value": "2026-12-03", "grain": "day"},
        }  # fmt: skip
        # /chat reads relative dates against the body's reference_time too (it used to ignore it: now).
        r = httpx.post(
            f"{server.url}/chat/s1", json={"text": EXPECTED[0][0], "reference_time": "2027-03-01T08:00"}
        )
        slot = r.json()["slots"][2]
        assert {k: slot[k] for k in ("label", "value", "text", "typed")} == {
            "label": "date", "value": "2027-03-02", "text": "tomorrow",
            "typed": {"dim": "time", "value": "2027-03-02", "grain": "day"},
        }  # fmt: skip
        r = httpx.post(f"{server.url}/chat/s1", json={"text": "hi", "reference_time": "next tuesday"})
        assert (r.status_code, r.json()["error"]) == (400, "invalid reference_time")
    finally:
        assert server.stop() == 0


def test_predict_command_writes_the_normalised_values(fitted, tmp_path):
    """``python -m chatft predict`` (the JSON Lines writer) resolves with the checkpoint's resources too."""
    inputs = tmp_path / "in.txt"
    inputs.write_text("".join(text + "\n" for text, _ in EXPECTED), encoding="utf-8")
    out = tmp_path / "p.jsonl"
    cli_main(
        ["predict", "--ckpt_path", fitted["ckpt"], "--data.predict_file", str(inputs), "--predictions.output",
         str(out), "--predictions.reference_time", REFERENCE, "--trainer.default_root_dir", str(tmp_path / "p"),
         "--trainer.enable_progress_bar", "false"]
    )  # fmt: skip
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    got = [[(s["label"], s["typed"]["value"] if s["typed"] else s["value"], s["start"], s["end"]) for s in r["slots"]]
           for r in rows]  # fmt: skip
    assert got == [[(e[0], e[1], e[2], e[3]) for e in want] for _, want in EXPECTED]
