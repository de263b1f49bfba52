"""data audit: K-fold out-of-fold probabilities -> cleanlab-ranked suspects as JSON Lines.

The pure parts (label remapping, ranking, records, fold split) are checked with exact values on small hand-made
probabilities; one end-to-end run trains two folds of a tiny random BERT on a separable synthetic dataset with
one wrong intent and one wrong slot type injected, and checks that exactly those two come out, with line
numbers that point back at the files.
"""

from __future__ import annotations

import json
import random
from collections import Counter

import numpy as np
import pytest

from chatft.cli import main
from chatft.core.formats import Example
from chatft.core.label_issues import (
    Suspect,
    format_table,
    intent_suspects,
    remap_columns,
    slot_suspects,
    suspect_record,
)

from .conftest import DEMO_CONFIG, QUIET, write_jointbert

pytest.importorskip("cleanlab")

# Words of the tiny tokenizer's vocabulary (one sub-word each), few enough that each recurs often.
ARTISTS = ["adele", "drake", "bowie", "queen"]
CITIES = ["paris", "tokyo", "miami", "rome"]


def synthetic(n_per_intent: int = 30, seed: int = 0) -> list[tuple[str, str, str]]:
    """Three intents told apart by their first words, two slot types told apart by the word itself."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n_per_intent):
        a, c = rng.choice(ARTISTS), rng.choice(CITIES)
        rows.append((f"play some {a} please", "O O B-artist O", "music"))
        rows.append((f"weather in {c} today", "O O B-city O", "weather"))
        rows.append((f"show me {c} on a map", "O O B-city O O O", "map"))
    return rows


def test_remap_columns_by_name_missing_labels_get_zero():
    probs = np.array([[0.0, 0.7, 0.3], [0.0, 0.1, 0.9]])
    out = remap_columns(probs, ["<unk>", "b", "a"], ["a", "b", "c"])
    assert out.tolist() == [[0.3, 0.7, 0.0], [0.9, 0.1, 0.0]]


def test_intent_suspects_flags_the_flipped_label_with_its_suggestion():
    labels = ["a", "b", "c"]
    given = ["a"] * 4 + ["b"] * 4 + ["c"] * 4
    probs = np.array([[0.9, 0.05, 0.05]] * 4 + [[0.05, 0.9, 0.05]] * 4 + [[0.05, 0.05, 0.9]] * 4)
    probs[1] = [0.02, 0.96, 0.02]  # labelled a, looks like b
    probs[9] = [0.2, 0.1, 0.7]
    assert intent_suspects(given, probs, labels) == [Suspect(1, "intent", "a", "b", 0.02)]
    # Left out when its fold's model could not judge it.
    audited = [True] * 12
    audited[1] = False
    assert intent_suspects(given, probs, labels, audited) == []


def _onehot(tags, labels, sure=0.9):
    k = len(labels)
    out = np.full((len(tags), k), (1 - sure) / (k - 1))
    for w, t in enumerate(tags):
        out[w, labels.index(t)] = sure
    return out


def test_slot_suspects_one_record_per_span_with_given_and_suggested_words():
    labels = ["O", "B-from", "I-from", "B-to", "I-to"]
    words = [["from", "new", "york", "to", "rome"]] * 6
    right = ["O", "B-from", "I-from", "O", "B-to"]
    given = [right] * 6
    wrong = ["O", "B-to", "I-to", "O", "B-to"]  # "new york" typed as a destination
    given = [wrong, *given[1:]]
    probs = [_onehot(right, labels) for _ in range(6)]
    suspects = slot_suspects(words, given, probs, [right] * 6, labels)
    assert suspects == [
        Suspect(
            0,
            "slot",
            {"words": "new york", "type": "to", "start": 1, "end": 3},
            {"words": "new york", "type": "from", "start": 1, "end": 3},
            pytest.approx(0.025),
        )
    ]


def test_slot_suspects_a_missed_slot_is_given_type_O_over_the_predicted_words():
    labels = ["O", "B-city", "I-city"]
    words = [["to", "san", "jose"]] * 5
    right = ["O", "B-city", "I-city"]
    given = [["O", "O", "O"], *[right] * 4]
    probs = [_onehot(right, labels) for _ in range(5)]
    (suspect,) = slot_suspects(words, given, probs, [right] * 5, labels)
    assert (suspect.index, suspect.given, suspect.suggested) == (
        0,
        {"words": "san jose", "type": "O", "start": 1, "end": 3},
        {"words": "san jose", "type": "city", "start": 1, "end": 3},
    )


def test_record_schema_and_table():
    suspect = Suspect(4, "intent", "music", "weather", 0.0123456789)
    record = suspect_record(suspect, ["weather", "in", "rome"])
    assert record == {
        "split": "train",
        "line": 5,
        "text": "weather in rome",
        "kind": "intent",
        "given": "music",
        "suggested": "weather",
        "score": 0.012346,
    }
    slot = suspect_record(
        Suspect(
            0,
            "slot",
            {"words": "rome", "type": "artist", "start": 2, "end": 3},
            {"words": "rome", "type": "city", "start": 2, "end": 3},
            0.5,
        ),
        ["weather", "in", "rome"],
    )
    assert format_table([record, slot]).splitlines() == [
        "#  line  kind    given -> suggested         score  text",
        "1  5     intent  music -> weather          0.0123  weather in rome",
        "2  1     slot    rome:artist -> rome:city  0.5000  weather in rome",
    ]


def test_fold_assignments_are_stratified_by_intent():
    from chatft.training.audit import fold_assignments

    intents = ["a"] * 10 + ["b"] * 6 + ["c"] * 1
    folds = fold_assignments(intents, 2, seed=0)
    counts = Counter((intent, fold) for intent, fold in zip(intents, folds, strict=True))
    assert [counts[("a", 0)], counts[("a", 1)], counts[("b", 0)], counts[("b", 1)]] == [5, 5, 3, 3]
    assert fold_assignments(intents, 2, seed=0) == folds


def test_fit_arguments_drop_the_audit_options_only():
    from chatft.training.audit import fit_arguments

    argv = ["--config", "c.yaml", "--output", "o.jsonl", "--folds=3", "--data.data_dir", "d", "--epochs", "2"]
    assert fit_arguments(argv) == ["--config", "c.yaml", "--data.data_dir", "d"]


def test_labels_a_fold_never_saw_are_not_audited():
    from chatft.training.audit import HeldOut, merge_held_out

    examples = [Example(("to", "rome"), ("O", "B-city"), "a"), Example(("hi", "oslo"), ("O", "B-town"), "b")]
    held = HeldOut(
        ("<unk>", "a"),
        ("<unk>", "O", "B-city"),
        np.array([[0.0, 1.0], [0.0, 1.0]]),
        [np.array([[0.0, 0.9, 0.1], [0.0, 0.2, 0.8]]), np.array([[0.0, 0.6, 0.4]])],  # "oslo" cut off
        [["O", "B-city"], ["O", "O"]],
    )
    oof = merge_held_out(examples, [([0, 1], held)], ["a", "b"], ["O", "B-city", "B-town"])
    assert oof.intent_audited.tolist() == [True, False]
    assert oof.tag_probs[0].tolist() == [[0.9, 0.1, 0.0], [0.2, 0.8, 0.0]]
    assert oof.tag_probs[1].tolist() == [[0.6, 0.4, 0.0], [0.0, 0.0, 1.0]]
    assert oof.tags_not_audited == 1


def test_audit_needs_an_output_file(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["data", "audit", "--data.data_dir", "nowhere"])
    assert exc.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "chatft: error: the following arguments are required: output "
        "(options: python -m chatft data audit --help)"
    ]


def test_audit_finds_the_injected_errors_first(tiny_encoder, tmp_path, capsys):
    rows = synthetic()
    rows[4] = (rows[4][0], rows[4][1], "music")  # line 5: "weather in ..." labelled music
    rows[6] = (rows[6][0], "O O B-city O", rows[6][2])  # line 7: the artist tagged as a city
    data = write_jointbert(tmp_path / "data", {"train": rows})
    out = tmp_path / "suspects.jsonl"
    main(
        [
            "data",
            "audit",
            "--config",
            str(DEMO_CONFIG),
            "--model.encoder",
            tiny_encoder,
            "--data.data_dir",
            str(data),
            "--data.batch_size",
            "8",
            "--model.learning_rate",
            "3e-3",
            "--model.head_learning_rate",
            "3e-2",
            "--trainer.limit_val_batches",
            "0",
            *QUIET,
            "--folds",
            "2",
            "--epochs",
            "12",
            "--output",
            str(out),
        ]
    )
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    for r in records:
        assert 0.0 <= r.pop("score") < 0.05
    assert records == [
        {
            "split": "train",
            "line": 5,
            "text": rows[4][0],
            "kind": "intent",
            "given": "music",
            "suggested": "weather",
        },
        {
            "split": "train",
            "line": 7,
            "text": rows[6][0],
            "kind": "slot",
            "given": {"words": rows[6][0].split()[2], "type": "city", "start": 2, "end": 3},
            "suggested": {"words": rows[6][0].split()[2], "type": "artist", "start": 2, "end": 3},
        },
    ]
    lines = (data / "train" / "seq.in").read_text(encoding="utf-8").splitlines()
    assert [lines[r["line"] - 1] for r in records] == [r["text"] for r in records]
    stdout = capsys.readouterr().out
    assert "data audit: 90 training utterances, 2 folds x 12 epochs in " in stdout
    assert f"1 intent and 1 slot suspects written to {out}" in stdout


def test_noise_benchmark_scores_top_n_by_line_and_span():
    import importlib.util

    from .conftest import REPO

    spec = importlib.util.spec_from_file_location("audit_noise", REPO / "benchmarks" / "audit_noise.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    injected = {
        "intent": [{"line": 3}, {"line": 8}],
        "slot": [{"line": 4, "start": 2, "end": 4}],
    }
    span = {"words": "x", "type": "t", "start": 0, "end": 1}
    records = [
        {"kind": "intent", "line": 3},
        {"kind": "slot", "line": 4, "given": span, "suggested": span},  # right line, other words
        {"kind": "intent", "line": 5},
        {"kind": "slot", "line": 4, "given": {**span, "start": 3, "end": 5}, "suggested": span},
        {"kind": "intent", "line": 8},
    ]
    assert bench.score(injected, records) == {
        "intent_top_n": {"n": 2, "precision": 0.5, "recall": 0.5},
        "intent_flagged": {"n": 3, "precision": 0.6667, "recall": 1.0},
        "intent_injected": 2,
        "slot_top_n": {"n": 1, "precision": 0.0, "recall": 0.0},
        "slot_flagged": {"n": 2, "precision": 0.5, "recall": 1.0},
        "slot_injected": 1,
    }
