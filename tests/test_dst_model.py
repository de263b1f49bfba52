"""The learned tracker end to end on a tiny random BERT: shapes, fit/test/predict through the CLI, and DDP.

The fixture (``tests/dst_fixture.py``) is a tiny restaurant domain with the cases the tracker must handle: a
value said by the user, ``dontcare``, a confirmed offer ("do you want cheap food ?" "yes"), a correction ("no ,
expensive please") and a request. DDP: 2 CPU processes (gloo) fit, validate and test; the same checkpoint is
then evaluated by 1 process, and every metric, the per-slot report and ``errors.jsonl`` must be identical (the
dev/test splits hold 7 dialogues: shards of 4 and 3).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import QUIET, REPO
from tests.dst_fixture import write_dialogue_folder
from tests.test_ddp import clean_env

WOZ_CONFIG = REPO / "configs" / "woz.yaml"


def _args(encoder: str, data: Path, root: Path, epochs: int = 6) -> list[str]:
    return [
        "--config",
        str(WOZ_CONFIG),
        "--model.encoder",
        encoder,
        "--data.data_dir",
        str(data),
        "--trainer.default_root_dir",
        str(root),
        "--trainer.max_epochs",
        str(epochs),
        "--data.batch_size",
        "8",
        "--data.eval_batch_size",
        "2",
        "--model.learning_rate",
        "3e-3",
        "--model.head_learning_rate",
        "1e-2",
        *QUIET,
    ]


def test_forward_shapes(tiny_encoder, tiny_tokenizer):
    import torch

    from chatft.dialogue.state_labels import GATES
    from chatft.dialogue.turn_input import encode_turns
    from chatft.model.tracker import NEG, build_tracker

    model = build_tracker(tiny_encoder, 3, len(GATES), 4, 2, pretrained=False).eval()
    turns = [("i want thai food", "", {}), ("yes", "do you want cheap food ?", {"food": "thai"})]
    enc = encode_turns(tiny_tokenizer, turns, ["food", "area", "price range"], 64)
    with torch.no_grad():
        gates, start, end, values, requests = model(
            *(torch.from_numpy(a) for a in (enc.input_ids, enc.attention_mask, enc.token_type_ids))
        )
    b, t = enc.input_ids.shape
    assert gates.shape == (2, 3, len(GATES))
    assert start.shape == end.shape == (2, 3, t)
    assert values.shape == (2, 3, 4) and requests.shape == (2, 2)
    pad = torch.from_numpy(enc.attention_mask == 0)
    assert bool((start[pad[:, None, :].expand_as(start)] == NEG).all())
    # the user's words are segment 1, the system's segment 2 ("do you want cheap food ?")
    system = [
        enc.texts[1][2][a:z] for (a, z), s in zip(enc.offsets[1], enc.segments[1], strict=True) if s == 2
    ]
    assert "".join(system).replace("#", "") == "doyouwantcheapfood?"


def test_fit_test_predict_through_the_cli(tiny_encoder, tmp_path):
    from chatft.cli import main

    data = write_dialogue_folder(tmp_path / "data")
    root = tmp_path / "run"
    main(["fit", *_args(tiny_encoder, data, root)])
    ckpts = sorted((root / "lightning_logs/version_0/checkpoints").glob("*.ckpt"))
    assert [p.name for p in ckpts][-1] == "last.ckpt" and ckpts[0].name.startswith("best-")
    last = root / "lightning_logs/version_0/checkpoints/last.ckpt"
    out = tmp_path / "eval"  # evaluations write where --trainer.default_root_dir says
    main(["test", *_args(tiny_encoder, data, out), "--ckpt_path", str(last)])
    report = json.loads((out / "dst_report.json").read_text())
    assert report["turns"] == 7 * 4
    assert [row["slot"] for row in report["slots"]] == ["food", "area", "price range"]
    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert len(errors) == report["dialogues_with_errors"]
    wrong_turns = sum(bool(t["wrong"]) for e in errors for t in e["turns"])
    assert report["metrics"]["test/joint_goal_acc"] == pytest.approx(1 - wrong_turns / 28, abs=1e-12)
    main(
        [
            "predict",
            *_args(tiny_encoder, data, out),
            "--ckpt_path",
            str(last),
            "--data.predict_split",
            "test",
        ]
    )
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == sorted(f"d{i}" for i in range(31, 38))
    assert all(len(r["turns"]) == 4 for r in rows)


def test_ddp_two_processes_equal_one(tiny_encoder, tmp_path):
    from chatft.training.tracker_cli import tracker_cli

    data = write_dialogue_folder(tmp_path / "data")
    out = tmp_path / "ddp.json"
    cmd = [
        sys.executable,
        str(REPO / "tests/dst_ddp_run.py"),
        str(out),
        *_args(tiny_encoder, data, tmp_path / "ddp", epochs=4),
        "--config",
        str(REPO / "configs/ddp-cpu.yaml"),
    ]
    proc = subprocess.run(cmd, cwd=REPO, env=clean_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    ddp = json.loads(out.read_text())
    assert ddp["world_size"] == 2
    args = [
        *_args(tiny_encoder, data, tmp_path / "one"),
        "--trainer.devices",
        "1",
        "--trainer.strategy",
        "auto",
    ]
    cli = tracker_cli(args, run=False)
    (val,) = cli.trainer.validate(cli.model, datamodule=cli.datamodule, ckpt_path=ddp["last"], verbose=False)
    (test,) = cli.trainer.test(cli.model, datamodule=cli.datamodule, ckpt_path=ddp["last"], verbose=False)
    assert val == ddp["val"] and test == ddp["test"]
    assert set(test) == {"test/joint_goal_acc", "test/slot_acc", "test/request_acc"}
    one_dir, two_dir = Path(cli.trainer.log_dir), Path(ddp["log_dir"])
    assert json.loads((one_dir / "dst_report.json").read_text()) == json.loads(
        (two_dir / "dst_report.json").read_text()
    )
    assert (one_dir / "errors.jsonl").read_text() == (two_dir / "errors.jsonl").read_text()
    assert json.loads((one_dir / "dst_report.json").read_text())["turns"] == 28
