"""Reading a dialogue folder (:mod:`chatft.dialogue.dialogues`) for ``data stats`` and ``data check``.

Like :mod:`chatft.data_tools.dataset` for NLU folders: every split and the schema, validated by the format's
own readers (one-line errors with file:line), plus the line each dialogue sits on, so that a problem found
later can name ``file:line`` too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from chatft.core.errors import DataFormatError
from chatft.core.formats import SPLITS
from chatft.data_tools.dataset import missing_split_warning
from chatft.dialogue.dialogues import SCHEMA_FILE, SPLIT_FILES, Dialogue, Schema, read_dialogues, read_schema

__all__ = ["DialogueFolder", "read_dialogue_folder"]


@dataclass
class DialogueFolder:
    """The splits of a dialogue folder (train always), its schema, and each dialogue's line in its file."""

    data_dir: Path
    schema: Schema
    splits: dict[str, list[Dialogue]]
    lines: dict[str, list[int]]
    warnings: list[str] = field(default_factory=list)

    def line(self, split: str, index: int) -> str:
        """``file:line`` of the ``index``-th dialogue of ``split``."""
        return f"{self.data_dir / SPLIT_FILES[split]}:{self.lines[split][index]}"

    def where(self, split: str, index: int, turn: int | None = None) -> str:
        """``file:line: dialogue 'id'`` (and `` turn N``) of the ``index``-th dialogue of ``split``."""
        place = f"{self.line(split, index)}: dialogue {self.splits[split][index].id!r}"
        return place if turn is None else f"{place} turn {turn}"


def _lines(path: Path) -> list[int]:
    """The numbers of the non-blank lines: the lines :func:`read_dialogues` reads a dialogue from."""
    with path.open(encoding="utf-8") as f:
        return [n for n, line in enumerate(f, 1) if line.strip()]


def read_dialogue_folder(data_dir: str | Path) -> DialogueFolder:
    """Every split of a dialogue folder and its schema; a missing train split or schema is a one-line error."""
    root = Path(data_dir).expanduser()
    if not (root / SCHEMA_FILE).is_file():
        raise DataFormatError(
            f"{root}: no {SCHEMA_FILE} (a dialogue folder has one: data convert --from woz)"
        )
    if not (root / SPLIT_FILES["train"]).is_file():
        raise DataFormatError(f"{root}: no {SPLIT_FILES['train']} (a dialogue folder needs a train split)")
    schema = read_schema(root / SCHEMA_FILE)
    splits, lines, warnings = {}, {}, []
    for split in SPLITS:
        path = root / SPLIT_FILES[split]
        if path.is_file():
            splits[split] = read_dialogues(path)
            lines[split] = _lines(path)
        elif split != "train":
            warnings.append(missing_split_warning(split))
    if not splits["train"]:
        raise DataFormatError(f"{root / SPLIT_FILES['train']}: no dialogues")
    return DialogueFolder(root, schema, splits, lines, warnings)
