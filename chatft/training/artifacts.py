"""What a checkpoint carries for inference (tokenizer, encoder config, max_length), and rebuilding the model.

Every checkpoint chatft saves embeds, under :data:`ASSETS_KEY`, what serving needs besides the weights:
the tokenizer's files (text), the encoder's config and the training ``max_length``. The label lists are in
``hyper_parameters``. So :func:`load_for_inference` rebuilds the model from the checkpoint file alone: no
training data, no encoder folder, no download. Checkpoints without the assets (older ones) fall back to
loading the tokenizer and config from ``hyper_parameters["encoder"]``, which must then be resolvable.

Checkpoint files are opened only through :func:`chatft.training.checkpoint.load_checkpoint` (``weights_only=True``,
chatft-checked), memory-mapped.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatft.core.errors import ConfigError

log = logging.getLogger(__name__)

ASSETS_KEY = "chatft_inference"
ASSETS_VERSION = 1
#: ``max_length`` used when neither the caller nor the checkpoint gives one (the datamodule default).
DEFAULT_MAX_LENGTH = 128


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
    from chatft.training.checkpoint import load_checkpoint

    hparams = load_checkpoint(p, mmap=True)["hyper_parameters"]
    return list(hparams["intent_labels"]), list(hparams.get("slot_labels") or [])


# ---- embedding ---------------------------------------------------------------------------------------
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


def module_assets(module) -> dict:
    """Assets of a training :class:`~chatft.training.module.IntentSlotModule` (tokenizer from its datamodule if any)."""
    from chatft.training.encoders import load_tokenizer

    trainer = getattr(module, "_trainer", None)
    datamodule = getattr(trainer, "datamodule", None) if trainer is not None else None
    tokenizer = getattr(datamodule, "tokenizer", None) or load_tokenizer(module.hparams.encoder)
    return make_assets(
        tokenizer, module.model.encoder.config.to_dict(), getattr(datamodule, "max_length", None)
    )


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


# ---- loading -----------------------------------------------------------------------------------------
@dataclass
class InferenceModel:
    """A :class:`~chatft.training.model.JointModel` in eval mode, its tokenizer, labels and ``max_length``."""

    model: Any
    tokenizer: Any
    intent_labels: tuple[str, ...]
    slot_labels: tuple[str, ...]
    max_length: int
    hparams: dict
    source: str
    #: Temperature and out-of-scope decision fitted at the end of ``fit`` (None: checkpoint from before).
    oos: Any = None
    #: Synonyms, regexes and lookup tables (:class:`chatft.core.entity_resources.EntityResources`; None: none).
    entities: Any = None


def _encoder_from_config(config_dict: dict):
    from transformers import AutoConfig, AutoModel

    d = dict(config_dict)
    config = AutoConfig.for_model(d.pop("model_type"), **d)
    try:
        return AutoModel.from_config(config, add_pooling_layer=False)
    except TypeError:
        return AutoModel.from_config(config)


def _tokenizer_from_assets(assets: dict):
    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory() as d:
        write_tokenizer(assets, d)
        return AutoTokenizer.from_pretrained(d, use_fast=True)


def _run_config_max_length(ckpt_path: str | Path) -> int | None:
    """``data.max_length`` from the ``config.yaml`` LightningCLI saved next to the checkpoint's folder, if any
    (for checkpoints written before max_length was embedded)."""
    config = Path(ckpt_path).expanduser().resolve().parent.parent / "config.yaml"
    if not config.is_file():
        return None
    try:
        import yaml

        value = (yaml.safe_load(config.read_text(encoding="utf-8")) or {}).get("data", {}).get("max_length")
    except Exception:  # noqa: BLE001 - a fallback only: an unreadable file means "unknown"
        return None
    return int(value) if isinstance(value, int) else None


def _within_positions(max_length: int, encoder, tokenizer) -> int:
    """``max_length`` capped at what the encoder can embed, so over-long inputs are truncated, never fail."""
    limits = [
        getattr(encoder.config, "max_position_embeddings", None),
        getattr(tokenizer, "model_max_length", None),
    ]
    limit = min((n for n in limits if isinstance(n, int) and 3 <= n < 1_000_000), default=None)
    if limit is not None and max_length > limit:
        log.warning("max_length %d is more than the encoder takes; using %d", max_length, limit)
        return limit
    return max_length


def load_for_inference(
    path: str | Path, device: str = "cpu", max_length: int | None = None
) -> InferenceModel:
    """Rebuild the trained model of a checkpoint for inference (eval mode, on ``device``)."""
    import torch

    from chatft.training.checkpoint import load_checkpoint
    from chatft.training.encoders import keep_layers, load_encoder, load_tokenizer
    from chatft.training.model import JointModel

    ckpt = load_checkpoint(path, mmap=True)
    hp = dict(ckpt["hyper_parameters"])
    assets = ckpt.get(ASSETS_KEY)
    if assets and assets.get("version") == ASSETS_VERSION:
        encoder = _encoder_from_config(assets["encoder_config"])
        tokenizer = _tokenizer_from_assets(assets)
    else:
        log.info("%s has no embedded tokenizer/config: loading them from encoder %r", path, hp["encoder"])
        encoder = load_encoder(hp["encoder"], pretrained=False)
        if hp.get("encoder_layers") is not None:  # a shallower student (the embedded config says so itself)
            keep_layers(encoder, hp["encoder_layers"])
        tokenizer = load_tokenizer(hp["encoder"])
    intent_labels = tuple(hp["intent_labels"])
    slot_labels = tuple(hp.get("slot_labels") or ())
    model = JointModel(
        encoder,
        num_intents=len(intent_labels),
        slot_tags=list(slot_labels),
        use_crf=bool(hp.get("use_crf", False)),
        bio_constrained=bool(hp.get("bio_constrained", True)),
        # The pooling it was trained with: a mean-pooling model read with CLS would be silently wrong.
        intent_pooling=hp.get("intent_pooling", "cls"),
    )
    prefix = "model."
    state = {k[len(prefix) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ConfigError(
            f"{path}: weights do not match the model described by its hyper_parameters ({err})"
        ) from None
    model.eval().to(torch.device(device))
    trained_max = (assets or {}).get("max_length") or _run_config_max_length(path)
    return InferenceModel(
        model=model,
        tokenizer=tokenizer,
        intent_labels=intent_labels,
        slot_labels=slot_labels,
        max_length=_within_positions(
            int(max_length or trained_max or DEFAULT_MAX_LENGTH), encoder, tokenizer
        ),
        hparams=hp,
        source=str(path),
        oos=_oos_state(ckpt),
        entities=_entity_resources(ckpt, path),
    )


def _entity_resources(ckpt: dict, path):
    from chatft.core.entity_resources import ENTITIES_KEY, EntityResources

    return EntityResources.from_dict(ckpt.get(ENTITIES_KEY), f"{path}: {ENTITIES_KEY}")


def _oos_state(ckpt: dict):
    from chatft.core.oos import OOSState
    from chatft.training.calibration import OOS_KEY

    return OOSState.from_dict(ckpt.get(OOS_KEY))


def slot_decoder_of(model):
    """The numpy :class:`~chatft.core.decoding.SlotDecoder` equivalent to ``model.decode`` (None without slots)."""
    from chatft.core.decoding import SlotDecoder

    if not model.num_slot_tags:
        return None
    if model.crf is not None:
        crf = model.crf
        return SlotDecoder.from_constraints(
            True,
            True,
            crf.allowed_start.cpu().numpy(),
            crf.allowed_trans.cpu().numpy(),
            crf.start_transitions.detach().double().cpu().numpy(),
            crf.transitions.detach().double().cpu().numpy(),
            crf.end_transitions.detach().double().cpu().numpy(),
        )
    return SlotDecoder.from_constraints(
        False,
        model.bio_constrained,
        model.allowed_start.cpu().numpy(),
        model.allowed_trans.cpu().numpy(),
    )
