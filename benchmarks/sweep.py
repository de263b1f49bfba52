"""Cells x seeds of ``benchmarks/seeds.py``, several fits at a time: a hyper-parameter sweep on one GPU.

    python benchmarks/sweep.py --parallel 8 --seeds 0 1 2 --out runs/sweep \\
        --cell "lr 1e-4=--data.data_dir ../shared/data/atis" \\
        --cell "lr 5e-5=--data.data_dir ../shared/data/atis --model.learning_rate 5.0e-5" \\
        -- --config configs/atis.yaml --config configs/gpu-bf16.yaml --oos.fallback false

Why not ``seeds.py`` in a loop: one fine-tuning process leaves most of a large GPU idle (a BERT-base step on
32 short utterances is a few milliseconds of matrix work between Python and kernel-launch overhead), so
several fits side by side finish a sweep in a fraction of the time, and a device lent for minutes is spent
on fits rather than waiting. Each (cell, seed) is one ``seeds.py --seeds S`` job with the arguments after
``--`` followed by the cell's own (``LABEL=ARGS``, split like a shell line), writing ``OUT/<label>/seedS``;
dev chooses, ``test`` runs on the dev-selected checkpoint as ``seeds.py`` does (``--dev-only`` skips it).

Jobs start seed-major (every cell's seed 0, then every cell's seed 1, ...), so a sweep cut short by
``--deadline`` (seconds after the start; no job starts later) still compares every cell on its first seeds;
``--kill-after`` stops the jobs still running. Each job gets ``OMP_NUM_THREADS`` = CPU cores / parallel, or
``--threads``.
``--drop-checkpoints`` deletes a finished job's ``*.ckpt`` files (a BERT-base checkpoint is 0.4-1.3 GB; the
dev and test numbers are already in its ``results.json``). Writes ``OUT/jobs.json`` (each job's state, exit
code and wall time) and ``OUT/summary.md`` (``ablation_table.py``'s rows: one per cell, its finished seeds
merged), and prints the summary.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass
class Job:
    """One ``seeds.py`` run: a cell's arguments with one seed."""

    label: str
    seed: int
    args: list[str]
    folder: str
    state: str = "queued"  # queued -> running -> done | failed | killed | skipped
    returncode: int | None = None
    seconds: float | None = None
    started: float | None = field(default=None, repr=False)


def slug(label: str) -> str:
    """A folder name for a cell label: letters, digits, '.', '-' and '_' only."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-") or "cell"


def parse_cell(text: str) -> tuple[str, list[str]]:
    """``LABEL=ARGS`` -> (label, shell-split args); ARGS may be empty (the base arguments alone)."""
    label, sep, rest = text.partition("=")
    if not sep or not label.strip():
        raise argparse.ArgumentTypeError(f"--cell {text!r}: expected LABEL=ARGS (ARGS may be empty)")
    return label.strip(), shlex.split(rest)


def plan(cells: list[tuple[str, list[str]]], seeds: list[int], base: list[str], out: Path) -> list[Job]:
    """Every (cell, seed) job, seed-major, each in its own ``seeds.py`` output folder."""
    labels = [label for label, _ in cells]
    if len(set(map(slug, labels))) != len(labels):
        raise SystemExit(f"sweep.py: two cells share a folder name: {labels}")
    return [
        Job(label, seed, [*base, *args], str(out / slug(label) / f"seed{seed}"))
        for seed in seeds
        for label, args in cells
    ]


def command(job: Job, dev_only: bool) -> list[str]:
    cmd = [sys.executable, str(HERE / "seeds.py"), "--seeds", str(job.seed), "--out", job.folder]
    return [*cmd, *(["--dev-only"] if dev_only else []), "--", *job.args]


def stop(proc: subprocess.Popen) -> None:
    """Kill a job and the fit it started (its own process group) at once: a fit cut off at the deadline has
    nothing worth saving, and waiting for each to exit in turn could outlast the time the deadline keeps."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def drop_checkpoints(folder: str) -> int:
    """Delete the ``*.ckpt`` files under ``folder``; the number of bytes freed."""
    freed = 0
    for path in Path(folder).rglob("*.ckpt"):
        freed += path.stat().st_size
        path.unlink()
    return freed


def run(
    jobs: list[Job],
    parallel: int,
    deadline: float,
    kill_after: float,
    dev_only: bool,
    drop: bool,
    make_command: Callable[[Job, bool], list[str]] | None = None,
    poll: float = 1.0,
    threads: int | None = None,
) -> None:
    """Run ``jobs`` at most ``parallel`` at a time; each job's state, exit code and seconds are set in place.
    ``make_command`` (default :func:`command`) turns a job into its command line. ``threads`` (default CPU
    cores / ``parallel``) is each job's ``OMP_NUM_THREADS``: set it when sweeps run side by side, so that
    together they do not ask for more threads than there are cores."""
    make_command = make_command or command
    threads = str(threads or max(1, (os.cpu_count() or 1) // parallel))
    env = {**os.environ, "OMP_NUM_THREADS": threads, "PYTHONUNBUFFERED": "1"}
    start = time.monotonic()
    running: dict[int, subprocess.Popen] = {}
    queue = list(range(len(jobs)))
    try:
        while queue or running:
            now = time.monotonic() - start
            for i, proc in list(running.items()):
                if proc.poll() is None and now < kill_after:
                    continue
                finish(jobs[i], proc, start, drop)
                del running[i]
            if now >= min(deadline, kill_after):  # a job started after kill_after would be killed at once
                for i in queue:
                    jobs[i].state = "skipped"
                queue = []
            while queue and len(running) < parallel:
                i = queue.pop(0)
                job = jobs[i]
                Path(job.folder).mkdir(parents=True, exist_ok=True)
                with open(Path(job.folder) / "sweep.log", "w") as log:  # the child keeps its own copy
                    running[i] = subprocess.Popen(
                        make_command(job, dev_only),
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        env=env,
                        start_new_session=True,
                    )
                job.state, job.started = "running", time.monotonic() - start
                print(f"[{job.started:6.0f} s] start: {job.label}, seed {job.seed}", flush=True)
            time.sleep(poll)
    finally:
        # Ctrl-C or an error here: the jobs run in their own sessions, so nothing else would stop them.
        for i, proc in running.items():
            finish(jobs[i], proc, start, drop)


def finish(job: Job, proc: subprocess.Popen, start: float, drop: bool) -> None:
    """Record a job that ended, or kill it if it still runs; print one line (with its log if it failed)."""
    if proc.poll() is None:
        stop(proc)
        job.state = "killed"
    else:
        job.state = "done" if proc.returncode == 0 else "failed"
    job.returncode, job.seconds = proc.returncode, round(time.monotonic() - start - job.started, 1)
    freed = drop_checkpoints(job.folder) if drop else 0
    log = Path(job.folder) / "sweep.log"
    print(
        f"[{time.monotonic() - start:6.0f} s] {job.state}: {job.label}, seed {job.seed} ({job.seconds:.0f} s"
        + (f", {freed / 1e9:.1f} GB of checkpoints dropped" if freed else "")
        + (f"; its output: {log}): {last_line(log)}" if job.state == "failed" else ")"),
        flush=True,
    )


def last_line(log: Path) -> str:
    """The last non-empty line of a failed job's output: ``seeds.py`` ends it with the fit's one-line error."""
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def summary(jobs: list[Job], dev_only: bool) -> str:
    """``ablation_table.py``'s rows for the cells with at least one finished seed."""
    rows = {}
    for job in jobs:
        if job.state == "done":
            rows.setdefault(job.label, []).append(job.folder)
    if not rows:
        return "no job finished\n"
    args = [] if dev_only else ["--test"]
    args += [f"{label}={','.join(folders)}" for label, folders in rows.items()]
    done = subprocess.run(
        [sys.executable, str(HERE / "ablation_table.py"), *args], capture_output=True, text=True, check=False
    )
    return done.stdout + done.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cell", type=parse_cell, action="append", required=True, help="LABEL=ARGS, repeated"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("runs/sweep"))
    parser.add_argument("--parallel", type=int, default=4, help="jobs at a time (default 4)")
    parser.add_argument("--deadline", type=float, default=float("inf"), help="seconds; no job starts later")
    parser.add_argument(
        "--kill-after", type=float, default=float("inf"), help="seconds; running jobs stopped"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="OMP_NUM_THREADS per job (default: CPU cores / parallel)"
    )
    parser.add_argument("--dev-only", action="store_true", help="skip the test split (seeds.py --dev-only)")
    parser.add_argument("--drop-checkpoints", action="store_true", help="delete each finished job's *.ckpt")
    parser.add_argument("base", nargs=argparse.REMAINDER, help="after --: arguments every cell's fit gets")
    args = parser.parse_args()
    if args.parallel < 1:
        parser.error("--parallel: at least 1")
    if args.threads is not None and args.threads < 1:
        parser.error("--threads: at least 1")
    base = args.base[1:] if args.base[:1] == ["--"] else args.base
    jobs = plan(args.cell, args.seeds, base, args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        run(
            jobs,
            args.parallel,
            args.deadline,
            args.kill_after,
            args.dev_only,
            args.drop_checkpoints,
            threads=args.threads,
        )
    finally:
        (args.out / "jobs.json").write_text(json.dumps([asdict(j) for j in jobs], indent=1) + "\n")
    text = summary(jobs, args.dev_only)
    (args.out / "summary.md").write_text(text)
    print(text, end="")


if __name__ == "__main__":
    main()
