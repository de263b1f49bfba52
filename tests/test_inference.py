"""Inference end to end on a briefly trained tiny BERT: predict (CLI), Predictor, ONNX export + parity, chat.

One model is trained once for the whole module (a few seconds); CRF and intent-only variants are derived
from its checkpoint by editing the state dict, not by training again.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from chatft.cli import main
from chatft.core.text import split_words
from chatft.dialogue.tracker import DialoguePolicy

from .conftest import QUIET, cli_args, demo_subset
from .helpers import PREDICTION_KEYS

REPO = Path(__file__).resolve().parents[1]
LONG = " ".join(["please book a flight from boston to new york"] * 20)
EXTRA = ["", "Book a flight from Boston to St. Louis, tomorrow?", '"play abba" (now)!', LONG]


def _run(*args: str) -> None:
    main([*args, *QUIET])


@pytest.fixture(scope="module")
def trained(tiny_encoder, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("inference")
    data = demo_subset(root / "data")
    args = dict(data__batch_size=16, model__learning_rate="3e-4", model__head_learning_rate="3e-3")
    # The default fallback would send most of this tiny model's answers to nlu_fallback (its confidences stay
    # under 0.3): these tests check predict/chat mechanics, so it is off (tests/test_fallback.py covers it).
    args["oos__fallback"] = False
    # A softmax slot head (the demo recipe has a CRF): the ONNX tests build their CRF variant from it.
    args["model__use_crf"] = False
    main(["fit", *cli_args(tiny_encoder, data, root / "run", trainer__max_epochs=6, **args)])
    ckpt = root / "run/lightning_logs/version_0/checkpoints/last.ckpt"
    inputs = root / "inputs.txt"
    lines = (data / "test/seq.in").read_text(encoding="utf-8").splitlines()[:8] + EXTRA
    inputs.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"root": root, "data": data, "ckpt": ckpt, "inputs": inputs, "lines": lines}


@pytest.fixture(scope="module")
def cli_predictions(trained) -> tuple[list[dict], str]:
    """``predict`` with nothing but the checkpoint and a raw text file (labels and tokenizer from the checkpoint)."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        _run(
            "predict",
            "--ckpt_path",
            str(trained["ckpt"]),
            "--data.predict_file",
            str(trained["inputs"]),
            "--trainer.default_root_dir",
            str(trained["root"] / "pred"),
        )
    path = trained["root"] / "pred/predictions.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return rows, out.getvalue()


# ---- predict ---------------------------------------------------------------------------------------------
def test_predict_writes_one_object_per_line_in_order_and_prints_the_path(trained, cli_predictions):
    rows, stdout = cli_predictions
    path = trained["root"] / "pred/predictions.jsonl"
    assert stdout.strip().splitlines()[-2:] == [f"predictions: {path}", f"wrote: {path.parent}/config.yaml"]
    assert [r["text"] for r in rows] == trained["lines"]
    labels = torch.load(trained["ckpt"], weights_only=True)["hyper_parameters"]["intent_labels"]
    empty = rows[len(trained["lines"]) - len(EXTRA)]
    # A blank line is the empty prediction README promises: no intent, no ranking, flagged.
    assert empty == {"text": "", "words": [], "tags": [], "intent": None, "intent_confidence": 0.0,
                     "intents_top_k": [], "slots": [], "truncated": False, "out_of_scope": False,
                     "empty": True}  # fmt: skip
    for row in rows:
        assert list(row) == PREDICTION_KEYS
        if row is empty:
            continue
        assert row["empty"] is False
        assert row["words"] == [w for w, _, _ in split_words(row["text"])]
        assert len(row["tags"]) == len(row["words"])
        assert all(row["text"][s["start"] : s["end"]] == s["text"] for s in row["slots"])
        assert all(0.0 <= s["confidence"] <= 1.0 for s in row["slots"])
        if row["empty"]:
            continue  # checked below
        top = row["intents_top_k"]
        assert len(top) == 3 and [p for _, p in top] == sorted((p for _, p in top), reverse=True)
        assert row["intent"] == top[0][0] and row["intent_confidence"] == top[0][1]
        assert row["intent"] in labels and row["intent"] != "<unk>"
    assert [r["truncated"] for r in rows] == [False] * (len(rows) - 1) + [True]
    assert rows[-1]["tags"][-10:] == ["O"] * 10  # words beyond max_length are tagged O, as test scores them


def test_predict_tags_score_like_test(trained, tmp_path):
    """Acceptance (fast version): seqeval on predict's word tags == test's slot_f1; same intent accuracy."""
    from seqeval.metrics import f1_score, precision_score, recall_score

    data, ckpt = trained["data"], str(trained["ckpt"])
    common = ["--config", str(REPO / "configs/demo.yaml"), "--ckpt_path", ckpt, "--data.data_dir", str(data)]
    _run("test", *common, "--trainer.default_root_dir", str(tmp_path / "t"))
    metrics = json.loads((tmp_path / "t/test_report.json").read_text())["metrics"]
    out = tmp_path / "p.jsonl"
    _run(
        "predict",
        *common,
        "--data.predict_file",
        str(data / "test/seq.in"),
        "--predictions.output",
        str(out),
        "--predictions.top_k",
        "5",
        "--trainer.default_root_dir",
        str(tmp_path / "p"),
    )
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    gold_tags = [line.split() for line in (data / "test/seq.out").read_text().splitlines()]
    gold_intents = (data / "test/label").read_text().split()
    pred_tags = [r["tags"] for r in rows]
    assert len(rows) == len(gold_tags) == 23 and all(len(r["intents_top_k"]) == 5 for r in rows)
    assert any(t != "O" for tags in pred_tags for t in tags)  # the comparison covers predicted spans
    assert f1_score(gold_tags, pred_tags) == pytest.approx(metrics["test/slot_f1"], abs=1e-6)
    assert precision_score(gold_tags, pred_tags) == pytest.approx(metrics["test/slot_precision"], abs=1e-6)
    assert recall_score(gold_tags, pred_tags) == pytest.approx(metrics["test/slot_recall"], abs=1e-6)
    acc = sum(r["intent"] == g for r, g in zip(rows, gold_intents, strict=True)) / len(rows)
    assert acc == pytest.approx(metrics["test/intent_acc"], abs=1e-6)


def test_writer_gathers_ranks_in_input_order(monkeypatch, tmp_path):
    """Under DDP each rank predicts a shard; rank 0 writes all rows sorted by input index, once each."""
    from types import SimpleNamespace

    from chatft.core.decoding import Decoded
    from chatft.core.oos import OOSState
    from chatft.training.prediction_writer import JsonlPredictionWriter

    def row(i):
        return i, Decoded(1, [0.0, 1.0], ["O"], [1.0], False)

    rank0 = [[row(3), row(0)], [row(2)]]
    rank1_rows = [row(4), row(1), row(2)]  # 2 repeated, as a padding sampler would

    def all_gather_object(out, obj):
        out[0], out[1] = obj, rank1_rows

    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.distributed, "all_gather_object", all_gather_object)
    texts = [f"w{i}" for i in range(5)]
    trainer = SimpleNamespace(
        world_size=2,
        is_global_zero=True,
        log_dir=str(tmp_path),
        default_root_dir=str(tmp_path),
        strategy=SimpleNamespace(barrier=lambda name=None: None),
        datamodule=SimpleNamespace(predict_inputs=[(t, split_words(t)) for t in texts]),
    )
    module = SimpleNamespace(intent_vocab=SimpleNamespace(labels=("<unk>", "a")), oos_state=OOSState())
    writer = JsonlPredictionWriter()
    writer.write_on_epoch_end(trainer, module, rank0, [])
    rows = [json.loads(line) for line in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    assert [r["text"] for r in rows] == texts


# ---- Predictor ---------------------------------------------------------------------------------------------
def test_predictor_equals_cli_predict(trained, cli_predictions):
    from chatft import Predictor

    rows, _ = cli_predictions
    predictor = Predictor.from_checkpoint(str(trained["ckpt"]), device="cpu", max_length=128)
    preds = predictor.batch(trained["lines"], batch_size=4)
    for pred, row in zip(preds, rows, strict=True):
        d = pred.to_dict()
        assert {k: d[k] for k in ("text", "words", "tags", "intent", "truncated")} == {
            k: row[k] for k in ("text", "words", "tags", "intent", "truncated")
        }
        assert d["intent_confidence"] == pytest.approx(row["intent_confidence"], abs=1e-5)
        assert [s["value"] for s in d["slots"]] == [s["value"] for s in row["slots"]]
    single = predictor(trained["lines"][1])
    assert single.tags == preds[1].tags and single.intent == preds[1].intent
    blank = predictor(" \t ")
    assert blank.empty and (blank.intent, blank.words, blank.slots, blank.intents_top_k) == (None, [], [], [])


def test_predictor_needs_nothing_but_the_checkpoint(trained, tmp_path):
    from chatft import Predictor
    from chatft.model.assets import ASSETS_KEY

    ckpt = torch.load(trained["ckpt"], weights_only=True)
    assert set(ckpt[ASSETS_KEY]) == {"version", "tokenizer_files", "encoder_config", "max_length"}
    assert ckpt[ASSETS_KEY]["max_length"] == 64  # from configs/demo.yaml
    ckpt["hyper_parameters"]["encoder"] = str(tmp_path / "no-such-encoder")
    moved = tmp_path / "moved.ckpt"
    torch.save(ckpt, moved)
    text = "book a flight from boston to denver tomorrow"
    want = Predictor.from_checkpoint(str(trained["ckpt"]))(text)
    got = Predictor.from_checkpoint(str(moved))(text)
    assert got.tags == want.tags and got.intent == want.intent
    assert got.intent_confidence == pytest.approx(want.intent_confidence, abs=1e-6)


def test_checkpoint_without_embedded_assets_uses_its_encoder_and_run_config(trained, tmp_path):
    """Older checkpoints: tokenizer and config from hparams.encoder, max_length from the run's config.yaml."""
    from chatft import Predictor
    from chatft.model.assets import ASSETS_KEY

    ckpt = torch.load(trained["ckpt"], weights_only=True)
    del ckpt[ASSETS_KEY]
    folder = tmp_path / "version_0" / "checkpoints"
    folder.mkdir(parents=True)
    torch.save(ckpt, folder / "old.ckpt")
    (tmp_path / "version_0" / "config.yaml").write_text("data:\n  max_length: 40\n")
    old = Predictor.from_checkpoint(str(folder / "old.ckpt"))
    assert old.max_length == 40
    text = "book a flight from boston to denver tomorrow"
    assert old(text).tags == Predictor.from_checkpoint(str(trained["ckpt"]))(text).tags


def test_max_length_beyond_the_encoders_positions_is_capped_not_a_crash(trained):
    from chatft import Predictor

    predictor = Predictor.from_checkpoint(str(trained["ckpt"]), max_length=100_000)
    assert predictor.max_length == 128  # the tiny BERT's max_position_embeddings
    result = predictor(" ".join(["flights to boston"] * 300))
    assert result.truncated and len(result.tags) == 900


def test_bad_checkpoint_is_a_one_line_error(tmp_path, capsys):
    bad = tmp_path / "bad.ckpt"
    bad.write_text("not a checkpoint")
    for args in (["export", "--ckpt_path", str(bad), "--output", str(tmp_path / "x")],
                 ["chat", "--ckpt_path", str(tmp_path / "missing.ckpt"), "--input", str(bad)]):  # fmt: skip
        with pytest.raises(SystemExit) as exc:
            main(args)
        assert exc.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("chatft: error:") and "\n" not in err


# ---- ONNX --------------------------------------------------------------------------------------------------
def _variant(trained, tmp_path: Path, kind: str) -> Path:
    """The trained checkpoint as is, with a (random) CRF added, or reduced to intent only."""
    if kind == "softmax":
        return trained["ckpt"]
    from chatft.core.tags import decoding_transitions

    ckpt = torch.load(trained["ckpt"], weights_only=True)
    hp, state = ckpt["hyper_parameters"], ckpt["state_dict"]
    if kind == "crf":
        hp["use_crf"] = True
        start, trans = (torch.from_numpy(a) for a in decoding_transitions(hp["slot_labels"]))
        n = len(hp["slot_labels"])
        g = torch.Generator().manual_seed(0)
        state.update(
            {
                "model.crf.start_transitions": torch.randn(n, generator=g),
                "model.crf.end_transitions": torch.randn(n, generator=g),
                "model.crf.transitions": torch.randn(n, n, generator=g),
                "model.crf.allowed_start": start,
                "model.crf.allowed_trans": trans,
            }
        )
    else:
        hp["slot_labels"] = []
        for key in [k for k in state if k.startswith("model.slot_head")]:
            del state[key]
    path = tmp_path / f"{kind}.ckpt"
    torch.save(ckpt, path)
    return path


@pytest.mark.parametrize("kind", ["softmax", "crf", "intent_only"])
def test_onnx_export_parity_with_pytorch(kind, trained, tmp_path, capsys):
    from chatft import OnnxPredictor, Predictor

    ckpt = str(_variant(trained, tmp_path, kind))
    out = tmp_path / "onnx"
    main(["export", "--ckpt_path", ckpt, "--output", str(out), "--max_length", "32"])
    assert capsys.readouterr().out.startswith(f"exported: {out}")
    expected = {"model.onnx", "intents.json", "decoding.json", "manifest.json", "tokenizer", "oos.json"}
    expected |= {"slot_tags.json"} if kind != "intent_only" else set()
    assert {p.name for p in out.iterdir()} == expected
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["use_crf"] is (kind == "crf") and manifest["max_length"] == 32
    assert manifest["check"]["max_abs_logit_diff_vs_pytorch"] < 1e-4

    texts = trained["lines"] + [line.upper() for line in trained["lines"][:4]]
    torch_preds = Predictor.from_checkpoint(ckpt, max_length=32).batch(texts, batch_size=5)
    onnx = OnnxPredictor(out)
    onnx_preds = onnx.batch(texts, batch_size=3)  # other batch sizes: other padding, same results
    assert any(p.truncated for p in onnx_preds)
    for o, t in zip(onnx_preds + [onnx(texts[2])], torch_preds + [torch_preds[2]], strict=True):
        assert (o.words, o.tags, o.intent, o.truncated) == (t.words, t.tags, t.intent, t.truncated)
        assert [label for label, _ in o.intents_top_k] == [label for label, _ in t.intents_top_k]
        assert [p for _, p in o.intents_top_k] == pytest.approx([p for _, p in t.intents_top_k], abs=1e-4)
        assert [(s.label, s.start, s.end) for s in o.slots] == [(s.label, s.start, s.end) for s in t.slots]
        assert [s.confidence for s in o.slots] == pytest.approx([s.confidence for s in t.slots], abs=1e-4)
    blank = onnx("   ")
    assert blank.empty and (blank.intent, blank.words, blank.slots) == (None, [], [])
    assert [p.empty for p in onnx_preds] == [t.strip() == "" for t in texts]
    if kind == "intent_only":
        assert all(p.tags == [] and p.slots == [] for p in onnx_preds)
    else:
        assert any(p.slots for p in onnx_preds)


def test_onnx_predictor_imports_neither_lightning_nor_torch(trained, tmp_path):
    out = tmp_path / "onnx"
    main(["export", "--ckpt_path", str(trained["ckpt"]), "--output", str(out)])
    code = (
        "import sys\n"
        "from chatft import OnnxPredictor\n"
        f"p = OnnxPredictor({str(out)!r})\n"
        "r = p('book a flight to denver')\n"
        "print(r.intent, 'lightning' in sys.modules, 'torch' in sys.modules, 'transformers' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert result.stdout.split()[1:] == ["False", "False", "False"]


def test_word_tokenizer_equals_the_hf_tokenizer(tiny_encoder, tiny_tokenizer, tmp_path):
    """The tokenizers-only adapter gives the same features as transformers' tokenizer, truncation included."""
    from chatft.core.features import tokenize_examples
    from chatft.serving.onnx_predictor import WordTokenizer

    tiny_tokenizer.save_pretrained(tmp_path)
    adapter = WordTokenizer(
        tmp_path / "tokenizer.json", tiny_tokenizer.unk_token, tiny_tokenizer.pad_token_id
    )
    lines = [
        *(REPO / "chatft/resources/demo/dev/seq.in").read_text().splitlines()[:100],
        "",
        "\u200b x",
        LONG,
    ]
    words = [[w for w, _, _ in split_words(line)] for line in lines]
    for max_length in (8, 64):
        want = tokenize_examples(tiny_tokenizer, words, max_length)
        got = tokenize_examples(adapter, words, max_length)
        assert got == want


# ---- chat ----------------------------------------------------------------------------------------------------
def test_chat_file_mode_with_a_real_checkpoint(trained, tmp_path, capsys):
    turns = tmp_path / "turns.txt"
    turns.write_text("i want to fly from boston to denver\non friday\n\nhello\n", encoding="utf-8")
    main(["chat", "--ckpt_path", str(trained["ckpt"]), "--requirements", "demo", "--input", str(turns)])
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    policy = DialoguePolicy.load("demo")
    assert [r["turn"] for r in records] == [1, 2, 3]
    assert [r["text"] for r in records] == ["i want to fly from boston to denver", "on friday", "hello"]
    assert records[0]["new_frame"] is True and records[2]["new_frame"] is True  # blank line: new dialogue
    for r in records:
        assert set(r) == {"turn", "text", "intent", "intent_confidence", "out_of_scope", "slots", "new_frame",
                          "state", "missing", "response"}  # fmt: skip
        aliases = policy.intent(r["state"]["intent"]).aliases
        last = {aliases.get(s["label"], s["label"]): s["value"] for s in r["slots"]}
        assert all(r["state"]["frame"][k] == v for k, v in last.items())
        assert isinstance(r["response"], str) and r["response"]


# ---- the CLI without torch -----------------------------------------------------------------------------------
#: ``python -c BLOCKED args...`` runs ``python -m chatft args...`` in an interpreter where torch, Lightning and
#: transformers cannot be imported (``sys.modules[name] = None`` makes ``import name`` raise ImportError), as on
#: a machine that has only onnxruntime, tokenizers and numpy.
BLOCKED = (
    "import runpy, sys\n"
    "for name in ('torch', 'lightning', 'pytorch_lightning', 'lightning_fabric', 'transformers', 'torchmetrics'):\n"
    "    sys.modules[name] = None\n"
    "sys.argv = ['chatft', *sys.argv[1:]]\n"
    "runpy.run_module('chatft', run_name='__main__', alter_sys=True)\n"
)


def _without_torch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCKED, *args], cwd=REPO, capture_output=True, text=True)


def test_export_and_chat_take_config_files_and_chat_onnx_runs_without_torch(trained, tmp_path, capsys):
    import io

    from chatft.dialogue.tracker import DialogueTracker
    from chatft.serving.chat import run_file
    from chatft.serving.onnx_predictor import OnnxPredictor

    out = tmp_path / "onnx"
    export_config = tmp_path / "export.yaml"
    export_config.write_text(f"ckpt_path: {trained['ckpt']}\noutput: {out}\n", encoding="utf-8")
    main(["export", "--config", str(export_config)])
    assert capsys.readouterr().out.startswith(f"exported: {out} ")
    turns = tmp_path / "turns.txt"
    turns.write_text("i want to fly from boston to denver\non friday\n\nhello\n", encoding="utf-8")
    chat_config = tmp_path / "chat.yaml"
    chat_config.write_text(f"onnx: {out}\nrequirements: demo\ninput: {turns}\n", encoding="utf-8")

    proc = _without_torch("chat", "--config", str(chat_config))
    assert proc.returncode == 0, proc.stderr
    want = io.StringIO()
    lines = turns.read_text(encoding="utf-8").splitlines()
    run_file(OnnxPredictor(out), DialogueTracker(DialoguePolicy.load("demo")), lines, want)
    assert proc.stdout == want.getvalue() and len(proc.stdout.splitlines()) == 3

    help_ = _without_torch("--help")
    assert help_.returncode == 0 and help_.stdout.startswith("usage: python -m chatft COMMAND")
    # The shim does block torch: a command that needs it fails to import, in one line naming the extra.
    blocked = _without_torch("export", "--help")
    assert (blocked.returncode, blocked.stderr) == (
        2,
        "chatft: error: python -m chatft export needs torch, which is not installed: pip install 'chatft[onnx]'\n",
    )
