"""Writing checkpoint files so a crash never leaves a torn file, and checking one fits the data.

Reading them (``torch.load(weights_only=True)``, chatft-checked) is :func:`chatft.model.checkpoint.load_checkpoint`,
shared with inference and export.

* :class:`AtomicCheckpointIO` is the Lightning checkpoint plugin the CLI installs: it writes to a temporary
  file in the same folder, fsyncs it, then renames it over the target (``os.replace`` is atomic on POSIX),
  so a kill while saving leaves the previous ``last.ckpt`` intact. Lightning's own ``_atomic_save`` stages
  the file in the system temp folder and moves it, which is a copy (not atomic) when ``/tmp`` is another
  file system, as on most clusters, and never fsyncs. Loading goes through
  :func:`~chatft.model.checkpoint.load_checkpoint`, so ``--ckpt_path`` is safe as well.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins import TorchCheckpointIO

from chatft.core.errors import CheckpointError
from chatft.core.labels import known_count
from chatft.model.checkpoint import load_checkpoint


def _is_local(path: str | Path) -> bool:
    return "://" not in str(path) or str(path).startswith("file://")


def check_labels_match(
    hparams: dict, intent_labels: Sequence[str], slot_labels: Sequence[str], ckpt_path: str, data_dir: str
) -> None:
    """Fail when a checkpoint was trained on other labels than ``data_dir``'s training split gives.

    The model's output ids mean the checkpoint's labels; read with another vocabulary they would name the
    wrong intents and slots without any error, so a mismatch must stop the run.
    """
    for kind, theirs, ours in (
        ("intents", hparams.get("intent_labels") or [], intent_labels),
        ("slot tags", hparams.get("slot_labels") or [], slot_labels),
    ):
        theirs, ours = list(theirs), list(ours)
        if theirs == ours:
            continue
        only_ckpt = sorted(set(theirs) - set(ours))
        only_data = sorted(set(ours) - set(theirs))
        detail = (
            f"only in the checkpoint: {only_ckpt[:3]}{' ...' if len(only_ckpt) > 3 else ''}; "
            f"only in the data: {only_data[:3]}{' ...' if len(only_data) > 3 else ''}"
            if only_ckpt or only_data
            else "same labels in another order"
        )
        # <unk> is a placeholder every vocabulary starts with, not an intent or tag: it is not counted.
        n_theirs, n_ours = known_count(theirs), known_count(ours)
        raise CheckpointError(
            f"{ckpt_path}: trained on {n_theirs} {kind} but {data_dir}'s train split gives {n_ours} "
            f"({detail}); use the data the model was trained on, or start a new fit without --ckpt_path"
        )


def atomic_save(obj: Any, path: str | Path, save: Callable[[Any, Any], None] | None = None) -> None:
    """Write ``obj`` to ``path`` (with ``save``, default ``torch.save``) so that ``path`` is always either the
    old file or the complete new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            (save or torch.save)(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint I/O: atomic, fsynced local writes; safe (``weights_only``) chatft-checked reads."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None or not _is_local(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        atomic_save(checkpoint, str(path).removeprefix("file://"))

    def load_checkpoint(
        self, path, map_location: Any = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        if not _is_local(path):
            return super().load_checkpoint(path, map_location=map_location, weights_only=True)
        return load_checkpoint(path, map_location=map_location or "cpu")


def find_last_checkpoints(folder: str | Path) -> list[Path]:
    """``last.ckpt`` / ``last-vN.ckpt`` files in ``folder`` (what Lightning's ``ckpt_path="last"`` considers)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix == ".ckpt" and re.match(r"^last(-v\d+)?$", p.stem))
