"""A throwaway single-node SLURM cluster for the tests: install, configure in a temp folder, start, stop by PID.

    cluster = SlurmCluster.start()          # raises SlurmUnavailable (with the reason) when it cannot
    job = cluster.sbatch(["--gres=none", "slurm/fit.sbatch", ...], cwd=REPO)
    info = cluster.wait(job, timeout=180)   # {"JobState": "COMPLETED", "Restarts": "0", ...}
    cluster.stop()

Needs root and Debian's packages ``slurmctld``, ``slurmd``, ``slurm-client`` and ``munge`` (installed with
apt-get when missing). Everything the cluster writes lives in one temp folder: munge key and socket,
``slurm.conf``, state, spool and daemon logs; nothing under ``/etc`` is changed. Ports and the first job id
are picked at random, so it does not clash with another cluster on the host. Clients reach it through
``SLURM_CONF`` (:meth:`SlurmCluster.env`), which jobs inherit, so ``scontrol requeue`` inside a job works.
The daemons run in the foreground as children of this process; :meth:`stop` cancels the jobs, then stops
the daemons by the PIDs it recorded.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PACKAGES = ["slurmctld", "slurmd", "slurm-client", "munge"]
BINARIES = ["slurmctld", "slurmd", "sbatch", "srun", "scontrol", "sinfo", "squeue", "scancel", "munged"]
FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL"}


class SlurmUnavailable(RuntimeError):
    """SLURM cannot be installed or started here; the message says why (tests skip with it)."""


def _run(cmd: list[str], timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)


def ensure_installed() -> None:
    """Install the Debian packages when a binary is missing; raise :class:`SlurmUnavailable` if impossible."""
    if os.geteuid() != 0:
        raise SlurmUnavailable("needs root (the daemons run as root, munged as the munge user)")
    if all(shutil.which(b) for b in BINARIES) and shutil.which("setpriv"):
        return
    if not shutil.which("apt-get"):
        raise SlurmUnavailable(f"{', '.join(PACKAGES)} are not installed and there is no apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Where services would start on install (systemd hosts), stop them: the tests start their own daemons.
    policy = Path("/usr/sbin/policy-rc.d")
    made_policy = not policy.exists()
    if made_policy:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES]
        proc = _run(install, timeout=600, env=env)
        if proc.returncode != 0:  # stale package lists: update once, then retry
            _run(["apt-get", "update", "-q"], timeout=600, env=env)
            proc = _run(install, timeout=600, env=env)
    except subprocess.TimeoutExpired:
        raise SlurmUnavailable("apt-get did not finish in 10 minutes") from None
    finally:
        if made_policy:
            policy.unlink(missing_ok=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise SlurmUnavailable(f"apt-get install {' '.join(PACKAGES)} failed: {last}")
    missing = [b for b in BINARIES if not shutil.which(b)]
    if missing:
        raise SlurmUnavailable(f"installed {' '.join(PACKAGES)} but {', '.join(missing)} still missing")


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class SlurmCluster:
    """One slurmctld + one slurmd on 127.0.0.1 and a private munged; see the module docstring."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.conf = base / "slurm.conf"
        self.procs: dict[str, subprocess.Popen] = {}
        self.node = ""
        self.cpus = 0

    # ---- life cycle --------------------------------------------------------------------------------
    @classmethod
    def start(cls, timeout: float = 60) -> SlurmCluster:
        """Install if needed, configure and start the daemons, wait until the node is idle."""
        ensure_installed()
        base = Path(tempfile.mkdtemp(prefix="chatft-slurm-"))
        base.chmod(0o755)  # munged (as munge) must reach its folder inside
        cluster = cls(base)
        try:
            cluster._start_munge()
            cluster._write_conf()
            cluster._start_slurm(timeout)
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def _start_munge(self) -> None:
        munge_dir = self.base / "munge"
        munge_dir.mkdir()
        munge_dir.chmod(0o755)  # clients need to reach the socket in it; the key itself is 0400
        key = munge_dir / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        shutil.chown(munge_dir, "munge", "munge")
        shutil.chown(key, "munge", "munge")
        self.munge_socket = munge_dir / "munge.socket"
        cmd = [
            "setpriv", "--reuid=munge", "--regid=munge", "--init-groups",
            "munged", "--foreground",
            f"--key-file={key}",
            f"--socket={self.munge_socket}",
            f"--pid-file={munge_dir / 'munged.pid'}",
            f"--log-file={munge_dir / 'munged.log'}",
            f"--seed-file={munge_dir / 'munged.seed'}",
        ]  # fmt: skip
        self._spawn("munged", cmd)  # setpriv execs munged: the PID recorded is munged's
        self._wait_for(lambda: self.munge_socket.exists(), 20, "munged did not create its socket")

    def _write_conf(self) -> None:
        proc = _run(["slurmd", "-C"])
        line = next((x for x in proc.stdout.splitlines() if x.startswith("NodeName=")), None)
        if line is None:
            raise SlurmUnavailable(f"slurmd -C printed no node line: {proc.stdout}{proc.stderr}")
        fields = dict(f.split("=", 1) for f in line.split())
        self.node = fields.pop("NodeName")
        self.cpus = int(fields.get("CPUs", "1"))
        hardware = " ".join(f"{k}={v}" for k, v in fields.items() if k not in ("UpTime", "RealMemory"))
        ctld_port, slurmd_port = _free_ports(2)
        b = self.base
        for d in ("state", "spool"):
            (b / d).mkdir()
        lines = [
            "ClusterName=chatfttest",
            f"SlurmctldHost={self.node}(127.0.0.1)",
            f"SlurmctldPort={ctld_port}",
            f"SlurmdPort={slurmd_port}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            # cred_expire: how long a requeued job waits before it may start again (default 120 s).
            f"AuthInfo=socket={self.munge_socket},cred_expire=10",
            f"StateSaveLocation={b / 'state'}",
            f"SlurmdSpoolDir={b / 'spool'}",
            f"SlurmctldPidFile={b / 'slurmctld.pid'}",
            f"SlurmdPidFile={b / 'slurmd.pid'}",
            f"SlurmctldLogFile={b / 'slurmctld.log'}",
            f"SlurmdLogFile={b / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "MpiDefault=none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "ReturnToService=2",
            "MailProg=/bin/true",
            "MinJobAge=300",  # finished jobs stay visible to `scontrol show job` while tests poll
            "KillWait=5",  # SIGTERM -> SIGKILL delay when a job is cancelled or requeued
            "SchedulerParameters=sched_interval=2,bf_interval=2",  # start a requeued job soon
            f"FirstJobId={random.randint(1000, 9000)}",  # Lightning's MASTER_PORT is 15000 + job id
            f"NodeName={self.node} NodeAddr=127.0.0.1 {hardware} State=UNKNOWN",
            "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
        ]
        self.conf.write_text("\n".join(lines) + "\n")

    def _start_slurm(self, timeout: float) -> None:
        self._spawn("slurmctld", ["slurmctld", "-D", "-i", "-f", str(self.conf)])
        self._wait_for(lambda: "UP" in self.run(["scontrol", "ping"]).stdout, timeout, "slurmctld is not UP")
        self._spawn("slurmd", ["slurmd", "-D", "-N", self.node, "-f", str(self.conf)])
        self._wait_for(
            lambda: self.run(["sinfo", "-h", "-o", "%T"]).stdout.strip() == "idle",
            timeout,
            "the node did not become idle",
        )

    def _spawn(self, name: str, cmd: list[str]) -> None:
        log = open(self.base / f"{name}.out", "w")  # noqa: SIM115 - closed with the process
        self.procs[name] = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env(), start_new_session=True
        )
        log.close()

    def _wait_for(self, ready, timeout: float, what: str) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise SlurmUnavailable(f"{name} exited with {proc.returncode}: {self.tail(name)}")
            if ready():
                return
            time.sleep(0.5)
        raise SlurmUnavailable(
            f"{what} after {timeout:.0f} s: {self.tail('slurmctld')} {self.tail('slurmd')}"
        )

    def tail(self, name: str, n: int = 5) -> str:
        """The last lines of a daemon's output (for error messages)."""
        texts = []
        for path in (
            self.base / f"{name}.out",
            self.base / f"{name}.log",
            self.base / "munge" / f"{name}.log",
        ):
            if path.exists():
                texts += path.read_text(errors="replace").splitlines()[-n:]
        return " | ".join(texts)

    def stop(self) -> None:
        """Cancel every job of this cluster, then stop the daemons by their PIDs (munged last)."""
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            ids = self.run(["squeue", "-h", "-o", "%i"]).stdout.split()
            if ids:
                self.run(["scancel", *ids])
                end = time.monotonic() + 30
                while (
                    time.monotonic() < end
                    and self.run(["squeue", "-h", "-t", "R,CG", "-o", "%i"]).stdout.strip()
                ):
                    time.sleep(0.5)
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if not os.environ.get("CHATFT_KEEP_SLURM"):  # set it to keep configs and daemon logs for a look
            shutil.rmtree(self.base, ignore_errors=True)

    # ---- clients -----------------------------------------------------------------------------------
    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The environment of a client (and of its jobs): this cluster's SLURM_CONF, no inherited job vars."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
        for k in ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK", "LOCAL_RANK", "NODE_RANK"):
            env.pop(k, None)
        env["SLURM_CONF"] = str(self.conf)
        env.update(extra or {})
        return env

    def run(self, cmd: list[str], timeout: float = 30, **kwargs) -> subprocess.CompletedProcess:
        """Run a SLURM client command against this cluster."""
        return _run(cmd, timeout=timeout, env=kwargs.pop("env", self.env()), **kwargs)

    def sbatch(self, args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
        """Submit (``args``: sbatch options, the job file, its arguments); returns the job id."""
        proc = self.run(["sbatch", "--parsable", *args], cwd=cwd, env=self.env(env))
        if proc.returncode != 0:
            raise RuntimeError(f"sbatch {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc.stdout.strip().split(";")[0]

    def job(self, job_id: str) -> dict[str, str]:
        """``scontrol show job`` as a dict (JobState, Restarts, ExitCode, StdOut, ...)."""
        out = self.run(["scontrol", "show", "job", "-o", job_id]).stdout
        return dict(re.findall(r"(\w+)=(\S*)", out))

    def wait(self, job_id: str, timeout: float, until=FINAL_STATES.__contains__) -> dict[str, str]:
        """Poll once a second (faster than ``sbatch --wait``) until ``until(JobState)``; the job's fields."""
        end = time.monotonic() + timeout
        info: dict[str, str] = {}
        while time.monotonic() < end:
            info = self.job(job_id)
            if until(info.get("JobState", "")):
                return info
            time.sleep(1)
        raise TimeoutError(f"job {job_id} still {info.get('JobState')} after {timeout:.0f} s: {info}")
