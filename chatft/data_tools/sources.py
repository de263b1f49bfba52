"""Reading input files: UTF-8 text with one-line errors, and the files of a folder input."""

from __future__ import annotations

from pathlib import Path

from chatft.core.errors import DataFormatError
from chatft.core.formats import decode_utf8


def read_text(path: Path) -> str:
    """The file's text (UTF-8, BOM dropped, CRLF/CR turned into LF); a missing file is a one-line error."""
    if not path.is_file():
        what = "is a folder, expected a file" if path.is_dir() else "file not found"
        raise DataFormatError(f"{path}: {what}")
    return decode_utf8(path.read_bytes(), path).replace("\r\n", "\n").replace("\r", "\n")


def files_in(path: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """``path`` itself, or the files under the folder ``path`` with one of ``suffixes``, sorted by name."""
    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
        if not found:
            raise DataFormatError(f"{path}: folder has no {'/'.join(suffixes)} files")
        return found
    if not path.exists():
        raise DataFormatError(f"{path}: file not found")
    return [path]
