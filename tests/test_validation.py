"""Bad input stops the CLI before any training with one line: ``chatft: error: file:line: problem (hint)``.

Every case goes through ``chatft.cli.main`` exactly as ``python -m chatft fit ...`` would, and checks the
exit code, the file (and line) named in the message, and that no traceback is printed.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from chatft.cli import main
from chatft.core.formats import read_split
from chatft.training.datamodule import IntentSlotDataModule

from .conftest import DEMO, cli_args, write_jointbert

GOOD = [
    ("book a table", "O O B-thing", "book"),
    ("play some music", "O O B-genre", "play"),
    ("turn on the light", "O O O B-device", "home"),
]


def _jointbert(root: Path, **overrides: list[tuple[str, str, str]]) -> Path:
    splits = {"train": GOOD, "dev": GOOD, "test": GOOD}
    splits.update(overrides)
    return write_jointbert(root / "data", splits)


def _fail(capsys, *args: str, stage: str = "fit") -> str:
    """Run the CLI, expect exit code 2; return the one line it printed."""
    with pytest.raises(SystemExit) as exc:
        main([stage, *args])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1].startswith("chatft: error: ")
    assert sum(line.startswith("chatft: error:") for line in lines) == 1
    return lines[-1]


def _fit_fails(capsys, data: Path, tmp_path: Path, *extra: str) -> str:
    return _fail(capsys, *cli_args(data=data, root=tmp_path / "runs", quiet=False), *extra)


def test_missing_dev_split_for_fit(capsys, tmp_path):
    data = write_jointbert(tmp_path / "data", {"train": GOOD, "test": GOOD})
    line = _fit_fails(capsys, data, tmp_path)
    assert f"{data / 'dev'}: split 'dev' not found" in line
    assert "--trainer.limit_val_batches 0" in line  # the way to train without validation


def test_missing_test_split_for_test(capsys, tmp_path):
    data = write_jointbert(tmp_path / "data", {"train": GOOD, "dev": GOOD})
    line = _fail(
        capsys,
        *cli_args(data=data, root=tmp_path, config=None, quiet=False),
        "--ckpt_path",
        "none",
        stage="test",
    )
    assert f"{data / 'test'}: split 'test' not found" in line


def test_missing_file_in_a_split(capsys, tmp_path):
    data = _jointbert(tmp_path)
    (data / "dev" / "seq.out").unlink()
    assert f"{data / 'dev' / 'seq.out'}: file not found" in _fit_fails(capsys, data, tmp_path)


def test_empty_file(capsys, tmp_path):
    data = _jointbert(tmp_path)
    (data / "train" / "label").write_text("\n\n", encoding="utf-8")
    assert f"{data / 'train' / 'label'}: file is empty" in _fit_fails(capsys, data, tmp_path)


def test_line_counts_differ(capsys, tmp_path):
    data = _jointbert(tmp_path)
    (data / "train" / "label").write_text("book\nplay\n", encoding="utf-8")
    line = _fit_fails(capsys, data, tmp_path)
    assert f"{data / 'train' / 'label'}:3: line counts differ: seq.in 3, seq.out 3, label 2 lines" in line


def test_word_count_differs_from_tag_count(capsys, tmp_path):
    data = _jointbert(tmp_path, train=[GOOD[0], ("play some music", "O B-genre", "play")])
    line = _fit_fails(capsys, data, tmp_path)
    assert f"{data / 'train' / 'seq.out'}:2: 3 words but 2 tags" in line


def test_malformed_tag(capsys, tmp_path):
    data = _jointbert(tmp_path, train=[("book a table", "O O B_thing", "book")])
    line = _fit_fails(capsys, data, tmp_path)
    assert f"{data / 'train' / 'seq.out'}:1: malformed tag 'B_thing' (word 3;" in line


def test_empty_utterance(capsys, tmp_path):
    data = _jointbert(tmp_path, train=[GOOD[0], ("", "", "book"), GOOD[1]])
    assert f"{data / 'train' / 'seq.in'}:2: empty utterance" in _fit_fails(capsys, data, tmp_path)


def test_bad_line_in_dev_fails_before_training(capsys, tmp_path):
    data = _jointbert(tmp_path, dev=[GOOD[0], ("play music", "O X-genre", "play")])
    line = _fit_fails(capsys, data, tmp_path)
    assert f"{data / 'dev' / 'seq.out'}:2: malformed tag 'X-genre'" in line
    assert not (tmp_path / "runs").exists()  # nothing was started


def test_tsv_line_without_exactly_one_tab(capsys, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for split in ("train", "dev", "test"):
        (data / f"{split}.tsv").write_text("hello there\tgreet\nno tab here\nbye\tbye\n", encoding="utf-8")
    (data / "train.tsv").write_text("hello\tgreet\nbye\tbye\nok\tfine\textra\n", encoding="utf-8")
    line = _fit_fails(capsys, data, tmp_path)
    assert f"{data / 'train.tsv'}:3: expected exactly one tab (text<TAB>label), found 2" in line


def test_jsonl_invalid_json(capsys, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    good = json.dumps({"words": ["hi"], "tags": ["O"], "intent": "greet"})
    (data / "train.jsonl").write_text(f'{good}\n{{"words": ["a"],\n', encoding="utf-8")
    line = _fit_fails(capsys, data, tmp_path)
    assert f"{data / 'train.jsonl'}:2: invalid JSON (" in line


def test_jsonl_missing_key(capsys, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    good = json.dumps({"words": ["hi"], "tags": ["O"], "intent": "greet"})
    (data / "train.jsonl").write_text(
        f"{good}\n{json.dumps({'words': ['a'], 'tags': ['O']})}\n", encoding="utf-8"
    )
    line = _fit_fails(capsys, data, tmp_path)
    assert f'{data / "train.jsonl"}:2: missing key "intent"' in line


def test_bytes_that_are_not_utf8(capsys, tmp_path):
    data = _jointbert(tmp_path)
    (data / "train" / "seq.in").write_bytes(b"book a table\nplay some m\xe9sic\nturn on the light\n")
    line = _fit_fails(capsys, data, tmp_path)
    assert f"{data / 'train' / 'seq.in'}:2: bytes that are not UTF-8 (byte 0xe9;" in line


def test_several_bad_lines_report_the_first_few_and_the_total(capsys, tmp_path):
    rows = [("a b", "O", "x")] * 7 + [GOOD[0]]
    data = _jointbert(tmp_path, train=rows)
    line = _fit_fails(capsys, data, tmp_path)
    seq_out = data / "train" / "seq.out"
    assert f"7 problems; first: {seq_out}:1: 2 words but 1 tags" in line
    assert f"{seq_out}:5:" in line and f"{seq_out}:6:" not in line
    assert line.endswith("(and 2 more)")


def test_crlf_and_bom_are_accepted(tmp_path):
    data = _jointbert(tmp_path)
    for name in ("seq.in", "seq.out", "label"):
        path = data / "train" / name
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    assert read_split(data, "train") == read_split(data, "dev")


def test_orphan_inside_tags_are_accepted_and_reported_with_their_place(tmp_path, caplog):
    rows = [GOOD[0], ("fly to new york", "O O I-city I-city", "fly"), ("a b", "B-x I-y", "fly")]
    data = _jointbert(tmp_path, train=rows)
    with caplog.at_level(logging.WARNING, logger="chatft"):
        dm = IntentSlotDataModule(str(data))
    assert "I-city" in dm.slot_labels
    assert (
        f"train: 2 I- tags follow neither B- nor I- of their type (first: {data / 'train' / 'seq.out'}:2, "
        "word 3)" in caplog.text
    )


def test_data_dir_in_no_known_format_lists_what_was_looked_for(capsys, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.csv").write_text("a,b\n", encoding="utf-8")
    line = _fit_fails(capsys, tmp_path / "data", tmp_path)
    assert "no known data format found; looked for train/seq.in (+ seq.out, label) [jointbert]" in line


def test_encoder_folder_that_does_not_exist(capsys, tmp_path):
    data = _jointbert(tmp_path)
    line = _fit_fails(capsys, data, tmp_path, "--model.encoder", "/nonexistent/encoder")
    assert line.startswith("chatft: error: cannot load encoder '/nonexistent/encoder': no such folder")
    assert "point --model.encoder at a local folder" in line


def test_encoder_name_that_is_a_typo_of_a_known_one(capsys, tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the hub lookup fails at once, as on a machine without it
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    data = _jointbert(tmp_path)
    line = _fit_fails(capsys, data, tmp_path, "--model.encoder", "all-mpnet-base")
    assert line.startswith(
        "chatft: error: cannot load encoder 'all-mpnet-base': no such folder and not a known encoder name; "
        "did you mean --model.encoder all-mpnet-base-v2? (point --model.encoder at a local folder"
    )


def test_hub_encoder_not_available_offline(capsys, tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    data = _jointbert(tmp_path)
    line = _fit_fails(capsys, data, tmp_path, "--model.encoder", "no-such-org/no-such-model")
    assert line.startswith("chatft: error: cannot load encoder 'no-such-org/no-such-model':")
    assert (
        "point --model.encoder at a local folder" in line and "hf download no-such-org/no-such-model" in line
    )


def _fake_checkpoint(path: Path, intents: list[str], slots: list[str], encoder: str) -> Path:
    """A file shaped like a chatft checkpoint (enough to get to the label check)."""
    hparams = {"encoder": encoder, "intent_labels": intents, "slot_labels": slots}
    torch.save({"state_dict": {"model.w": torch.zeros(1)}, "hyper_parameters": hparams}, path)
    return path


def test_checkpoint_trained_on_other_labels(capsys, tmp_path, tiny_encoder):
    data = _jointbert(tmp_path)
    ckpt = _fake_checkpoint(
        tmp_path / "other.ckpt", ["<unk>", "book", "weather"], ["<unk>", "O"], tiny_encoder
    )
    line = _fail(
        capsys,
        "--data.data_dir",
        str(data),
        "--model.encoder",
        tiny_encoder,
        "--ckpt_path",
        str(ckpt),
        "--trainer.default_root_dir",
        str(tmp_path / "runs"),
        stage="test",
    )
    # <unk> is not counted: the checkpoint knows book and weather, the data book, home and play.
    assert line.startswith(f"chatft: error: {ckpt}: trained on 2 intents but {data}'s train split gives 3 ")
    assert "only in the checkpoint: ['weather']; only in the data: ['home', 'play']" in line


def test_checkpoint_that_does_not_exist(capsys, tmp_path):
    data = _jointbert(tmp_path)
    line = _fail(
        capsys, "--data.data_dir", str(data), "--ckpt_path", str(tmp_path / "nope.ckpt"), stage="test"
    )
    assert (
        line
        == f"chatft: error: {tmp_path / 'nope.ckpt'}: checkpoint not found (give a .ckpt file written by `chatft fit`)"
    )


def test_ckpt_path_last_without_a_checkpoint_for_test(capsys, tmp_path):
    data = _jointbert(tmp_path)
    root = tmp_path / "runs"
    line = _fail(
        capsys,
        "--data.data_dir",
        str(data),
        "--ckpt_path",
        "last",
        "--trainer.default_root_dir",
        str(root),
        stage="test",
    )
    assert line.startswith(f"chatft: error: --ckpt_path last: no last.ckpt under {root}/lightning_logs/")


SENTIMENT = [(f"review number {i} was {'great' if i % 2 else 'awful'}", str(i % 2)) for i in range(24)]


def _tsv(tmp_path: Path, rows: list[tuple[str, str]], header: str | None = None) -> Path:
    data = tmp_path / "data"
    data.mkdir(parents=True, exist_ok=True)
    body = "".join(f"{a}\t{b}\n" for a, b in rows)
    for split in ("train", "dev", "test"):
        (data / f"{split}.tsv").write_text(body, encoding="utf-8")
    if header is not None:
        (data / "train.tsv").write_text(header + "\n" + body, encoding="utf-8")
    return data


def test_tsv_header_row_is_refused_with_the_fix(capsys, tmp_path):
    data = _tsv(tmp_path, SENTIMENT, header="text\tlabel")
    line = _fit_fails(capsys, data, tmp_path)
    assert line == (
        f"chatft: error: {data / 'train.tsv'}:1: looks like a header row ('text', label 'label' never occurs "
        "again): remove it (every line is text<TAB>label, no header)"
    )


def test_tsv_swapped_columns_are_refused_with_the_fix(capsys, tmp_path):
    data = _tsv(tmp_path, [(label, text) for text, label in SENTIMENT])
    line = _fit_fails(capsys, data, tmp_path)
    assert line == (
        f"chatft: error: {data / 'train.tsv'}: labels are nearly all unique (24 classes in 24 utterances): "
        "are the columns swapped? expected text<TAB>label"
    )


def test_jsonl_intent_holding_the_text_is_refused(capsys, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    rows = [{"words": [label], "intent": text} for text, label in SENTIMENT]
    (data / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    line = _fit_fails(capsys, data, tmp_path)
    assert line == (
        f"chatft: error: {data / 'train.jsonl'}: labels are nearly all unique (24 classes in 24 utterances): "
        "is the intent column holding the text? every class needs several examples"
    )


def test_label_checks_leave_small_and_legit_data_alone(tmp_path):
    # Fewer than 20 utterances with one class each, a first label that recurs, a dev split with one
    # utterance per intent (single-word intent names), and the shipped demo data: all read as before.
    few = _tsv(tmp_path / "few", [(f"text {i}", f"intent{i}") for i in range(19)])
    assert len(read_split(few, "train")) == 19
    recurring = _tsv(tmp_path / "rec", [("label", "label"), ("text", "label")] + SENTIMENT)
    assert read_split(recurring, "train")[0].intent == "label"
    one_each = _tsv(tmp_path / "one", [(f"please do thing {i}", f"do_{i}") for i in range(30)])
    assert len(read_split(one_each, "dev")) == 30
    assert [len(read_split(DEMO, s)) for s in ("train", "dev", "test")] == [1200, 200, 300]
