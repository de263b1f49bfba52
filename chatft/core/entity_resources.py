"""What a project knows about its entity values besides the model: synonyms, regexes, lookup tables (no torch).

Rasa projects carry these next to their training examples (``synonym:``, ``regex:`` and ``lookup:`` sections,
inline values such as ``[current account]{"entity": "account", "value": "checking"}``); ``data convert``
keeps them in :data:`ENTITIES_FILE` next to ``train.jsonl``, ``fit`` embeds them in the checkpoint under
:data:`ENTITIES_KEY`, and ``export`` writes the file into the ONNX folder, so every predictor applies them
with no data folder (:mod:`chatft.core.entities` does the applying). The file, all keys optional::

    {"format": "chatft-entities", "version": 1,
     "synonyms": {"current account": "checking"},        # lower-cased text -> value (Rasa's rule)
     "regexes": [{"name": "account_number", "pattern": "\\\\d{10,12}"}],
     "lookups": [{"name": "city", "elements": ["boston", "new york"]}],
     "value_types": {"balance": "amount-of-money", "flight_number": null},   # overrides of the name rule
     "currencies": {"$": "CAD"},                          # extra or changed currency words/symbols
     "language": "en"}                                   # for number words and dates

``value_types`` decides which slot types get a typed value (see :func:`chatft.core.values.dimension_of`);
the file may be edited by hand before ``fit``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from chatft.core.errors import DataFormatError

__all__ = ["ENTITIES_FILE", "ENTITIES_KEY", "EntityResources"]

#: The file ``data convert`` writes next to ``train.jsonl`` and ``export`` into the ONNX folder.
ENTITIES_FILE = "entities.json"
#: The checkpoint key ``fit`` stores the resources under (absent in older checkpoints: no resources).
ENTITIES_KEY = "chatft_entities"
FORMAT = "chatft-entities"
VERSION = 1
_KEYS = ("format", "version", "synonyms", "regexes", "lookups", "value_types", "currencies", "language")


@dataclass
class EntityResources:
    """Synonyms, regexes and lookup tables of a project, and how its slot values are typed.

    Built by the Rasa readers (:meth:`add_synonym`, :meth:`add_regex`, :meth:`add_lookup`), saved as JSON,
    read back by predictors. ``synonyms`` keys are lower-cased, as Rasa's ``EntitySynonymMapper`` stores them.
    """

    synonyms: dict[str, str] = field(default_factory=dict)
    regexes: list[tuple[str, str]] = field(default_factory=list)
    lookups: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    value_types: dict[str, str | None] = field(default_factory=dict)
    currencies: dict[str, str] = field(default_factory=dict)
    language: str = "en"

    def __bool__(self) -> bool:
        """False only when there is nothing to keep: a file that only sets ``language`` counts."""
        return bool(
            self.synonyms
            or self.regexes
            or self.lookups
            or self.value_types
            or self.currencies
            or self.language != "en"
        )

    # ---- building ------------------------------------------------------------------------------------
    def add_synonym(self, text: str, value: str) -> bool:
        """Map ``text`` (any case) to ``value``, as Rasa does: also ``value`` itself in any case to ``value``.
        Returns False when ``text`` already mapped to another value (the new one wins, as in Rasa)."""
        text, value = str(text).strip(), str(value).strip()
        if not text or not value:
            return True
        clash = False
        if text != value:
            old = self.synonyms.get(text.lower())
            clash = old is not None and old != value
            self.synonyms[text.lower()] = value
        self.synonyms.setdefault(value.lower(), value)
        return not clash

    def add_regex(self, name: str, pattern: str, where: str) -> None:
        """A regex entity pattern; one that does not compile is an error naming ``where``."""
        try:
            re.compile(pattern)
        except re.error as err:
            raise DataFormatError(
                f"{where}: regex {name!r}: {pattern!r} is not a valid pattern ({err})"
            ) from None
        if (name, pattern) not in self.regexes:  # the same file read for several splits adds it once
            self.regexes.append((name, pattern))

    def add_lookup(self, name: str, elements: list[str]) -> None:
        """A lookup table: its elements are matched as whole words, case-insensitively; tables of the same name
        are merged (Rasa projects may split one over files)."""
        old = next((i for i, (n, _) in enumerate(self.lookups) if n == name), None)
        before = self.lookups[old][1] if old is not None else ()
        kept = tuple(dict.fromkeys([*before, *(e.strip() for e in elements if e.strip())]))
        if old is not None:
            self.lookups[old] = (name, kept)
        elif kept:
            self.lookups.append((name, kept))

    # ---- JSON ----------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Plain types only (it is embedded in checkpoints, which load with ``weights_only``)."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "synonyms": dict(self.synonyms),
            "regexes": [{"name": n, "pattern": p} for n, p in self.regexes],
            "lookups": [{"name": n, "elements": list(e)} for n, e in self.lookups],
            "value_types": dict(self.value_types),
            "currencies": dict(self.currencies),
            "language": self.language,
        }

    @classmethod
    def from_dict(cls, d: dict | None, where: str = "entity resources") -> EntityResources | None:
        """The resources of :meth:`to_dict`'s dict; None for None (a checkpoint or export without them)."""
        from chatft.core.values import DIMENSIONS, known_language

        if d is None:
            return None
        if not isinstance(d, dict) or d.get("format", FORMAT) != FORMAT:
            raise DataFormatError(f'{where}: expected a JSON object with "format": "{FORMAT}"')
        unknown = sorted(set(d) - set(_KEYS))
        if unknown:
            raise DataFormatError(f"{where}: unknown keys {unknown} (known: {', '.join(_KEYS)})")
        # The file may be edited by hand: every shape is checked, each mistake one line naming the entry.
        for key, kind in (("synonyms", dict), ("value_types", dict), ("currencies", dict)):
            if not isinstance(d.get(key) or {}, kind):
                raise DataFormatError(f"{where}: {key} must be a JSON object, got {type(d[key]).__name__}")
        for key, fields in (("regexes", ("name", "pattern")), ("lookups", ("name", "elements"))):
            entries = d.get(key) or []
            if not isinstance(entries, list):
                raise DataFormatError(f"{where}: {key} must be a list, got {type(entries).__name__}")
            for i, entry in enumerate(entries):
                if not isinstance(entry, dict) or not set(fields) <= entry.keys():
                    raise DataFormatError(
                        f'{where}: {key}[{i}]: expected {{"{fields[0]}": ..., "{fields[1]}": ...}}'
                    )
                if key == "lookups" and not isinstance(entry["elements"], list):
                    raise DataFormatError(f"{where}: lookups[{i}]: elements must be a list of strings")
        language = d.get("language") or "en"
        if not isinstance(language, str) or not known_language(language):
            raise DataFormatError(
                f"{where}: language {language!r} is not a language code dateparser knows "
                '(e.g. "en", "fr", "de", "zh")'
            )
        out = cls(language=language)
        out.synonyms = {str(k).lower(): str(v) for k, v in (d.get("synonyms") or {}).items()}
        for i, r in enumerate(d.get("regexes") or []):
            out.add_regex(str(r["name"]), str(r["pattern"]), f"{where}: regexes[{i}]")
        for lookup in d.get("lookups") or []:
            out.add_lookup(str(lookup["name"]), [str(e) for e in lookup["elements"]])
        for label, dim in (d.get("value_types") or {}).items():
            if dim is not None and dim not in DIMENSIONS:
                raise DataFormatError(
                    f"{where}: value_types[{label!r}] is {dim!r}; expected one of {', '.join(DIMENSIONS)} or null"
                )
            out.value_types[str(label)] = dim
        out.currencies = {str(k): str(v).upper() for k, v in (d.get("currencies") or {}).items()}
        return out

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / ENTITIES_FILE
        path.write_text(json.dumps(self.to_dict(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, folder: str | Path | None) -> EntityResources | None:
        """``folder/entities.json``, or None when there is no such file (data converted without resources)."""
        if folder is None:
            return None
        path = Path(folder).expanduser() / ENTITIES_FILE
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise DataFormatError(f"{path}:{err.lineno}: malformed JSON ({err.msg})") from None
        return cls.from_dict(data, str(path))
