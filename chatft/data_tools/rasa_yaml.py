"""Rasa 3 NLU YAML: ``nlu:`` -> ``- intent: name`` -> ``examples: |`` lines with inline entity annotations.

Annotations, as Rasa writes them: ``[text](entity)``, ``[text](entity:value)`` (synonym, old syntax),
``[text]{"entity": "e", "value": "v", "role": "r", "group": "g"}`` and ``[text][{...}, {...}]`` (several
entities on one text; chatft tags one slot per word, so the first is kept and the others counted).
``synonym``, ``regex`` and ``lookup`` sections are not training examples: with the synonym values of annotations
they go into ``resources`` (:class:`chatft.core.entity_resources.EntityResources`), which ``data convert`` writes
to ``entities.json`` for the predictors to apply. Roles and groups are dropped with a note, or folded into the slot type as
``entity.role`` with ``roles="keep"``. A folder input reads every ``.yml``/``.yaml`` file in it that has an
``nlu:`` key (Rasa projects split data over files; ``domain.yml``, stories and rules are skipped).

The YAML is parsed with PyYAML's composer, not loaded, so every example keeps its line in the file: a
literal block (``examples: |``) keeps its lines exactly, so errors name ``file:line``.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import yaml

from chatft.core.entity_resources import EntityResources
from chatft.core.errors import DataFormatError
from chatft.data_tools import rasa_annotations
from chatft.data_tools.records import Record, Span
from chatft.data_tools.sources import files_in, read_text

_ANNOTATION = re.compile(
    r"\[(?P<text>[^\[\]]+)\]"
    r"(?:\((?P<entity>[^:()]+)(?::(?P<value>[^()]+))?\)|(?P<dict>\{[^{}]*\})|(?P<list>\[\s*\{.*?\}\s*\]))"
)
_RESOURCE_SECTIONS = ("synonym", "regex", "lookup")


def _loader():
    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _mapping(node: yaml.Node) -> dict[str, yaml.Node]:
    return {k.value: v for k, v in node.value if isinstance(k, yaml.ScalarNode)}


def parse_example(line: str, where: str, notes: Counter, roles: str = "drop") -> tuple[str, tuple[Span, ...]]:
    """Plain text and spans of one annotated example line."""
    parts, spans, pos, out_len = [], [], 0, 0
    for m in _ANNOTATION.finditer(line):
        parts.append(line[pos : m.start()])
        out_len += m.start() - pos
        value = m.group("text")
        if m.group("entity"):
            entities = [{"entity": m.group("entity").strip()}]
            if m.group("value"):
                entities[0]["value"] = m.group("value").strip()
        else:
            raw = m.group("dict") or m.group("list")
            try:
                parsed = json.loads(raw)
            except json.JSONDecodeError as err:
                raise DataFormatError(
                    f"{where}: entity annotation {raw!r} is not valid JSON ({err.msg}); write it as "
                    '[text]{"entity": "type"}'
                ) from None
            entities = parsed if isinstance(parsed, list) else [parsed]
            if not entities or not all(
                isinstance(e, dict) and isinstance(e.get("entity"), str) for e in entities
            ):
                raise DataFormatError(f'{where}: entity annotation {raw!r} needs an "entity" name')
            if len(entities) > 1:
                notes["extra entities on an already annotated text (skipped: one slot per word)"] += (
                    len(entities) - 1
                )
        entity = entities[0]
        typ = entity["entity"].strip()
        if entity.get("role") or entity.get("group"):
            if roles == "keep" and entity.get("role"):
                typ = f"{typ}.{entity['role']}"
                notes["entities with a role (kept as entity.role)"] += 1
            else:
                notes["entities with a role or group (dropped; roles='keep' types them entity.role)"] += 1
        synonym = str(entity["value"]) if entity.get("value") is not None else None
        spans.append(Span(out_len, out_len + len(value), typ, synonym))
        parts.append(value)
        out_len += len(value)
        pos = m.end()
    parts.append(line[pos:])
    return "".join(parts), tuple(spans)


def _examples(node: yaml.Node, path: Path) -> list[tuple[str, int]]:
    """``(example, line)`` pairs of an ``examples`` value: a block of ``- text`` lines or a list of ``text:``."""
    if isinstance(node, yaml.ScalarNode):
        first = node.start_mark.line + (2 if node.style in ("|", ">") else 1)
        out = []
        for k, line in enumerate(node.value.split("\n")):
            stripped = line.strip()
            if not stripped:
                continue
            if not stripped.startswith("-"):
                raise DataFormatError(
                    f"{path}:{first + k}: example {stripped!r} does not start with '- ' (Rasa skips such "
                    "lines; write one '- example' per line)"
                )
            out.append((stripped[1:].strip(), first + k))
        return out
    if isinstance(node, yaml.SequenceNode):
        out = []
        for item in node.value:
            text = _mapping(item).get("text") if isinstance(item, yaml.MappingNode) else None
            if not isinstance(text, yaml.ScalarNode):
                raise DataFormatError(
                    f"{path}:{item.start_mark.line + 1}: expected '- text: example' in a list of examples"
                )
            out.append((text.value.strip(), text.start_mark.line + 1))
        return out
    raise DataFormatError(
        f"{path}:{node.start_mark.line + 1}: 'examples' must be a block of '- example' lines"
    )


def _resource_section(
    section: str, fields: dict, path: Path, item: yaml.Node, resources: EntityResources, notes: Counter
) -> None:
    """A ``- synonym: value`` / ``- regex: name`` / ``- lookup: name`` item's examples into ``resources``."""
    name = fields[section]
    if not isinstance(name, yaml.ScalarNode) or not name.value.strip():
        raise DataFormatError(f"{path}:{item.start_mark.line + 1}: '{section}:' needs a name")
    if "examples" not in fields:
        raise DataFormatError(f"{path}:{item.start_mark.line + 1}: {section} {name.value!r} has no examples")
    examples = _examples(fields["examples"], path)
    name = name.value.strip()
    if section == "synonym":
        for example, _ in examples:
            if not resources.add_synonym(example, name):
                notes["conflicting synonyms (the later value wins, as in Rasa)"] += 1
    elif section == "regex":
        for example, line in examples:
            resources.add_regex(name, example, f"{path}:{line}")
    else:
        resources.add_lookup(name, [example for example, _ in examples])
    notes[f"{section} sections (kept in entities.json)"] += 1


def read_file(
    path: Path,
    notes: Counter,
    roles: str = "drop",
    required: bool = True,
    resources: EntityResources | None = None,
    lenient: bool = False,
) -> list[Record]:
    """Records of one Rasa YAML file (none, without error, for a file with no ``nlu:`` when not required);
    its synonyms, regexes and lookup tables go into ``resources`` (dropped when None). A broken annotation
    is an error unless ``lenient`` (see :mod:`chatft.data_tools.rasa_annotations`)."""
    resources = resources if resources is not None else EntityResources()
    try:
        root = yaml.compose(read_text(path), Loader=_loader())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise DataFormatError(f"{path}{line}: malformed YAML ({problem})") from None
    nlu = _mapping(root).get("nlu") if isinstance(root, yaml.MappingNode) else None
    if nlu is None:
        if required:
            raise DataFormatError(f"{path}: no 'nlu:' key (expected Rasa 3 NLU training data)")
        notes["files without an nlu: key (skipped)"] += 1
        return []
    if not isinstance(nlu, yaml.SequenceNode):
        raise DataFormatError(f"{path}:{nlu.start_mark.line + 1}: 'nlu:' must be a list of '- intent:' items")
    records = []
    for item in nlu.value:
        fields = _mapping(item) if isinstance(item, yaml.MappingNode) else {}
        section = next((key for key in _RESOURCE_SECTIONS if key in fields), None)
        if section is not None:
            _resource_section(section, fields, path, item, resources, notes)
            continue
        intent = fields.get("intent")
        if not isinstance(intent, yaml.ScalarNode) or not intent.value.strip():
            raise DataFormatError(
                f"{path}:{item.start_mark.line + 1}: expected '- intent: name' (or synonym/regex/lookup)"
            )
        if "examples" not in fields:
            raise DataFormatError(
                f"{path}:{item.start_mark.line + 1}: intent {intent.value!r} has no examples"
            )
        for example, line in _examples(fields["examples"], path):
            where = f"{path}:{line}"
            rasa_annotations.check(example, _ANNOTATION, where, notes, lenient)
            text, spans = parse_example(example, where, notes, roles)
            records.append(Record(text, intent.value.strip(), spans, where))
            add_span_synonyms(text, spans, resources, notes)
    return records


def add_span_synonyms(text: str, spans, resources: EntityResources, notes: Counter) -> None:
    """Annotated synonym values (``[current account](account:checking)``) into ``resources``, as Rasa learns them."""
    for span in spans:
        if span.value is not None:
            notes["entities with a synonym value (kept in entities.json)"] += 1
            if not resources.add_synonym(text[span.start : span.end], span.value):
                notes["conflicting synonyms (the later value wins, as in Rasa)"] += 1


def read(
    path: Path,
    notes: Counter,
    roles: str = "drop",
    resources: EntityResources | None = None,
    lenient: bool = False,
) -> list[Record]:
    """Records of a Rasa YAML file, or of every NLU file under a folder (resources: see :func:`read_file`)."""
    if roles not in ("drop", "keep"):
        raise DataFormatError(f"roles must be 'drop' or 'keep', got {roles!r}")
    files = files_in(path, (".yml", ".yaml"))
    records = []
    for f in files:
        records.extend(
            read_file(f, notes, roles, required=not path.is_dir(), resources=resources, lenient=lenient)
        )
    if path.is_dir() and not records:
        raise DataFormatError(f"{path}: no Rasa NLU examples in its .yml/.yaml files")
    return records
