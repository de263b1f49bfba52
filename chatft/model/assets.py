"""What a checkpoint carries for inference besides the weights: tokenizer files, encoder config, max_length.

Every checkpoint chatft saves embeds, under :data:`ASSETS_KEY`, the tokenizer's files (text), the encoder's
config and the training ``max_length`` (plain types: the file still loads with ``weights_only``). With the
label lists in ``hyper_parameters``, :func:`chatft.model.inference.load_for_inference` rebuilds the model from
the checkpoint file alone: no training data, no encoder folder, no download.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

ASSETS_KEY = "chatft_inference"
ASSETS_VERSION = 1


def tokenizer_files(tokenizer) -> dict[str, str]:
    """The tokenizer's saved files as ``{name: text}`` (binary files are skipped: ``tokenizer.json`` suffices)."""
    files = {}
    with tempfile.TemporaryDirectory() as d:
        tokenizer.save_pretrained(d)
        for f in sorted(Path(d).iterdir()):
            if f.is_file():
                try:
                    files[f.name] = f.read_text(encoding="utf-8")
                except UnicodeDecodeError:
                    continue
    return files


def make_assets(tokenizer, encoder_config: dict, max_length: int | None) -> dict:
    """The dict embedded in checkpoints under :data:`ASSETS_KEY` (plain types: loads with weights_only)."""
    return {
        "version": ASSETS_VERSION,
        "tokenizer_files": tokenizer_files(tokenizer),
        "encoder_config": encoder_config,
        "max_length": max_length,
    }


def usable(assets: dict | None) -> bool:
    """True when ``assets`` are of the version this code reads (older checkpoints have none)."""
    return bool(assets) and assets.get("version") == ASSETS_VERSION


def write_tokenizer(assets_or_tokenizer, folder: str | Path) -> Path:
    """Write the tokenizer files (from embedded assets, or a tokenizer object) into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(assets_or_tokenizer, dict):
        for name, text in assets_or_tokenizer["tokenizer_files"].items():
            (folder / Path(name).name).write_text(text, encoding="utf-8")
    else:
        assets_or_tokenizer.save_pretrained(folder)
    return folder


def tokenizer_from_assets(assets: dict):
    """The fast tokenizer the checkpoint was trained with, from its embedded files."""
    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory() as d:
        write_tokenizer(assets, d)
        return AutoTokenizer.from_pretrained(d, use_fast=True)


def encoder_from_config(config_dict: dict):
    """A randomly initialised encoder of the embedded config's architecture (its weights come from the
    checkpoint); the config already has the trained depth and dropout."""
    from transformers import AutoConfig, AutoModel

    d = dict(config_dict)
    config = AutoConfig.for_model(d.pop("model_type"), **d)
    try:
        return AutoModel.from_config(config, add_pooling_layer=False)
    except TypeError:
        return AutoModel.from_config(config)
