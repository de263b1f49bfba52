"""benchmarks/sweep.py: cells x seeds of seeds.py, several at a time, seed-major, with a deadline."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: Stands in for ``seeds.py``: argv = folder, seed, mode ('ok' writes results.json and a checkpoint,
#: 'fail' exits 1 with a one-line error, 'hang' sleeps past any deadline, 'slow' sleeps a second, then writes as 'ok').
FAKE = """
import json, os, sys, time
from pathlib import Path
folder, seed, mode = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
folder.mkdir(parents=True, exist_ok=True)
(folder / "threads.txt").write_text(os.environ["OMP_NUM_THREADS"])
if mode == "fail":
    sys.exit("chatft: error: unrecognized option --model.lerning_rate")
if mode == "hang":
    time.sleep(60)
if mode == "slow":
    time.sleep(1.0)
(folder / "seed0" / "ckpt").mkdir(parents=True, exist_ok=True)
(folder / "seed0" / "ckpt" / "best.ckpt").write_bytes(b"x" * 1000)
dev = 0.9 + seed / 100
result = {"seed": seed, "fit_seconds": 60.0, "best_epoch": 3, "dev": {"intent_acc": dev, "sent_acc": dev},
          "test": {"intent_acc": dev - 0.01, "sent_acc": dev - 0.01}}
(folder / "results.json").write_text(json.dumps([result]))
"""


@pytest.fixture(scope="module")
def sweep():
    spec = importlib.util.spec_from_file_location("bench_sweep", REPO / "benchmarks" / "sweep.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_sweep"] = module  # dataclasses resolve the Job's annotations through sys.modules
    spec.loader.exec_module(module)
    yield module
    del sys.modules["bench_sweep"]


def fake(modes: dict[tuple[str, int], str]):
    """A ``make_command`` that runs FAKE with the mode given for (label, seed), 'ok' otherwise."""

    def make(job, dev_only):
        return [sys.executable, "-c", FAKE, job.folder, str(job.seed), modes.get((job.label, job.seed), "ok")]

    return make


def test_cells_parse_as_label_and_shell_words(sweep):
    assert sweep.parse_cell("lr 5e-5=--model.learning_rate 5.0e-5 --x 'a b'") == (
        "lr 5e-5",
        ["--model.learning_rate", "5.0e-5", "--x", "a b"],
    )
    assert sweep.parse_cell("recipe=") == ("recipe", [])
    for bad in ("no equals sign", "=--x 1", " =--x 1"):
        with pytest.raises(argparse.ArgumentTypeError, match="expected LABEL=ARGS"):
            sweep.parse_cell(bad)


def test_plan_is_seed_major_with_the_cell_args_after_the_base(sweep, tmp_path):
    cells = [("lr 1e-4", []), ("lr 5e-5", ["--model.learning_rate", "5e-5"])]
    jobs = sweep.plan(cells, [0, 1], ["--config", "c.yaml"], tmp_path)
    assert [(j.label, j.seed) for j in jobs] == [
        ("lr 1e-4", 0),
        ("lr 5e-5", 0),
        ("lr 1e-4", 1),
        ("lr 5e-5", 1),
    ]
    assert jobs[3].args == ["--config", "c.yaml", "--model.learning_rate", "5e-5"]
    assert jobs[3].folder == str(tmp_path / "lr-5e-5" / "seed1")
    assert sweep.command(jobs[0], dev_only=True)[1:] == [
        str(REPO / "benchmarks" / "seeds.py"),
        "--seeds",
        "0",
        "--out",
        str(tmp_path / "lr-1e-4" / "seed0"),
        "--dev-only",
        "--",
        "--config",
        "c.yaml",
    ]
    with pytest.raises(SystemExit, match="two cells share a folder name"):
        sweep.plan([("a b", []), ("a-b", [])], [0], [], tmp_path)


def test_run_records_each_job_and_drops_checkpoints_and_the_summary_merges_done_seeds(sweep, tmp_path):
    jobs = sweep.plan([("A", []), ("B", [])], [0, 1], [], tmp_path)
    sweep.run(jobs, 2, float("inf"), float("inf"), False, True, fake({("B", 1): "fail"}), poll=0.05)
    assert [(j.label, j.seed, j.state, j.returncode) for j in jobs] == [
        ("A", 0, "done", 0),
        ("B", 0, "done", 0),
        ("A", 1, "done", 0),
        ("B", 1, "failed", 1),
    ]
    assert not list(tmp_path.rglob("*.ckpt"))
    assert (tmp_path / "A" / "seed1" / "results.json").is_file()
    rows = [
        line
        for line in sweep.summary(jobs, dev_only=False).splitlines()
        if line.startswith("| A") or line.startswith("| B")
    ]
    assert len(rows) == 2
    assert rows[0].startswith("| A | 0,1 | 90.50 ± 0.71 |")
    assert rows[1].startswith("| B | 0 | 90.00 |")


def test_each_job_gets_cores_over_parallel_threads_or_the_threads_asked_for(sweep, tmp_path, monkeypatch):
    monkeypatch.setattr(sweep.os, "cpu_count", lambda: 16)
    jobs = sweep.plan([("A", [])], [0, 1], [], tmp_path / "default")
    sweep.run(jobs, 3, float("inf"), float("inf"), False, False, fake({}), poll=0.05)
    assert [(Path(j.folder) / "threads.txt").read_text() for j in jobs] == ["5", "5"]
    jobs = sweep.plan([("A", [])], [0], [], tmp_path / "asked")
    sweep.run(jobs, 3, float("inf"), float("inf"), False, False, fake({}), poll=0.05, threads=2)
    assert (Path(jobs[0].folder) / "threads.txt").read_text() == "2"


def test_the_deadline_skips_what_has_not_started_and_kill_after_stops_what_runs(sweep, tmp_path):
    jobs = sweep.plan([("A", []), ("B", [])], [0], [], tmp_path)
    began = time.monotonic()
    sweep.run(jobs, 1, 0.3, 0.6, False, False, fake({("A", 0): "hang"}), poll=0.05)
    assert time.monotonic() - began < 10  # the hanging job (60 s) was killed, not waited for
    assert [(j.state, j.returncode) for j in jobs] == [("killed", -9), ("skipped", None)]
    assert sweep.summary(jobs, dev_only=False) == "no job finished\n"


def test_a_kill_after_before_the_deadline_starts_nothing_it_would_kill(sweep, tmp_path):
    jobs = sweep.plan([("A", []), ("B", [])], [0], [], tmp_path)
    sweep.run(jobs, 1, float("inf"), 0.3, False, False, fake({("A", 0): "slow"}), poll=0.05)
    assert [j.state for j in jobs] == ["killed", "skipped"]


def test_an_error_while_jobs_run_kills_them_before_it_propagates(sweep, tmp_path):
    jobs = sweep.plan([("A", []), ("B", [])], [0], [], tmp_path)
    hang = fake({("A", 0): "hang"})

    def make(job, dev_only):
        if job.label == "B":
            raise KeyboardInterrupt  # as Ctrl-C would arrive while A runs
        return hang(job, dev_only)

    began = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        sweep.run(jobs, 2, float("inf"), float("inf"), False, False, make, poll=0.05)
    assert time.monotonic() - began < 10
    assert [(j.state, j.returncode) for j in jobs] == [("killed", -9), ("queued", None)]


def test_a_failed_job_names_its_log_and_shows_its_last_line(sweep, tmp_path, capsys):
    jobs = sweep.plan([("A", [])], [0], [], tmp_path)
    sweep.run(jobs, 1, float("inf"), float("inf"), False, False, fake({("A", 0): "fail"}), poll=0.05)
    line = next(x for x in capsys.readouterr().out.splitlines() if "failed:" in x)
    assert "] failed: A, seed 0 (" in line  # then the seconds, which depend on the machine
    assert line.endswith(
        f" s; its output: {tmp_path / 'A' / 'seed0' / 'sweep.log'}): chatft: error: unrecognized option --model.lerning_rate"
    )


def test_main_writes_jobs_json_and_summary(sweep, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sweep, "command", fake({}))
    argv = ["sweep.py", "--cell", "A=", "--seeds", "0", "--out", str(tmp_path), "--", "--config", "c.yaml"]
    monkeypatch.setattr(sys, "argv", argv)
    sweep.main()
    jobs = json.loads((tmp_path / "jobs.json").read_text())
    assert [(j["label"], j["seed"], j["state"], j["args"]) for j in jobs] == [
        ("A", 0, "done", ["--config", "c.yaml"])
    ]
    summary = (tmp_path / "summary.md").read_text()
    assert summary.splitlines()[2].startswith("| A | 0 | 90.00 |")
    assert capsys.readouterr().out.endswith(summary)
