"""A dialogue policy's YAML file: found by shipped name or path, parsed, with one-line errors.

Both dialogue policies read their file here: the rule-based tracker's :class:`~chatft.dialogue.tracker.
DialoguePolicy` (``--requirements atis``/``demo`` or a file) and the learned tracker's
:class:`~chatft.dialogue.state_policy.StatePolicy` (``woz`` or a file). Each then checks its own keys. A YAML
syntax error names the file, line and column (PyYAML's marks). Torch-free.
"""

from __future__ import annotations

from pathlib import Path

from chatft.core.errors import ConfigError

__all__ = ["read_policy_file", "yaml_error"]


def yaml_error(path: str | Path, err: Exception) -> str:
    """``file:line:column: not valid YAML: problem (context)``, from PyYAML's marks (1-based, like editors)."""
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    context = getattr(err, "context", None)
    return f"{where}: not valid YAML: {problem}" + (f" ({context})" if context else "")


def read_policy_file(
    name_or_path: str | Path, shipped: Path, not_found: type[Exception] = ConfigError
) -> tuple[object, str]:
    """``(parsed YAML, where)`` of a policy: the file ``name_or_path``, else ``<shipped>/<name>.yaml``; an empty
    file reads as ``{}``. A policy that is neither raises ``not_found`` listing the shipped names."""
    path = Path(name_or_path).expanduser()
    named = shipped / f"{name_or_path}.yaml"
    if not path.is_file() and named.is_file():
        path = named
    if not path.is_file():
        names = ", ".join(sorted(p.stem for p in shipped.glob("*.yaml")))
        raise not_found(f"{name_or_path}: dialogue policy not found (a YAML file, or one of: {names})")
    import yaml

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError(yaml_error(path, err)) from None
    return raw, str(path)
