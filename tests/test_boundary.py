"""The torch-free boundary: the core, the ONNX predictor and the dialogue tracker import without torch.

Each module is imported in a fresh interpreter (this process has torch loaded already), and torch, Lightning
and transformers must be absent from ``sys.modules`` afterwards. A serving image then stays small, and the
boundary cannot rot silently: adding ``import torch`` to any module below makes this test fail.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import chatft.core
import chatft.data_tools

HEAVY = ("torch", "lightning", "transformers")
CORE = sorted(f"chatft.core.{m.name}" for m in pkgutil.iter_modules(chatft.core.__path__))
DATA_TOOLS = sorted(f"chatft.data_tools.{m.name}" for m in pkgutil.iter_modules(chatft.data_tools.__path__))
TORCH_FREE = [
    "chatft",
    "chatft.core",
    *CORE,
    "chatft.data_tools",
    *DATA_TOOLS,
    "chatft.serving.base",
    "chatft.serving.onnx_predictor",
    "chatft.serving.server",
    "chatft.serving.settings",
    "chatft.serving.requests",
    "chatft.serving.loading",
    "chatft.serving.app",
    "chatft.serving.chat",
    "chatft.serving.batcher",
    "chatft.serving.sessions",
    "chatft.serving.rasa",
    "chatft.serving.metrics",
    "chatft.dialogue",
    "chatft.dialogue.tracker",
    "chatft.dialogue.record",
    # The learned tracker's text, labels, decoding and scores: the ONNX tracker and chat reuse them.
    "chatft.dialogue.dialogues",
    "chatft.dialogue.values",
    "chatft.dialogue.state_labels",
    "chatft.dialogue.state_update",
    "chatft.dialogue.turn_input",
    "chatft.dialogue.dst_scores",
    # The learned tracker in the product: policy and sessions, and the ONNX tracker with its tokenizer.
    "chatft.dialogue.state_policy",
    "chatft.dialogue.state_session",
    "chatft.serving.pair_tokenizer",
    "chatft.serving.tracker_base",
    "chatft.serving.onnx_tracker",
    "chatft.serving.tracker_chat",
    "chatft.command_line",
    # encoders install|list need no torch: an image build or CI step can fetch the encoder before torch.
    "chatft.core.encoder_store",
    "chatft.model.encoder_install",
    "chatft.cli",
    "chatft.presets",
    "chatft.__main__",
]


def heavy_modules_after_import(module: str) -> list[str]:
    """The heavy packages present in ``sys.modules`` after importing ``module`` in a fresh interpreter."""
    code = f"import sys, {module}\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return [m for m in out.stdout.strip().split(",") if m]


def test_core_lists_every_module():
    assert {
        "chatft.core.tags",
        "chatft.core.formats",
        "chatft.core.text",
        "chatft.core.labels",
        "chatft.core.substitution",
    } <= set(CORE)
    assert {
        "chatft.data_tools.convert",
        "chatft.data_tools.stats",
        "chatft.data_tools.check",
        "chatft.data_tools.augment",
    } <= set(DATA_TOOLS)


@pytest.mark.parametrize("module", TORCH_FREE)
def test_module_imports_without_torch(module):
    assert heavy_modules_after_import(module) == []


def test_boundary_check_detects_a_torch_import():
    """The check itself can fail: a module that imports torch is reported."""
    assert heavy_modules_after_import("chatft.model.crf") == ["torch"]
