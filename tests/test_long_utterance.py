"""An utterance far longer than ``max_length`` goes through fit, test and predict end to end."""

from __future__ import annotations

import json

from chatft.cli import main
from chatft.core.tags import bio_chunks

from .conftest import DEMO, cli_args, write_jointbert

N_REPEAT = 334  # 1002 words; with max_length 32 fewer than 30 of them fit
LONG_WORDS = ["fly", "to", "boston"] * N_REPEAT
LONG_TAGS = ["O", "O", "B-city"] * N_REPEAT


def _rows(split: str, n: int) -> list[tuple[str, str, str]]:
    lines = [
        (DEMO / split / name).read_text(encoding="utf-8").splitlines()[:n]
        for name in ("seq.in", "seq.out", "label")
    ]
    return list(zip(*lines, strict=True))


def test_utterance_longer_than_max_length_fits_tests_and_predicts(tiny_encoder, tmp_path, capsys):
    long_row = (" ".join(LONG_WORDS), " ".join(LONG_TAGS), "flight")
    splits = {split: [*_rows(split, 12), long_row] for split in ("train", "dev", "test")}
    data = write_jointbert(tmp_path / "data", splits)
    common = cli_args(tiny_encoder, data, data__max_length=32)
    main(["fit", *common, "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(tmp_path / "fit")])
    ckpt = tmp_path / "fit/lightning_logs/version_0/checkpoints/last.ckpt"
    assert ckpt.is_file()

    main(["test", *common, "--ckpt_path", str(ckpt), "--trainer.default_root_dir", str(tmp_path / "test")])
    report = json.loads((tmp_path / "test/test_report.json").read_text())
    gold_spans = sum(len(bio_chunks(tags.split())) for _, tags, _ in splits["test"])
    # Every gold span counts, including the ~330 in the part of the long utterance cut by truncation.
    assert sum(row["support"] for row in report["slots"]) == gold_spans
    assert sum(row["support"] for row in report["intents"]) == 13
    assert report["metrics"]["test/slot_recall"] < 0.5  # cut words are predicted O, so their spans are missed

    inputs = tmp_path / "inputs.txt"
    inputs.write_text("show me flights\n" + " ".join(LONG_WORDS) + "\n", encoding="utf-8")
    out = tmp_path / "predictions.jsonl"
    capsys.readouterr()
    main(
        [
            "predict",
            "--ckpt_path",
            str(ckpt),
            "--data.predict_file",
            str(inputs),
            "--predictions.output",
            str(out),
            "--data.max_length",
            "32",
            "--trainer.default_root_dir",
            str(tmp_path / "predict"),
        ]
    )
    short, long = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert not short["truncated"] and long["truncated"]
    assert long["words"] == LONG_WORDS and len(long["tags"]) == len(LONG_WORDS)
    assert all(long["text"][s["start"] : s["end"]] == s["text"] for s in long["slots"])
    # At most 30 words fit in 32 tokens with [CLS] and [SEP]; the rest are predicted O, one tag per word.
    assert all(t == "O" for t in long["tags"][30:])
