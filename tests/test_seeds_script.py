"""benchmarks/seeds.py: a failed fit stops the script with the fit's own error, not a bare traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_a_failed_fit_names_its_error_and_keeps_its_output(tmp_path):
    missing = tmp_path / "no-such-data"
    out = tmp_path / "runs"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "seeds.py"),
            "--seeds",
            "3",
            "--out",
            str(out),
            "--",
            "--config",
            str(ROOT / "configs" / "demo.yaml"),
            "--data.data_dir",
            str(missing),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    log = out / "seed3" / "fit.log"
    error = (
        f"chatft: error: {missing}: data directory not found (set --data.data_dir to a folder with the data)"
    )
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"seeds.py: seed 3: chatft fit failed (exit 2; all of its output: {log}):",
        error,
    ]
    assert error in log.read_text(encoding="utf-8")
    assert not (out / "results.json").exists()
