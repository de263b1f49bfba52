"""A checkpoint rebuilt for inference: the model in eval mode, its tokenizer, labels, max_length, OOS decision.

:func:`load_for_inference` needs only the checkpoint file: the model is built by
:meth:`chatft.model.spec.ModelSpec.build` from the checkpoint's ``hyper_parameters`` (the constructor
training uses), the encoder's architecture and the tokenizer come from the embedded assets
(:mod:`chatft.model.assets`). Checkpoints without the assets (older ones) fall back to loading the tokenizer
and config from ``hyper_parameters["encoder"]``, which must then be resolvable.

Checkpoint files are opened only through :func:`chatft.model.checkpoint.load_checkpoint` (``weights_only=True``,
chatft-checked), memory-mapped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from chatft.core.entity_resources import ENTITIES_KEY, EntityResources
from chatft.core.errors import ConfigError
from chatft.core.oos import OOSState
from chatft.model.spec import ModelSpec

log = logging.getLogger(__name__)

#: ``max_length`` used when neither the caller nor the checkpoint gives one (the datamodule default).
DEFAULT_MAX_LENGTH = 128


@dataclass
class InferenceModel:
    """A :class:`~chatft.model.joint.JointModel` in eval mode, its tokenizer, labels and ``max_length``."""

    model: Any
    tokenizer: Any
    intent_labels: tuple[str, ...]
    slot_labels: tuple[str, ...]
    max_length: int
    hparams: dict
    source: str
    #: The temperature and out-of-scope decision to decode with: the one fitted at the end of ``fit``, or
    #: :meth:`ModelSpec.uncalibrated_oos` when the checkpoint has none (``calibrated`` False).
    oos: OOSState | None = None
    calibrated: bool = False
    #: Synonyms, regexes and lookup tables fit embedded (:class:`~chatft.core.entity_resources.EntityResources`;
    #: None: none, or a checkpoint from before they were kept).
    entities: EntityResources | None = None

    @property
    def spec(self) -> ModelSpec:
        return ModelSpec.from_hparams(self.hparams)

    def logits(
        self, arrays: dict[str, np.ndarray], device: Any = None
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """Intent logits ``[B, I]``, word slot logits ``[B, W, T]`` (None without slots) and pooled features
        ``[B, H]`` of a padded batch of numpy arrays (``input_ids``, ``attention_mask``, ``word_index``), run on
        ``device`` (default: where the model is)."""
        import torch

        if device is None:
            device = next(self.model.parameters()).device
        with torch.inference_mode():
            tensors = {k: torch.from_numpy(v).to(device) for k, v in arrays.items()}
            intent_logits, slot_logits, features = self.model(**tensors, return_features=True)
            return (
                intent_logits.float().cpu().numpy(),
                None if slot_logits is None else slot_logits.float().cpu().numpy(),
                features.float().cpu().numpy(),
            )


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

    from chatft.model.assets import ASSETS_KEY, encoder_from_config, tokenizer_from_assets, usable
    from chatft.model.checkpoint import load_checkpoint, model_state_dict, oos_state_of
    from chatft.model.encoders import load_tokenizer

    ckpt = load_checkpoint(path, mmap=True)
    hp = dict(ckpt["hyper_parameters"])
    spec = ModelSpec.from_hparams(hp)
    assets = ckpt.get(ASSETS_KEY)
    if usable(assets):
        encoder = encoder_from_config(assets["encoder_config"])  # already the trained depth
        tokenizer = tokenizer_from_assets(assets)
    else:
        log.info("%s has no embedded tokenizer/config: loading them from encoder %r", path, spec.encoder)
        encoder = spec.backbone(pretrained=False)
        tokenizer = load_tokenizer(spec.encoder)
    model = spec.build(encoder)
    try:
        model.load_state_dict(model_state_dict(ckpt), strict=True)
    except RuntimeError as err:
        raise ConfigError(
            f"{path}: weights do not match the model described by its hyper_parameters ({err})"
        ) from None
    model.eval().to(torch.device(device))
    trained_max = (assets or {}).get("max_length") or _run_config_max_length(path)
    fitted = oos_state_of(ckpt)
    return InferenceModel(
        model=model,
        tokenizer=tokenizer,
        intent_labels=spec.intent_labels,
        slot_labels=spec.slot_labels,
        max_length=_within_positions(
            int(max_length or trained_max or DEFAULT_MAX_LENGTH), encoder, tokenizer
        ),
        hparams=hp,
        source=str(path),
        oos=fitted if fitted is not None else spec.uncalibrated_oos(),
        calibrated=fitted is not None,
        entities=EntityResources.from_dict(ckpt.get(ENTITIES_KEY), f"{path}: {ENTITIES_KEY}"),
    )
