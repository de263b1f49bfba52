"""The on-disk cache of tokenized splits: where it lives, its keys, one builder at a time, atomic entries.

``fit`` on a large data folder turns each split into a Hugging Face ``datasets`` Arrow dataset once
(:mod:`chatft.training.arrow_features`) and every later run, and every other DDP process, memory-maps it.
This module holds the parts that know nothing of Arrow or torch, so ``python -m chatft data cache clear``
stays torch-free:

* **Where**: ``--data.cache_dir``, else ``$CHATFT_CACHE_DIR``, else ``$XDG_CACHE_HOME/chatft/features``
  (``~/.cache/chatft/features``). Put it on a node-local disk on a cluster: one process per node builds.
* **Keys**: a SHA-256 of named parts (a hash of the split files' bytes, the tokenizer's full serialized
  state, every option that changes the features); any change is a new entry, never a stale hit.
* **One builder**: a file lock per key; whoever takes it first builds, the others wait and then read.
* **Atomic**: an entry is built in a temporary folder beside it and renamed into place only when complete,
  with a ``chatft-cache.json`` that lists its files and sizes; an entry whose files do not match (a crash,
  a full disk, a hand-edited file) is deleted and built again, never read.

``datasets`` has a fingerprint cache of its own; it keys on the Python function that made a dataset and
its inputs, so it cannot see a changed data file or tokenizer file by itself, and it has no lock for
processes that start together. An entry here is a folder with one Arrow file (``Dataset.from_file``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

#: Written last into a finished entry: its files and their sizes (``files``) plus what the builder returned.
MARKER = "chatft-cache.json"
#: Bump when the stored features change meaning (a new column, another alignment rule): old entries then miss.
FORMAT_VERSION = 2
_CHUNK = 8 << 20


def default_cache_dir() -> Path:
    """``$CHATFT_CACHE_DIR``, else ``$XDG_CACHE_HOME/chatft/features``, else ``~/.cache/chatft/features``."""
    if os.environ.get("CHATFT_CACHE_DIR"):
        return Path(os.environ["CHATFT_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "chatft" / "features"


def files_digest(paths: Iterable[Path]) -> str:
    """XXH3-128 of the files' names (in the order given), sizes and bytes: a changed byte changes the key.

    Every process hashes the files on every run (the key is needed before anything is read), so the hash
    is xxhash's XXH3 (tens of GB/s, a dependency of ``datasets``, which the cache needs anyway): a
    million-utterance split (about 170 MB) takes milliseconds instead of SHA-256's fraction of a second.
    It guards against changed data, not against an adversary.
    """
    import xxhash

    h = xxhash.xxh3_128()
    for path in paths:
        h.update(f"{path.name}\0{path.stat().st_size}\0".encode())
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
    return h.hexdigest()


def cache_key(parts: dict) -> str:
    """SHA-256 of the JSON of ``parts`` (sorted keys) and :data:`FORMAT_VERSION`."""
    text = json.dumps({"format_version": FORMAT_VERSION, **parts}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def read_entry(entry: Path) -> dict | None:
    """The marker of a complete entry whose files all have their recorded sizes, else None."""
    try:
        marker = json.loads((entry / MARKER).read_text(encoding="utf-8"))
        files = marker["files"]
        if not all((entry / name).stat().st_size == size for name, size in files.items()):
            return None
        return marker
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _write_marker(folder: Path, info: dict) -> dict:
    files = {
        str(p.relative_to(folder)): p.stat().st_size
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MARKER
    }
    marker = {"files": files, "info": info}
    (folder / MARKER).write_text(json.dumps(marker, indent=1), encoding="utf-8")
    return marker


def cached_build(
    cache_dir: Path, name: str, build: Callable[[Path], dict], wait_message: str | None = None
) -> tuple[Path, dict, bool]:
    """The entry ``cache_dir/name``, built by ``build(folder)`` unless a complete one is there.

    ``build`` writes the entry's files into the (empty, temporary) ``folder`` and returns a JSON-able dict
    that the marker keeps (``marker["info"]``). Returns ``(entry, info, built)``; ``built`` is False on a
    hit. Processes that ask for the same entry at once take a file lock: one builds, the others wait on
    the lock, then find the entry complete and read it.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    entry = cache_dir / name
    marker = read_entry(entry)
    if marker is not None:
        return entry, marker["info"], False
    started = time.monotonic()
    with _locked(cache_dir / f"{name}.lock"):
        waited = time.monotonic() - started
        marker = read_entry(entry)
        if marker is not None:
            if waited > 1 and wait_message:
                log.info("%s: built by another process (waited %.1f s)", wait_message, waited)
            return entry, marker["info"], False
        if entry.exists():
            log.warning("%s: incomplete or damaged cache entry, building it again", entry)
            shutil.rmtree(entry)
        tmp = cache_dir / f".tmp-{name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            info = build(tmp)
            _write_marker(tmp, info)
            os.rename(tmp, entry)  # atomic on one file system: readers see no entry or a complete one
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return entry, info, True


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``path``, held until the block ends (released by the OS if we die).

    The standard library's ``fcntl.flock`` rather than the ``filelock`` package: this module stays free of
    anything but the base install (``data cache clear`` needs it); POSIX only, as the SLURM support is.
    """
    import fcntl

    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def clear_cache(cache_dir: str | None = None) -> None:
    """Delete the tokenized-data cache that ``fit`` keeps for large data folders.

    Safe at any time except while a run is building an entry. The next run on large data builds again.

    Args:
        cache_dir: The cache folder (fit's --data.cache_dir); default: $CHATFT_CACHE_DIR, else
            $XDG_CACHE_HOME/chatft/features, else ~/.cache/chatft/features.
    """
    root = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    if not root.is_dir():
        print(f"{root}: no cache (nothing to clear)")
        return
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    entries = sum(1 for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    shutil.rmtree(root)
    print(f"{root}: cleared {entries} entries, {size / 1e6:.1f} MB")
