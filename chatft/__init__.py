"""chatft: joint intent detection and slot filling by fine-tuning BERT-family encoders.

``from chatft import Predictor, OnnxPredictor`` works, but each is imported only when first used
(PEP 562), so ``import chatft`` stays light and ``OnnxPredictor`` pulls in neither torch nor Lightning.
``TrackerPredictor`` and ``OnnxTracker`` are the learned dialogue state tracker's (PyTorch and onnxruntime).
``from chatft import split_words`` is the word splitter ``predict`` uses: prepare JSON Lines data with it so
training sees the words inference will see.
"""

from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "Predictor": "chatft.serving.predictor",
    "OnnxPredictor": "chatft.serving.onnx_predictor",
    "TrackerPredictor": "chatft.serving.tracker_predictor",
    "OnnxTracker": "chatft.serving.onnx_tracker",
    "Prediction": "chatft.core.prediction",
    "Slot": "chatft.core.prediction",
    "split_words": "chatft.core.text",
}
__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'chatft' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
