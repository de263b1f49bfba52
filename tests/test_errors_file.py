"""``test`` writes the utterances it got wrong to errors.jsonl, beside its report."""

from __future__ import annotations

import json

from chatft.cli import main

from .conftest import cli_args


def test_test_writes_the_wrong_utterances(tiny_encoder, demo_small, tmp_path, capsys):
    main(
        [
            "fit",
            *cli_args(tiny_encoder, demo_small, tmp_path / "run", trainer__max_epochs=1, data__batch_size=16),
        ]
    )
    ckpt = tmp_path / "run/lightning_logs/version_0/checkpoints/last.ckpt"
    capsys.readouterr()
    main(["test", *cli_args(tiny_encoder, demo_small, tmp_path / "t"), "--ckpt_path", str(ckpt)])
    folder = tmp_path / "t"  # --trainer.default_root_dir: evaluation outputs go there
    report = json.loads((folder / "test_report.json").read_text())
    rows = [json.loads(line) for line in (folder / "errors.jsonl").read_text(encoding="utf-8").splitlines()]
    n = 23
    assert len(rows) == n - round(report["metrics"]["test/sent_acc"] * n)
    assert str(folder / "errors.jsonl") in capsys.readouterr().out  # the CLI prints every path it wrote

    words = (demo_small / "test/seq.in").read_text(encoding="utf-8").splitlines()
    tags = (demo_small / "test/seq.out").read_text(encoding="utf-8").splitlines()
    intents = (demo_small / "test/label").read_text(encoding="utf-8").splitlines()
    assert [r["line"] for r in rows] == sorted({r["line"] for r in rows})
    for r in rows:
        k = r["line"] - 1
        assert list(r) == ["line", "text", "gold_intent", "pred_intent", "gold_tags", "pred_tags"]
        assert (r["text"], r["gold_intent"], r["gold_tags"]) == (words[k], intents[k], tags[k].split())
        assert len(r["pred_tags"]) == len(r["gold_tags"])
        assert r["pred_intent"] != r["gold_intent"] or r["pred_tags"] != r["gold_tags"]
