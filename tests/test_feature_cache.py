"""The cache's lock and atomic entries (torch-free): two processes build once, the second waits."""

from __future__ import annotations

import json
import multiprocessing
import time
from pathlib import Path

from chatft.data_tools.feature_cache import MARKER, cache_key, cached_build, clear_cache, files_digest


def _slow_build(folder: Path) -> dict:
    """Stands for a tokenization: counts itself in builds.log, takes a second, writes one file."""
    with open(folder.parent / "builds.log", "a") as f:
        f.write("built\n")
    time.sleep(1.0)
    (folder / "data.bin").write_bytes(b"x" * 10)
    return {"rows": 10}


def _worker(cache_dir: str, out: str) -> None:
    started = time.monotonic()
    entry, info, built = cached_build(Path(cache_dir), "train-key", _slow_build)
    record = {"entry": str(entry), "info": info, "built": built, "seconds": time.monotonic() - started}
    Path(out).write_text(json.dumps(record))


def test_two_processes_build_once_and_the_second_waits(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_worker, args=(str(tmp_path), str(tmp_path / f"r{i}.json"))) for i in range(2)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    records = [json.loads((tmp_path / f"r{i}.json").read_text()) for i in range(2)]
    assert (tmp_path / "builds.log").read_text() == "built\n"
    assert sorted(r["built"] for r in records) == [False, True]
    waiter = next(r for r in records if not r["built"])
    assert (
        waiter["seconds"] >= 0.5
    )  # it waited for the builder instead of building or reading a partial entry
    assert {r["entry"] for r in records} == {str(tmp_path / "train-key")}
    assert [r["info"] for r in records] == [{"rows": 10}, {"rows": 10}]
    marker = json.loads((tmp_path / "train-key" / MARKER).read_text())
    assert marker == {"files": {"data.bin": 10}, "info": {"rows": 10}}
    assert (
        sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    )  # no temporary folder left


def test_a_failed_build_leaves_no_entry(tmp_path):
    def failing(folder: Path) -> dict:
        (folder / "half.bin").write_bytes(b"x")
        raise ValueError("boom")

    try:
        cached_build(tmp_path, "k", failing)
    except ValueError as err:
        assert str(err) == "boom"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.lock"]


def test_keys_follow_bytes_and_parts(tmp_path):
    a = tmp_path / "a"
    a.write_bytes(b"one\n")
    before = files_digest([a])
    a.write_bytes(b"one \n")
    assert files_digest([a]) != before
    assert cache_key({"x": 1, "y": [1, 2]}) == cache_key({"y": [1, 2], "x": 1})
    assert cache_key({"x": 1}) != cache_key({"x": 2})


def test_clear_cache(tmp_path, capsys):
    cached_build(tmp_path / "c", "k", lambda folder: (folder / "f").write_bytes(b"12345") and {})
    clear_cache(str(tmp_path / "c"))
    assert capsys.readouterr().out == f"{tmp_path / 'c'}: cleared 1 entries, 0.0 MB\n"
    assert not (tmp_path / "c").exists()
    clear_cache(str(tmp_path / "c"))
    assert capsys.readouterr().out == f"{tmp_path / 'c'}: no cache (nothing to clear)\n"
