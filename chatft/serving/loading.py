"""Model loading for the HTTP server: the predictor, what ``/version`` says about it, and the /chat policy.

Torch is imported only for ``--ckpt_path``: with ``--onnx`` the :class:`~chatft.serving.onnx_predictor.
OnnxPredictor` runs on onnxruntime alone (tests/test_boundary.py imports this module without torch). A learned
dialogue state tracker (its checkpoint, or an export whose manifest says ``kind: dialogue_state_tracker``) loads
as :class:`~chatft.serving.tracker_predictor.TrackerPredictor` or :class:`~chatft.serving.onnx_tracker.OnnxTracker`
(:func:`load_tracker`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatft.core.labels import known_count
from chatft.serving.settings import ServeSettings

__all__ = ["WARMUP_TEXTS", "TRACKER", "LoadedModel", "load_model", "load_tracker", "choose_policy"]

#: Run once before ``/ready`` answers 200: the first calls allocate and pick kernels, a client should not pay.
WARMUP_TEXTS = ("book a flight from boston to denver tomorrow morning", "hi", "what is fare code h")


#: ``LoadedModel.kind`` of a learned dialogue state tracker (an intent and slot model is ``"nlu"``).
TRACKER = "dialogue_state_tracker"
#: Turns run once before ``/ready`` when the model is a tracker: (previous state, system, user).
TRACKER_WARMUP = (
    ({}, "", "i want a cheap restaurant in the centre"),
    ({}, "what food would you like ?", "thai"),
)


@dataclass
class LoadedModel:
    """The predictor (or tracker) and its ``/version`` description."""

    predictor: Any
    info: dict
    kind: str = "nlu"


def fingerprint(path: Path) -> str:
    """The first 16 hex digits of the file's SHA-256: which weights a server runs, in ``/version``."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def load_model(settings: ServeSettings) -> LoadedModel:
    """Load the predictor (torch only for ``ckpt_path``) and describe it for ``/version``."""
    from chatft import __version__

    tracker = load_tracker(settings)
    if tracker is not None:
        return tracker
    if settings.onnx:
        from chatft.serving.onnx_predictor import OnnxPredictor

        folder = Path(settings.onnx).expanduser()
        predictor = OnnxPredictor(folder, top_k=settings.top_k, threads=settings.threads)
        backend, source = "onnx", folder
        digest = fingerprint(folder / predictor.manifest["model"])
    else:
        from chatft.serving.predictor import Predictor

        if settings.threads:
            import torch

            torch.set_num_threads(settings.threads)
        source = Path(settings.ckpt_path).expanduser()  # type: ignore[arg-type]
        predictor = Predictor.from_checkpoint(str(source), device=settings.device, top_k=settings.top_k)
        backend, digest = "pytorch", fingerprint(source)
    slot_types = sorted({t[2:] for t in predictor.slot_labels if t[:2] in ("B-", "I-")})
    info = {
        "chatft": __version__,
        "backend": backend,
        "model": str(source),
        "fingerprint": digest,
        "intents": known_count(predictor.intent_labels),
        "slot_types": len(slot_types),
        "max_length": predictor.max_length,
    }
    return LoadedModel(predictor, info)


def load_tracker(settings: ServeSettings) -> LoadedModel | None:
    """The learned dialogue state tracker when ``--onnx``/``--ckpt_path`` is one, else None."""
    from chatft import __version__

    if settings.onnx:
        from chatft.serving.onnx_tracker import OnnxTracker, is_tracker_export

        folder = Path(settings.onnx).expanduser()
        if not is_tracker_export(folder):
            return None
        tracker = OnnxTracker(folder, threads=settings.threads)
        backend, source, digest = "onnx", folder, fingerprint(folder / tracker.manifest["model"])
    else:
        from chatft.serving.tracker_predictor import TrackerPredictor, is_tracker_checkpoint

        source = Path(settings.ckpt_path).expanduser()  # type: ignore[arg-type]
        if not is_tracker_checkpoint(source):
            return None
        if settings.threads:
            import torch

            torch.set_num_threads(settings.threads)
        tracker = TrackerPredictor.from_checkpoint(source, device=settings.device)
        backend, digest = "pytorch", fingerprint(source)
    info = {
        "chatft": __version__,
        "backend": backend,
        "kind": TRACKER,
        "model": str(source),
        "fingerprint": digest,
        "slots": list(tracker.slots),
        "requestable": list(tracker.schema.requestable),
        "max_length": tracker.max_length,
    }
    return LoadedModel(tracker, info, TRACKER)


def choose_policy(requirements: str | None, intent_labels, slot_labels):
    """``--requirements``, else the shipped policy whose intents and slots the model all knows, else none."""
    from chatft.dialogue.tracker import SHIPPED, DialoguePolicy

    if requirements:
        return DialoguePolicy.load(requirements)
    for path in sorted(SHIPPED.glob("*.yaml")):
        policy = DialoguePolicy.load(path)
        if policy.intents and not policy.unknown_labels(intent_labels, slot_labels):
            return policy
    return DialoguePolicy()
