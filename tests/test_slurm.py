"""The SLURM job files in slurm/: static checks (fast), then real jobs on a throwaway cluster (``-m slurm``).

The real-cluster tests need root and apt (``tests/slurm_cluster.py`` installs and starts slurmctld, slurmd and
munged, and stops them by PID); they skip with the reason when SLURM cannot be started. They submit the job
files as a user would, in CPU mode with 2 tasks (``--gres=none --ntasks-per-node=2 --cpus-per-task=1`` on
the sbatch command line, ``--trainer.accelerator cpu`` after the job file), with the tiny random BERT.
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, cli_args, demo_subset

JOB_FILES = sorted((REPO / "slurm").glob("*.sbatch"))
N_TRAIN, N_EVAL, BATCH = 64, 17, 8
STEPS_PER_EPOCH = math.ceil(math.ceil(N_TRAIN / BATCH) / 2)  # 8 batches dealt to 2 ranks


def _sbatch_options(path: Path) -> dict[str, str]:
    opts = {}
    for line in path.read_text().splitlines():
        if line.startswith("#SBATCH "):
            key, _, value = line.removeprefix("#SBATCH ").strip().partition("=")
            opts[key.removeprefix("--")] = value
    return opts


# ---- static checks (default test run) ------------------------------------------------------------------
def test_job_files_are_valid_bash():
    assert {p.name for p in JOB_FILES} == {"fit.sbatch", "fit-multinode.sbatch", "test.sbatch"}
    for path in JOB_FILES:
        proc = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
        assert proc.returncode == 0, f"{path.name}: {proc.stderr}"


def test_job_file_resources_match_what_lightning_checks():
    fit, multi, test = (
        _sbatch_options(REPO / "slurm" / f"{n}.sbatch") for n in ("fit", "fit-multinode", "test")
    )
    for opts in (fit, multi, test):
        # One task per GPU: Lightning requires trainer.devices == --ntasks-per-node, which the job sets.
        assert opts["gres"] == f"gpu:{opts['ntasks-per-node']}"
        assert "account" not in opts and "partition" not in opts  # site-specific: the command line's job
    assert fit["nodes"] == "1" and int(multi["nodes"]) > 1 and test["nodes"] == "1"
    for opts in (fit, multi):
        # Pre-emption: SIGUSR1 90 s before the limit to the tasks, requeue allowed, logs of all attempts kept.
        assert opts["signal"] == "SIGUSR1@90" and "requeue" in opts and opts["open-mode"] == "append"


def _dry_run(job_file: str, args: list[str], tmp_path: Path, **env: str) -> list[str]:
    """Run a job file with bash and a fake srun that records its arguments; returns them."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    srun = bin_dir / "srun"
    srun.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {shlex.quote(str(tmp_path / "srun.args"))}\n')
    srun.chmod(0o755)
    slurm = {
        "SLURM_JOB_ID": "77",
        "SLURM_JOB_NAME": job_file.removesuffix(".sbatch").replace("fit", "chatft-fit"),
        "SLURM_JOB_NUM_NODES": "2",
        "SLURM_NTASKS_PER_NODE": "4",
        "SLURM_JOB_NODELIST": "n[1-2]",
        "CHATFT_PYTHON": "py",
    }
    base = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    full_env = {**base, **slurm, **env, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(
        ["bash", str(REPO / "slurm" / job_file), *args], env=full_env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("chatft: job ")
    return (tmp_path / "srun.args").read_text().splitlines()


def test_job_file_passes_arguments_and_sets_devices_nodes_and_run_folder(tmp_path):
    args = _dry_run("fit.sbatch", ["--config", "configs/atis.yaml", "--data.data_dir", "d"], tmp_path)
    assert args == [
        "--kill-on-bad-exit=1", "py", "-m", "chatft", "fit", "--trainer.strategy", "ddp",
        "--config", "configs/atis.yaml", "--data.data_dir", "d",
        "--trainer.num_nodes", "2", "--trainer.devices", "4",
        "--trainer.default_root_dir", "runs/slurm/chatft-fit-77",
    ]  # fmt: skip
    # An explicit run folder is kept; an array task gets its own folder.
    args = _dry_run("fit.sbatch", ["--trainer.default_root_dir=/r"], tmp_path)
    assert args[-5:] == [
        "--trainer.default_root_dir=/r",
        "--trainer.num_nodes",
        "2",
        "--trainer.devices",
        "4",
    ]
    # test.sbatch sets no run folder: test writes next to the checkpoint it evaluates.
    args = _dry_run("test.sbatch", [], tmp_path, SLURM_ARRAY_JOB_ID="70", SLURM_ARRAY_TASK_ID="3")
    assert args[3:5] == ["chatft", "test"] and not any(
        a.startswith("--trainer.default_root_dir") for a in args
    )


# ---- real SLURM (pytest -m slurm) ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster():
    from tests.slurm_cluster import SlurmCluster, SlurmUnavailable

    try:
        c = SlurmCluster.start()
    except SlurmUnavailable as err:
        pytest.skip(f"cannot start a single-node SLURM cluster here: {err}")
    yield c
    c.stop()
    assert all(p.poll() is not None for p in c.procs.values()), "a SLURM daemon is still running"


@pytest.fixture(scope="module")
def slurm_data(tmp_path_factory) -> Path:
    return demo_subset(tmp_path_factory.mktemp("slurm-data"), n_train=N_TRAIN, n_eval=N_EVAL)


def _submit(
    cluster, job_file: str, out: Path, chatft_args: list[str], sbatch_args: tuple[str, ...] = ()
) -> str:
    cpu = ["--gres=none", "--ntasks-per-node=2", "--cpus-per-task=1", f"--output={out}/%x-%j.out"]
    return cluster.sbatch(
        [*cpu, *sbatch_args, f"slurm/{job_file}", *chatft_args],
        cwd=REPO,
        env={"CHATFT_PYTHON": sys.executable, "PYTHONPATH": str(REPO)},
    )


def _fit_args(encoder: str, data: Path, root: Path, epochs: int) -> list[str]:
    return cli_args(
        encoder, data, root, data__batch_size=BATCH, trainer__max_epochs=epochs, trainer__accelerator="cpu"
    )


def _finished(cluster, job: str, timeout: float) -> tuple[dict, str]:
    info = cluster.wait(job, timeout)
    output = Path(info["StdOut"]).read_text(errors="replace") if Path(info["StdOut"]).exists() else ""
    assert info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0", f"{info}\n{output[-4000:]}"
    return info, output


def _load(path: Path) -> dict:
    import torch

    return torch.load(path, map_location="cpu", weights_only=False)


def _assert_one_ddp_group(output: str) -> None:
    assert "Initializing distributed: GLOBAL_RANK: 0, MEMBER: 1/2" in output
    assert "Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2" in output
    assert "All distributed processes registered. Starting with 2 processes" in output


@pytest.mark.slurm
def test_fit_job_trains_as_one_ddp_group_and_test_job_reports_metrics(
    cluster, tiny_encoder, slurm_data, tmp_path
):
    root = tmp_path / "fit"
    job = _submit(cluster, "fit.sbatch", tmp_path, _fit_args(tiny_encoder, slurm_data, root, epochs=2))
    info, output = _finished(cluster, job, timeout=240)
    _assert_one_ddp_group(output)
    assert "SLURM auto-requeueing enabled" in output and info["Restarts"] == "0"
    # Lightning names the log folder after the SLURM job id (stable across requeues).
    ckpts = root / "lightning_logs" / f"version_{job}" / "checkpoints"
    best = re.search(r"^best checkpoint: (\S+) \(val/sent_acc=(\d\.\d{4})\)$", output, re.M)
    assert best and Path(best[1]).parent == ckpts and Path(best[1]).is_file()
    last = _load(ckpts / "last.ckpt")
    # Both ranks trained on their own half of the batches: half the steps of a 1-process run.
    assert (last["epoch"], last["global_step"]) == (2, 2 * STEPS_PER_EPOCH)

    test_root = tmp_path / "test"
    test_args = [*_fit_args(tiny_encoder, slurm_data, test_root, 1), "--ckpt_path", best[1]]
    job = _submit(cluster, "test.sbatch", tmp_path, test_args)
    _, output = _finished(cluster, job, timeout=180)
    _assert_one_ddp_group(output)
    for name in ("intent_acc", "intent_f1", "slot_f1", "slot_precision", "slot_recall", "sent_acc"):
        assert re.search(rf"test/{name}\s.*\d\.\d+", output), name
    report = json.loads((test_root / "test_report.json").read_text())
    assert sum(row["support"] for row in report["intents"]) == N_EVAL  # 8 + 9 utterances, none repeated


@pytest.mark.slurm
def test_multinode_job_file_runs_on_the_nodes_it_is_given(cluster, tiny_encoder, slurm_data, tmp_path):
    root = tmp_path / "fit"
    args = [*_fit_args(tiny_encoder, slurm_data, root, epochs=1), "--trainer.limit_val_batches", "1"]
    job = _submit(cluster, "fit-multinode.sbatch", tmp_path, args, ("--nodes=1",))
    _, output = _finished(cluster, job, timeout=240)
    _assert_one_ddp_group(output)
    assert f"job {job}, attempt 1, 1 node(s) x 2 task(s)" in output
    assert _load(root / "lightning_logs" / f"version_{job}" / "checkpoints" / "last.ckpt")["global_step"] == 4


@pytest.mark.slurm
@pytest.mark.parametrize("how", ["time-limit-signal", "sigterm-preemption"])
def test_requeued_job_resumes_with_counters_intact(how, cluster, tiny_encoder, slurm_data, tmp_path):
    """``time-limit-signal``: SIGUSR1 as ``--signal=SIGUSR1@90`` sends it; Lightning saves ``hpc_ckpt_1.ckpt``,
    requeues the job, and the new attempt resumes from it. ``sigterm-preemption``: the job is requeued from
    outside (SIGTERM, then SIGKILL, as a pre-emption does); with ``--ckpt_path last`` the new attempt resumes
    from the ``last.ckpt`` saved on SIGTERM. Either way it ends with the uninterrupted run's counters."""
    root = tmp_path / "fit"
    epochs = 3
    # A 1 s pause after each training batch (4 per epoch) leaves time to stop the job inside epoch 1.
    args = [
        *_fit_args(tiny_encoder, slurm_data, root, epochs),
        "--trainer.callbacks+=tests.throttle.Throttle",
        "--trainer.callbacks.seconds",
        "1",
        # The finished run's loop counters are checked below: keep them (a finished run drops them).
        "--checkpoint.keep_optimizer_state",
        "true",
    ]
    if how == "sigterm-preemption":
        args += ["--ckpt_path", "last"]
    job = _submit(cluster, "fit.sbatch", tmp_path, args)
    log_dir = root / "lightning_logs" / f"version_{job}"
    end = time.monotonic() + 180
    while not (log_dir / "val_metrics.jsonl").exists():  # epoch 0 validated
        assert time.monotonic() < end, cluster.job(job)
        time.sleep(0.5)
    time.sleep(1.5)  # into epoch 1's training
    if how == "time-limit-signal":  # what SLURM does 90 s before the time limit, now
        stop = ["scancel", "--signal=USR1", job]
    else:
        stop = ["scontrol", "requeue", job]
    assert cluster.run(stop).returncode == 0

    info, output = _finished(cluster, job, timeout=300)
    assert info["Restarts"] == "1" and f"job {job}, attempt 2," in output
    if how == "time-limit-signal":
        assert "Handling auto-requeue signal" in output and f"Requeued SLURM job: {job}" in output
        resumed_from = root / "hpc_ckpt_1.ckpt"
    else:
        resumed_from = log_dir / "checkpoints" / "last.ckpt"
        assert "chatft: stopped by SIGTERM (saved" in output
    assert f"Restored all states from the checkpoint at {resumed_from}" in output
    if how == "time-limit-signal":
        saved = _load(resumed_from)["global_step"]
        assert STEPS_PER_EPOCH <= saved < epochs * STEPS_PER_EPOCH  # saved mid-run
    # The resumed run finished the epochs the uninterrupted one would have: same epoch and step counters.
    last = _load(log_dir / "checkpoints" / "last.ckpt")
    assert (last["epoch"], last["global_step"]) == (epochs, epochs * STEPS_PER_EPOCH)
    assert last["loops"]["fit_loop"]["epoch_progress"]["total"]["completed"] == epochs
    rows = [json.loads(x) for x in (log_dir / "val_metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == list(range(epochs))
    assert [r["step"] for r in rows] == [STEPS_PER_EPOCH * (e + 1) for e in range(epochs)]


def test_the_test_run_hides_lightnings_srun_hint_on_a_machine_with_slurm(tmp_path, monkeypatch):
    # With SLURM installed (CI inside a SLURM job, or once -m slurm has installed it), every Trainer a test
    # builds outside the CLI (which filters the hint itself) put "The `srun` command is available on your
    # system but is not used" into the warnings summary; pyproject's filterwarnings ignores it in tests.
    import warnings

    import lightning as L

    srun = tmp_path / "srun"
    srun.write_text("#!/bin/sh\n", encoding="utf-8")
    srun.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    for name in [k for k in os.environ if k.startswith("SLURM_")]:
        monkeypatch.delenv(name)
    assert shutil.which("srun") == str(srun)
    with warnings.catch_warnings(record=True) as seen:  # the test run's filters, pyproject's included
        L.Trainer(
            accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False
        )
    assert [str(w.message) for w in seen if "srun" in str(w.message)] == []
