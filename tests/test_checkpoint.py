"""Checkpoint files: loading never runs code from the file; a crash while saving keeps the old file."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch

from chatft.cli import main
from chatft.core.errors import CheckpointError
from chatft.model.checkpoint import load_checkpoint
from chatft.training.checkpoint import AtomicCheckpointIO, atomic_save, find_last_checkpoints

from .conftest import REPO, cli_args, demo_subset


class _Payload:
    """Unpickling this creates ``marker``: what a malicious checkpoint would do (run code)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _evil_checkpoint(tmp_path: Path) -> tuple[Path, Path]:
    """A file shaped like a chatft checkpoint with code hidden in it, and the file that code would create."""
    marker = tmp_path / "code-ran"
    ckpt = {
        "state_dict": {"model.w": torch.zeros(1)},
        "hyper_parameters": {"intent_labels": ["<unk>", "a"], "slot_labels": []},
        "payload": _Payload(marker),
    }
    path = tmp_path / "evil.ckpt"
    torch.save(ckpt, path)
    return path, marker


def _chatft_like(**extra) -> dict:
    return {
        "state_dict": {"model.w": torch.arange(4.0)},
        "hyper_parameters": {"intent_labels": ["<unk>", "a"], "slot_labels": ["<unk>", "O"]},
        **extra,
    }


def test_the_payload_really_runs_code_when_unpickled_without_restrictions(tmp_path):
    path, marker = _evil_checkpoint(tmp_path)
    torch.load(path, weights_only=False)  # what an unrestricted loader would do
    assert marker.exists()


def test_load_checkpoint_refuses_a_pickle_that_would_run_code(tmp_path):
    path, marker = _evil_checkpoint(tmp_path)
    with pytest.raises(
        CheckpointError,
        match=r"evil.ckpt: refused to load: the file imports \S+, which a pickle can use to run code",
    ):
        load_checkpoint(path)
    assert not marker.exists()


def test_a_plain_pickle_is_refused_too(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(CheckpointError, match="refused to load"):
        load_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize("stage", ["test", "fit"])
def test_cli_refuses_a_malicious_checkpoint_with_one_line(stage, tmp_path, capsys, demo_small):
    path, marker = _evil_checkpoint(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(
            [
                stage,
                "--config",
                str(REPO / "configs/demo.yaml"),
                "--data.data_dir",
                str(demo_small),
                "--ckpt_path",
                str(path),
                "--trainer.default_root_dir",
                str(tmp_path / "runs"),
            ]
        )
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith(f"chatft: error: {path}: refused to load")
    assert not marker.exists()


def test_lightning_restore_path_is_safe_too(tmp_path):
    """``trainer.fit(ckpt_path=...)`` reads through the CLI's checkpoint plugin: same refusal."""
    path, marker = _evil_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match="refused to load"):
        AtomicCheckpointIO().load_checkpoint(path)
    assert not marker.exists()


def test_predictor_refuses_a_malicious_checkpoint(tmp_path):
    from chatft.serving.predictor import Predictor

    path, marker = _evil_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match="refused to load"):
        Predictor.from_checkpoint(str(path))
    assert not marker.exists()


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"not a checkpoint at all\n", "refused to load: not a file chatft can read safely"),
        (None, "no intent_labels in hyper_parameters"),
    ],
    ids=["text-file", "other-lightning-checkpoint"],
)
def test_files_that_are_not_chatft_checkpoints_are_refused(tmp_path, content, reason):
    path = tmp_path / "x.ckpt"
    if content is None:
        torch.save({"state_dict": {"model.w": torch.zeros(1)}, "hyper_parameters": {"lr": 0.1}}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=reason):
        load_checkpoint(path)


def test_truncated_checkpoint_is_refused(tmp_path):
    path = tmp_path / "last.ckpt"
    torch.save(_chatft_like(), path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"last.ckpt: not a readable checkpoint .*truncated"):
        load_checkpoint(path)


def test_crash_while_saving_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoints" / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint(_chatft_like(step=1), path)

    def dies_half_way(obj, f):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise KeyboardInterrupt  # e.g. the job is cancelled mid-write

    monkeypatch.setattr(torch, "save", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint(_chatft_like(step=2), path)
    monkeypatch.undo()

    assert load_checkpoint(path)["step"] == 1  # the old checkpoint, whole
    assert os.listdir(path.parent) == ["last.ckpt"]  # no temporary file left behind
    io.save_checkpoint(_chatft_like(step=3), path)
    assert io.load_checkpoint(path)["step"] == 3


def test_a_temporary_file_left_by_a_kill_is_never_taken_for_last(tmp_path):
    atomic_save(_chatft_like(), tmp_path / "last.ckpt")
    (tmp_path / ".last.ckpt.tmp-123").write_bytes(b"torn")
    (tmp_path / "last-v1.ckpt").write_bytes(b"")
    assert [p.name for p in find_last_checkpoints(tmp_path)] == ["last-v1.ckpt", "last.ckpt"]


def test_cli_trainer_uses_the_atomic_checkpoint_plugin(tiny_encoder, tmp_path):
    from chatft.training.lightning_cli import lightning_cli

    data = demo_subset(tmp_path / "data", n_train=8, n_eval=4)
    cli = lightning_cli(cli_args(tiny_encoder, data, config=None), run=False)
    assert isinstance(cli.trainer.strategy.checkpoint_io, AtomicCheckpointIO)
