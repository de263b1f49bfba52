"""Reading checkpoint files without running code, and what a chatft checkpoint stores besides the weights.

:func:`load_checkpoint` opens a file with ``torch.load(weights_only=True)``: only tensors and plain values are
unpickled, so a crafted file cannot execute anything; a file that is not a chatft checkpoint is refused with
one line that says why. Every reader (inference, export, distillation, calibration, Lightning's
``--ckpt_path`` through :class:`chatft.training.checkpoint.AtomicCheckpointIO`) goes through it.

A chatft checkpoint is Lightning's dict: ``state_dict`` (the :class:`~chatft.model.joint.JointModel` weights
under ``model.``), ``hyper_parameters`` (:class:`~chatft.model.spec.ModelSpec` reads the model's), the
inference assets under :data:`chatft.model.assets.ASSETS_KEY` and, once calibrated, the temperature and
out-of-scope decision under :data:`OOS_KEY`.
"""

from __future__ import annotations

import pickle
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from chatft.core.errors import CheckpointError, ConfigError
from chatft.core.oos import OOSState

#: Checkpoint key of the fitted :class:`~chatft.core.oos.OOSState` (absent: not calibrated).
OOS_KEY = "chatft_oos"
#: Prefix of the :class:`~chatft.model.joint.JointModel` weights in ``state_dict`` (the module's attribute).
MODEL_PREFIX = "model."


def load_checkpoint(path: str | Path, map_location: Any = "cpu", mmap: bool = False) -> dict:
    """A chatft checkpoint as a dict, read with ``weights_only=True`` (no code from the file runs).

    Raises :class:`CheckpointError` when the file is missing, unreadable, holds anything but tensors and
    plain values (a pickle that would import or call code), or is not a chatft checkpoint.
    """
    p = Path(str(path).removeprefix("file://")).expanduser()
    if not p.is_file():
        raise CheckpointError(f"{path}: checkpoint not found (give a .ckpt file written by `chatft fit`)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "Detected pickle protocol 4": the error below says it all
            ckpt = torch.load(p, map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as err:  # noqa: BLE001 - every way of failing to read is one actionable line
        text = str(err)
        if isinstance(err, pickle.UnpicklingError) and "weights only load failed" in text.lower():
            found = re.search(r"unsupported global:? (?:GLOBAL )?(\S+)", text, re.IGNORECASE)
            if found:
                raise CheckpointError(
                    f"{path}: refused to load: the file imports {found.group(1)}, which a pickle can use to "
                    "run code (chatft only loads tensors and plain values; use a .ckpt written by `chatft fit`)"
                ) from None
            raise CheckpointError(
                f"{path}: refused to load: not a file chatft can read safely (it holds pickle data other "
                "than tensors and plain values, or is no checkpoint at all; use a .ckpt written by `chatft fit`)"
            ) from None
        first = next((line for line in text.splitlines() if line.strip()), "")
        raise CheckpointError(
            f"{path}: not a readable checkpoint ({type(err).__name__}: {first[:200]}); the file may be "
            "truncated or not a checkpoint at all"
        ) from None
    check_chatft_checkpoint(ckpt, path)
    return ckpt


def check_chatft_checkpoint(ckpt: Any, path: str | Path) -> None:
    """Raise :class:`CheckpointError` unless ``ckpt`` looks like what ``chatft fit`` writes."""
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path}: not a chatft checkpoint (holds a {type(ckpt).__name__}, not a dict)")
    state = ckpt.get("state_dict")
    hparams = ckpt.get("hyper_parameters")
    if not isinstance(state, dict) or not any(str(k).startswith(MODEL_PREFIX) for k in state):
        raise CheckpointError(f"{path}: not a chatft checkpoint (no state_dict with model.* weights)")
    tracker = isinstance(hparams, dict) and isinstance(
        hparams.get("schema"), dict
    )  # a dialogue state tracker
    if not isinstance(hparams, dict) or not (hparams.get("intent_labels") or tracker):
        raise CheckpointError(
            f"{path}: not a chatft checkpoint (no intent_labels in hyper_parameters, nor a tracker schema)"
        )


def model_state_dict(ckpt: dict) -> dict:
    """The :class:`~chatft.model.joint.JointModel` weights of a checkpoint (``model.`` prefix removed)."""
    n = len(MODEL_PREFIX)
    return {k[n:]: v for k, v in ckpt["state_dict"].items() if k.startswith(MODEL_PREFIX)}


def checkpoint_labels(path: str | Path) -> tuple[list[str], list[str]]:
    """``(intent_labels, slot_labels)`` of a checkpoint, or of a folder with ``intents.json`` (+ ``slot_tags.json``)."""
    from chatft.core.labels import LabelVocab

    p = Path(path).expanduser()
    if p.is_dir():
        if not (p / "intents.json").is_file():
            raise ConfigError(
                f"{path}: no intents.json in this folder (give a checkpoint or an export folder)"
            )
        slots = LabelVocab.load(p / "slot_tags.json").labels if (p / "slot_tags.json").is_file() else ()
        return list(LabelVocab.load(p / "intents.json").labels), list(slots)
    hparams = load_checkpoint(p, mmap=True)["hyper_parameters"]
    return list(hparams["intent_labels"]), list(hparams.get("slot_labels") or [])


def checkpoint_added_tokens(path: str | Path) -> list[str]:
    """The units a checkpoint's model added to its tokenizer (:mod:`chatft.model.vocabulary`); an export folder
    carries them in its tokenizer files instead, so none here."""
    p = Path(path).expanduser()
    if p.is_dir():
        return []
    return list(load_checkpoint(p, mmap=True)["hyper_parameters"].get("added_tokens") or [])


def oos_state_of(ckpt: dict) -> OOSState | None:
    """The temperature and out-of-scope decision fitted at the end of ``fit`` (None: not calibrated)."""
    return OOSState.from_dict(ckpt.get(OOS_KEY))


def state_to_checkpoint(state: OOSState) -> dict:
    """The state as checkpoint values: arrays as tensors (``torch.load(weights_only=True)`` reads them)."""
    return {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in state.to_dict().items()}
