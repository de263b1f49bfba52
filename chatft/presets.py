"""The config presets shipped with chatft, so ``--config demo.yaml`` works from any directory.

The repository keeps its presets in the top-level ``configs/`` folder (``configs/demo.yaml`` in the README
and the SLURM scripts); ``chatft/resources/configs`` is a symlink to it, so a wheel or a non-editable
install carries the same files as package data. A ``--config`` value that is not an existing file but names
a shipped preset (``demo``, ``demo.yaml`` or ``configs/demo.yaml``) is read from the package instead::

    cd /anywhere && python -m chatft fit --config demo.yaml --config debug.yaml

An existing file always wins, so a checkout's own ``configs/`` (or a user's file of the same name) is used
as it is. Torch-free: the CLI calls this before it knows whether the command needs torch.
"""

from __future__ import annotations

import sys
from pathlib import Path

#: The shipped presets: ``chatft/resources/configs`` (a symlink to ``configs/`` in a checkout).
PRESETS_DIR = Path(__file__).resolve().parent / "resources" / "configs"
_SUFFIXES = (".yaml", ".yml")


def shipped_presets() -> list[str]:
    """File names of the shipped presets, sorted (``["atis.yaml", "ddp-cpu.yaml", ...]``)."""
    return sorted(p.name for p in PRESETS_DIR.glob("*.yaml"))


def shipped_preset(value: str) -> Path | None:
    """The shipped preset that ``value`` names (``demo``, ``demo.yaml``, ``configs/demo.yaml``), or None.

    Only bare names and ``configs/NAME`` are presets: ``other/demo.yaml`` names a file the user meant.
    """
    path = Path(value)
    if "\n" in value or path.is_absolute() or path.parent not in (Path("."), Path("configs")):
        return None
    name = path.name if path.suffix in _SUFFIXES else path.name + ".yaml"
    return PRESETS_DIR / name if name in shipped_presets() else None


def _exists(value: str) -> bool:
    """``Path(value).exists()``, False for a value no file can have (inline YAML longer than a file name)."""
    try:
        return Path(value).exists()
    except (OSError, ValueError):
        return False


def _looks_like_path(value: str) -> bool:
    """A ``--config`` value meant as a file (jsonargparse also takes inline YAML: ``--config 'port: 80'``)."""
    return value.endswith(_SUFFIXES) and "\n" not in value and ": " not in value and "{" not in value


def resolve_config(value: str) -> str:
    """``value`` itself when it is a file (or inline YAML); else the path of the shipped preset it names.

    A file name that is neither raises :class:`~chatft.core.errors.ConfigError` listing the presets.
    """
    if _exists(value):
        return value
    preset = shipped_preset(value)
    if preset is not None:
        print(f"chatft: --config {value}: using the shipped preset {preset}", file=sys.stderr, flush=True)
        return str(preset)
    if _looks_like_path(value):
        from chatft.core.errors import ConfigError

        raise ConfigError(
            f"--config {value}: no such file (shipped presets, usable from any directory: "
            f"{', '.join(shipped_presets())})"
        )
    return value


def resolve_config_args(argv: list[str]) -> list[str]:
    """``argv`` with each ``--config X`` / ``--config=X`` passed through :func:`resolve_config`."""
    out: list[str] = []
    take_next = False
    for arg in argv:
        if take_next:
            out.append(resolve_config(arg))
            take_next = False
        elif arg == "--config":
            out.append(arg)
            take_next = True
        elif arg.startswith("--config="):
            out.append("--config=" + resolve_config(arg[len("--config=") :]))
        else:
            out.append(arg)
    return out
