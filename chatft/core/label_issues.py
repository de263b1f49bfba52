"""Likely annotation errors, ranked, from out-of-fold probabilities (cleanlab's confident learning).

The input is what ``python -m chatft data audit`` computes by K-fold cross-validation: for every training
utterance, the intent and word-tag probabilities of a model that never saw it. Confident learning
(:func:`cleanlab.filter.find_label_issues` for intents, :mod:`cleanlab.token_classification` for word tags)
flags the labels that disagree with those probabilities more than each class's own typical confidence allows;
flagged labels are ranked by their *self-confidence* (the probability the held-out model gives the label an
annotator wrote), lowest first. cleanlab is the well-tested implementation of the method, so none of it is
written here; this module only turns its flags into records a person can act on.

Torch-free (numpy + cleanlab, imported when used: it is an optional extra, ``pip install 'chatft[audit]'``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from chatft.core.errors import ConfigError
from chatft.core.tags import bio_chunks

__all__ = ["Suspect", "format_table", "intent_suspects", "remap_columns", "slot_suspects", "suspect_record"]


@dataclass(frozen=True)
class Suspect:
    """One suspected annotation error.

    ``index`` is the utterance's 0-based position in its split; ``given``/``suggested`` are intent names,
    or for slots ``{"words", "type", "start", "end"}`` dicts (word offsets, ``end`` exclusive; type ``O``
    when there is no slot there). ``score`` is the self-confidence: the probability that a model which
    never saw the utterance gives the label as written (low = suspicious).
    """

    index: int
    kind: str
    given: str | dict
    suggested: str | dict
    score: float


def _cleanlab():
    try:
        import cleanlab.filter
        import cleanlab.token_classification.filter
    except ImportError:
        raise ConfigError(
            "the audit needs cleanlab: pip install 'chatft[audit]' (or pip install cleanlab)"
        ) from None
    return cleanlab


def remap_columns(probs: np.ndarray, source: Sequence[str], target: Sequence[str]) -> np.ndarray:
    """Probabilities over ``source`` labels re-indexed to ``target`` labels (by name).

    A fold's model knows only the labels of its own training part: a ``target`` label it lacks gets
    probability 0, and a ``source`` label outside ``target`` (``<unk>``) is dropped.
    """
    probs = np.asarray(probs, dtype=np.float64)
    out = np.zeros((*probs.shape[:-1], len(target)))
    where = {label: i for i, label in enumerate(target)}
    for j, label in enumerate(source):
        if label in where:
            out[..., where[label]] = probs[..., j]
    return out


def _quiet(fn, *args, **kwargs):
    """cleanlab warns about classes with few examples; rare classes are normal in intent data."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def intent_suspects(
    given: Sequence[str],
    probs: np.ndarray,
    labels: Sequence[str],
    audited: Sequence[bool] | None = None,
) -> list[Suspect]:
    """Utterances whose intent confident learning flags, lowest self-confidence first.

    ``probs[i]`` are utterance ``i``'s out-of-fold probabilities over ``labels``. ``audited[i]`` False
    leaves an utterance out (its fold's model never saw its intent, so it cannot judge it).
    """
    cl = _cleanlab()
    probs = np.asarray(probs, dtype=np.float64)
    keep = np.arange(len(given)) if audited is None else np.flatnonzero(np.asarray(audited, dtype=bool))
    index = {label: i for i, label in enumerate(labels)}
    y = np.array([index[given[i]] for i in keep], dtype=int)
    if len(set(y.tolist())) < 2:
        return []  # one class: nothing to confuse it with
    p = probs[keep]
    found = _quiet(cl.filter.find_label_issues, y, p, return_indices_ranked_by="self_confidence")
    return [
        Suspect(int(keep[k]), "intent", given[keep[k]], labels[int(p[k].argmax())], float(p[k, y[k]]))
        for k in found
    ]


def _span_at(tags: Sequence[str], j: int) -> tuple[str, int, int] | None:
    for typ, start, end in bio_chunks(tags):
        if start <= j < end:
            return typ, start, end
    return None


def _side(words: Sequence[str], span: tuple[str, int, int] | None, other, j: int) -> dict:
    """One side of a slot record: its span at word ``j``, else ``O`` over the other side's words."""
    typ, start, end = span if span else ("O", *(other[1:] if other else (j, j + 1)))
    return {"words": " ".join(words[start:end]), "type": typ, "start": start, "end": end}


def slot_suspects(
    words: Sequence[Sequence[str]],
    given_tags: Sequence[Sequence[str]],
    probs: Sequence[np.ndarray],
    predicted_tags: Sequence[Sequence[str]],
    labels: Sequence[str],
) -> list[Suspect]:
    """Slot spans with word tags that confident learning flags, lowest self-confidence first.

    ``probs[i]`` is ``[words, len(labels)]``: utterance ``i``'s out-of-fold tag probabilities per word;
    ``predicted_tags[i]`` the held-out model's decoded tags. Flagged words are found by
    :func:`cleanlab.token_classification.filter.find_label_issues`; each becomes a record of the given span
    and the predicted span at that word (one record per region: a two-word city flagged on both words is
    one suspect, scored by its least confident word).
    """
    cl = _cleanlab()
    index = {label: i for i, label in enumerate(labels)}
    y = [[index[t] for t in tags] for tags in given_tags]
    if len({t for row in y for t in row}) < 2:
        return []
    flat_probs = [np.asarray(p, dtype=np.float64) for p in probs]
    found = _quiet(cl.token_classification.filter.find_label_issues, y, flat_probs)
    out: list[Suspect] = []
    covered: dict[int, list[tuple[int, int]]] = {}
    for i, j in found:
        if any(s <= j < e for s, e in covered.get(i, ())):
            continue
        given_span, predicted_span = _span_at(given_tags[i], j), _span_at(predicted_tags[i], j)
        given = _side(words[i], given_span, predicted_span, j)
        suggested = _side(words[i], predicted_span, given_span, j)
        start, end = min(given["start"], suggested["start"]), max(given["end"], suggested["end"])
        covered.setdefault(i, []).append((start, end))
        out.append(Suspect(int(i), "slot", given, suggested, float(flat_probs[i][j, y[i][j]])))
    return out


def suspect_record(suspect: Suspect, words: Sequence[str], split: str = "train") -> dict:
    """The JSON Lines record of a suspect: ``line`` is 1-based in the split's file."""
    return {
        "split": split,
        "line": suspect.index + 1,
        "text": " ".join(words),
        "kind": suspect.kind,
        "given": suspect.given,
        "suggested": suspect.suggested,
        "score": round(suspect.score, 6),
    }


def _show(value) -> str:
    return value if isinstance(value, str) else f"{value['words']}:{value['type']}"


def format_table(records: Sequence[dict], top: int = 10, width: int = 50) -> str:
    """A plain-text table of the first ``top`` records (rank, line, kind, given -> suggested, score, text)."""
    rows = [("#", "line", "kind", "given -> suggested", "score", "text")]
    for rank, r in enumerate(records[:top], start=1):
        text = r["text"] if len(r["text"]) <= width else r["text"][: width - 1] + "…"
        change = f"{_show(r['given'])} -> {_show(r['suggested'])}"
        rows.append((str(rank), str(r["line"]), r["kind"], change, f"{r['score']:.4f}", text))
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    return "\n".join(
        "  ".join(
            cell.ljust(w) if c != 4 else cell.rjust(w)
            for c, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    )
