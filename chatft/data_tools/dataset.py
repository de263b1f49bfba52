"""Reading a chatft data folder the way ``fit`` does, for ``check`` and ``stats`` (no torch)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from chatft.core.formats import (
    SPLITS,
    Example,
    check_same_kind,
    detect_format,
    example_location,
    has_split,
    missing_split_error,
    orphan_warning,
    read_split,
)
from chatft.data_tools.ingest import not_a_folder_error


@dataclass
class Dataset:
    """The splits found in ``data_dir`` (train always), its format, and the warnings reading gave."""

    data_dir: Path
    format: str
    splits: dict[str, list[Example]]
    warnings: list[str] = field(default_factory=list)

    @property
    def has_slots(self) -> bool:
        return self.splits["train"][0].tags is not None

    def where(self, split: str, index: int) -> str:
        """``file:line`` of the ``index``-th example of ``split``."""
        return example_location(self.data_dir, split, self.format, index)


def missing_split_warning(split: str) -> str:
    """The warning ``data check``/``data stats`` give for a missing dev or test split (NLU and dialogue
    folders alike): dev is what fit validates on; test is optional, only ``test`` reads it."""
    if split == "dev":
        return "dev: not found (fit validates on it)"
    return "test: no test split (it is optional: only `test` reads it)"


#: How ``data stats`` and ``data check`` name their folder in errors: a positional argument, ``data_dir`` in
#: their usage line.
FOLDER_ARGUMENT = "the data_dir argument"


def read_dataset(data_dir: str | Path, option: str = "--data.data_dir") -> Dataset:
    """Every split of ``data_dir``, validated as ``fit`` validates it (one-line errors with file:line).

    ``option``: how the command's user named the folder, for the errors (see :func:`detect_format`); a file
    instead of a folder gets the ``data convert`` command that makes a folder of it.
    """
    root = Path(data_dir).expanduser()
    if root.is_file():
        raise not_a_folder_error(root)
    fmt = detect_format(root, option)
    if not has_split(root, "train", fmt):
        raise missing_split_error(root, "train", fmt)
    splits = {"train": read_split(root, "train", fmt)}
    has_slots = splits["train"][0].tags is not None
    warnings = []
    for split in SPLITS[1:]:
        if has_split(root, split, fmt):
            splits[split] = read_split(root, split, fmt)
            check_same_kind(root, split, fmt, splits[split], has_slots)
        else:
            warnings.append(missing_split_warning(split))
    for split, examples in splits.items():
        warning = orphan_warning(root, split, fmt, examples)
        if warning:
            warnings.append(warning)
    return Dataset(root, fmt, splits, warnings)
