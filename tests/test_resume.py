"""A killed run resumed with ``fit --ckpt_path last`` ends like an uninterrupted one, batch for batch.

Real processes are killed here (SIGKILL) and stopped (SIGTERM); in-process crashes cover the exact
checkpoint positions (mid-epoch, epoch end) deterministically.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from chatft.cli import main
from chatft.training.resume import SIGTERM_EXIT_CODE, ResumableBatchSampler
from chatft.training.samplers import BucketBatchSampler

from .conftest import REPO, cli_args, demo_subset
from .helpers import Crash, read_records

STEPS_PER_EPOCH = 4  # 32 training utterances, batch size 8
EPOCHS = 2


def _args(encoder: str, data: Path, root: Path, record: Path, *extra: str) -> list[str]:
    return [
        "fit",
        *cli_args(encoder, data, root, data__batch_size=8, trainer__max_epochs=EPOCHS),
        "--trainer.log_every_n_steps",
        "1",
        "--trainer.callbacks+=tests.helpers.BatchRecorder",
        "--trainer.callbacks.init_args.path",
        str(record),
        # the finished runs are compared loop state for loop state, which a finished run drops by default
        "--checkpoint.keep_optimizer_state",
        "true",
        *extra,
    ]


def _last(root: Path) -> dict:
    return torch.load(root / "lightning_logs/version_0/checkpoints/last.ckpt", weights_only=True)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return demo_subset(tmp_path_factory.mktemp("resume") / "data", n_train=32, n_eval=4)


@pytest.fixture(scope="module")
def reference(tiny_encoder, data, tmp_path_factory) -> tuple[list[dict], dict]:
    """Batches and final checkpoint of an uninterrupted run."""
    root = tmp_path_factory.mktemp("reference")
    main(_args(tiny_encoder, data, root, root / "batches.jsonl"))
    return read_records(root / "batches.jsonl"), _last(root)


def _assert_same_end(resumed: dict, reference: dict) -> None:
    assert resumed["global_step"] == reference["global_step"] == EPOCHS * STEPS_PER_EPOCH
    assert resumed["epoch"] == reference["epoch"]
    assert resumed["loops"]["fit_loop"]["epoch_progress"] == reference["loops"]["fit_loop"]["epoch_progress"]


# Mid-epoch positions are covered by the SIGKILL and SIGTERM tests below; these two are the epoch-end
# checkpoints, which Lightning restores through another path (and which used to lose the next epoch).
@pytest.mark.parametrize(
    "options",
    [[], ["--checkpoint.save_top_k", "0"]],
    ids=["written-with-best-by-ModelCheckpoint", "written-by-AutoSave"],
)
def test_crash_after_an_epoch_then_resume_last_replays_exactly_the_missing_batches(
    tiny_encoder, data, reference, tmp_path, options
):
    ref_batches, ref_ckpt = reference
    root, record = tmp_path / "run", tmp_path / "batches.jsonl"
    crash_step = STEPS_PER_EPOCH + 2
    with pytest.raises(Crash):
        main(
            _args(tiny_encoder, data, root, record, *options)
            + [
                "--trainer.callbacks+=tests.helpers.CrashAt",
                "--trainer.callbacks.init_args.step",
                str(crash_step),
            ]
        )
    saved_step = STEPS_PER_EPOCH
    assert _last(root)["global_step"] == saved_step
    before = read_records(record)
    record.unlink()

    main(_args(tiny_encoder, data, root, record, *options, "--ckpt_path", "last"))

    after = read_records(record)
    assert before[:saved_step] + after == ref_batches  # same batches, same order, none twice, none missed
    _assert_same_end(_last(root), ref_ckpt)
    # The resumed run continued the same log folder instead of starting version_1.
    assert sorted(p.name for p in (root / "lightning_logs").iterdir()) == ["version_0"]


def _start(tiny_encoder: str, data: Path, root: Path, record: Path, *extra: str) -> subprocess.Popen:
    # Slow batches (1 s each) so that the signal lands mid-epoch even on a busy machine.
    args = _args(tiny_encoder, data, root, record, "--trainer.callbacks.init_args.sleep", "1.0", *extra)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "chatft", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_batches(proc: subprocess.Popen, record: Path, n: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while len(read_records(record)) < n:
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"training ended before batch {n} (rc {proc.returncode}):\n{err[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"no batch {n} after {timeout} s")
        time.sleep(0.05)


def test_sigkill_mid_epoch_then_resume_ends_like_uninterrupted_run(tiny_encoder, data, reference, tmp_path):
    ref_batches, ref_ckpt = reference
    root, record = tmp_path / "run", tmp_path / "batches.jsonl"
    proc = _start(tiny_encoder, data, root, record, "--autosave.every_n_train_steps", "2")
    _wait_for_batches(proc, record, 3)  # batch 3 of 4 has started: the checkpoint at step 2 exists
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    saved = _last(root)["global_step"]
    assert saved == 2  # killed mid-epoch 0 (a save at step 4 would need batch 4 to have started)
    before = read_records(record)
    record.unlink()

    main(
        _args(tiny_encoder, data, root, record, "--autosave.every_n_train_steps", "2", "--ckpt_path", "last")
    )

    assert before[:saved] + read_records(record) == ref_batches
    _assert_same_end(_last(root), ref_ckpt)


def test_sigterm_saves_a_checkpoint_and_exits_143_with_one_line(tiny_encoder, data, reference, tmp_path):
    ref_batches, ref_ckpt = reference
    root, record = tmp_path / "run", tmp_path / "batches.jsonl"
    proc = _start(tiny_encoder, data, root, record)  # no periodic saves: only SIGTERM writes mid-epoch
    _wait_for_batches(proc, record, 2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == SIGTERM_EXIT_CODE
    assert "Traceback" not in err
    last = root / "lightning_logs/version_0/checkpoints/last.ckpt"
    assert err.strip().splitlines()[-1] == (
        f"chatft: stopped by SIGTERM (saved {last}; resume with the same command plus --ckpt_path last)"
    )
    before = read_records(record)
    # The batch running when SIGTERM arrived finished, then the run saved and stopped: nothing lost.
    assert _last(root)["global_step"] == len(before) < STEPS_PER_EPOCH
    record.unlink()

    main(_args(tiny_encoder, data, root, record, "--ckpt_path", "last"))

    assert before + read_records(record) == ref_batches
    _assert_same_end(_last(root), ref_ckpt)


def test_resume_last_finds_the_newest_last_ckpt_and_its_log_folder(tmp_path):
    from chatft.training.resume import resolve_resume

    assert resolve_resume(str(tmp_path), None, None) == (None, None)
    version = tmp_path / "lightning_logs/version_3/checkpoints"
    version.mkdir(parents=True)
    (version / "last.ckpt").write_bytes(b"")
    path, logger = resolve_resume(str(tmp_path), None, None)
    assert path == str(version / "last.ckpt")
    assert logger["init_args"] == {"save_dir": str(tmp_path), "name": "lightning_logs", "version": 3}


def test_resumable_sampler_skips_trained_batches_of_the_saved_epoch_only():
    inner = BucketBatchSampler([3, 1, 4, 1, 5, 9, 2, 6, 5, 3], batch_size=2, seed=7)
    progress = {"done": 0, "finished": False}
    sampler = ResumableBatchSampler(inner, lambda: (progress["done"], progress["finished"]))
    sampler.set_epoch(1)
    epoch1 = list(sampler)
    progress["done"] = 2
    state = sampler.state_dict()
    assert state == {"epoch": 1, "batches_done": 2}
    progress.update(done=5, finished=True)
    assert sampler.state_dict() == {"epoch": 2, "batches_done": 0}  # a finished epoch resumes with the next

    lengths = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3]
    fresh = ResumableBatchSampler(BucketBatchSampler(lengths, batch_size=2, seed=7), lambda: (0, False))
    fresh.load_state_dict(state)
    assert len(fresh) == len(epoch1) == 5
    assert list(fresh) == epoch1[2:]  # resumed pass: only the batches not trained yet
    assert list(fresh) == epoch1  # later passes of the same epoch are whole again
    fresh.load_state_dict(state)
    fresh.set_epoch(2)  # a pending skip never leaks into another epoch
    inner.set_epoch(2)
    assert list(fresh) == list(inner)
