"""benchmarks/setfit_head.py: SetFit's pair stage, then a logistic head on the frozen encoder's embeddings."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from .conftest import write_jointbert

pytest.importorskip("sklearn")
REPO = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("setfit_head", REPO / "benchmarks" / "setfit_head.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _data(folder: Path) -> Path:
    train = [("book a flight", "O O O", "book")] * 3 + [("what is the weather", "O O O O", "weather")] * 3
    dev = [
        ("book a flight", "O O O", "book"),
        ("what is the weather", "O O O O", "weather"),
        ("play some music", "O O O", "music"),  # an intent train does not have: always wrong
    ]
    return write_jointbert(folder, {"train": train, "dev": dev, "test": dev[:2]})


def test_pair_stage_then_logistic_heads_per_c(tiny_encoder, tmp_path):
    setfit = _script()
    out = tmp_path / "r.json"
    assert (
        setfit.main(
            [
                "--data",
                str(_data(tmp_path / "d")),
                "--encoder",
                tiny_encoder,
                "--steps",
                "2",
                "--batch-size",
                "4",
                "--C",
                "1",
                "100",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    result = json.loads(out.read_text())
    assert [row["C"] for row in result["rows"]] == [1.0, 100.0]
    first, last10 = result["losses_first_last10"]
    assert len(first) == 1 and len(last10) == 2  # 2 steps of the pair stage ran
    for row in result["rows"]:
        # Train utterances repeat verbatim in dev/test, so a separable head gets both seen intents right; the
        # unseen dev intent is counted wrong (label -1), never dropped.
        assert row["dev_acc"] == pytest.approx(2 / 3)
        assert row["test_acc"] == 1.0


def test_embeddings_are_unit_vectors_independent_of_batching(tiny_encoder, tmp_path):
    from chatft.core.formats import read_split
    from chatft.model.encoders import load_encoder, load_tokenizer

    setfit = _script()
    tokenizer, encoder = load_tokenizer(tiny_encoder), load_encoder(tiny_encoder)
    dev = read_split(_data(tmp_path / "d"), "dev")
    features, labels = setfit.tokenized(tokenizer, dev, 32, {"book": 0, "weather": 1})
    assert labels.tolist() == [0, 1, -1]
    together = setfit.embed(encoder, features, tokenizer.pad_token_id)
    alone = np.concatenate([setfit.embed(encoder, [f], tokenizer.pad_token_id) for f in features])
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-6)
    assert np.allclose(together, alone, atol=1e-5)  # padding never changes an utterance's embedding


def test_a_missing_or_broken_data_folder_is_one_line(tmp_path, capsys):
    setfit = _script()
    with pytest.raises(SystemExit) as exc:
        setfit.main(["--data", str(tmp_path / "nope")])
    assert exc.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"setfit_head.py: error: --data {tmp_path / 'nope'}: no such folder (a data folder with train, dev and "
        "test splits)"
    )
    data = _data(tmp_path / "d")
    (data / "dev" / "label").write_text("book\n")  # 3 utterances, 1 intent
    with pytest.raises(SystemExit) as exc:
        setfit.main(["--data", str(data)])
    assert exc.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"setfit_head.py: error: {data / 'dev' / 'label'}:2: line counts differ: seq.in 3, seq.out 3, label 1 "
        "lines; label ends first (line k of the three files is utterance k: add the missing lines or remove the "
        "extra ones)"
    )
