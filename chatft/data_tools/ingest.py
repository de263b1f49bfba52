"""Rasa data where a chatft data folder is expected: ``fit --data.data_dir data/nlu.yml`` trains from it.

``fit``, ``validate``, ``test``, ``predict`` and ``data check`` accept, as their data folder, a Rasa NLU
YAML file (``data/nlu.yml``), a Rasa NLU JSON file, a folder of Rasa YAML files (``data/``) or a Rasa
project folder (``domain.yml`` or ``config.yml`` beside ``data/``). The data is converted exactly as

    python -m chatft data convert --from rasa-yaml --input data/nlu.yml --output DIR

would (dev and test carved with seed 0, so every command given the same file gets the same splits) into
``RUN_ROOT/converted/<hash>``: a folder named by a hash of the converted files, reused while the data is
unchanged and a new one when it changes (a run's ``config.yaml`` names the folder it trained on). Each
conversion is written to a temporary folder and renamed, so the processes of a DDP run never read half a
folder. Any other file (a CSV...) is a one-line error naming the ``data convert`` command for it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from chatft.core.errors import ConfigError
from chatft.core.formats import SPLITS, not_a_folder_message

#: Files that make a folder a chatft data folder (then read as it is, never converted).
_CHATFT_LAYOUT = ("train.jsonl", "train.tsv", "train/seq.in")
_NLU_KEY = re.compile(r"^nlu\s*:", re.MULTILINE)
#: Set (non-zero) in every process but the first: Lightning's launcher, torchrun (RANK, GROUP_RANK), SLURM.
_RANK_VARIABLES = ("LOCAL_RANK", "NODE_RANK", "RANK", "GROUP_RANK", "SLURM_PROCID")


def _has_nlu(path: Path) -> bool:
    try:
        return bool(_NLU_KEY.search(path.read_text(encoding="utf-8", errors="replace")))
    except OSError:
        return False


def rasa_input(path: Path) -> tuple[str, Path] | None:
    """``(format, input)`` when ``path`` is Rasa data (see the module docstring), else None."""
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in (".yml", ".yaml"):
            return "rasa-yaml", path
        if suffix == ".json" and '"rasa_nlu_data"' in path.read_text(encoding="utf-8", errors="replace"):
            return "rasa-json", path
        return None
    if not path.is_dir() or any((path / name).exists() for name in _CHATFT_LAYOUT):
        return None
    project = any((path / name).is_file() for name in ("domain.yml", "domain.yaml", "config.yml"))
    if project and (path / "data").is_dir():
        return "rasa-yaml", path / "data"
    # two levels (data/nlu.yml, data/nlu/*.yml), so a wrong folder such as $HOME is not walked entirely
    near = [*path.glob("*"), *path.glob("*/*")]
    if any(p.suffix.lower() in (".yml", ".yaml") and p.is_file() and _has_nlu(p) for p in sorted(near)):
        return "rasa-yaml", path
    return None


def not_a_folder_error(path: Path) -> ConfigError:
    """:func:`chatft.core.formats.not_a_folder_message` as the error of an option's value (``fit``'s
    ``--data.data_dir``, ``data check``'s argument): the command that converts the file."""
    return ConfigError(not_a_folder_message(path))


def _first_process() -> bool:
    """False in the other processes of a DDP or SLURM run (they convert too, but say nothing)."""
    return all(os.environ.get(name, "0") in ("", "0") for name in _RANK_VARIABLES)


def convert_into(fmt: str, source: Path, cache_root: str | Path):
    """Convert ``source`` into ``cache_root/<hash>``; the folder and the :class:`ConvertResult` (files there)."""
    from chatft.data_tools.convert import convert

    root = Path(cache_root).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".converting-", dir=root))
    try:
        result = convert(fmt, str(tmp), input=[str(source)], quiet=True)
        digest = hashlib.sha256()
        # Every file the folder holds names it: the splits and entities.json (synonyms, regexes, lookups),
        # so a changed synonym alone is a new folder, never a stale entities.json reused.
        for name in (*SPLITS, "entities"):
            if name in result.files:
                digest.update(name.encode() + b"\0" + result.files[name].read_bytes())
        final = root / digest.hexdigest()[:12]
        if not final.exists():
            try:
                tmp.rename(final)
            except OSError:
                if not final.exists():  # not another process's identical copy: a real failure
                    raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result.files = {split: final / file.name for split, file in result.files.items()}
    return final, result


def prepare(data_dir: str, cache_root: str | Path, announce: bool = True) -> str:
    """``data_dir`` itself, or, for Rasa data, the folder it was converted into under ``cache_root``.

    ``announce`` prints the conversion summary (splits, notes, warnings) in the first process.
    """
    from chatft.data_tools.convert import print_summary

    path = Path(data_dir).expanduser()
    found = rasa_input(path)
    if found is None:
        if path.is_file():
            raise not_a_folder_error(path)
        return data_dir
    fmt, source = found
    final, result = convert_into(fmt, source, cache_root)
    if announce and _first_process():
        print(
            f"data: {data_dir} is Rasa data ({fmt}), converted into {final} (seed 0: same data, same splits)"
        )
        print_summary(result, sys.stdout)
    return str(final)
