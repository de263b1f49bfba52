"""The BIO rules of chatft.core.tags: chunking equal to seqeval's, the transition rule, orphans, ``<unk>``.

``bio_chunks`` is the only span chunker: metrics score with it and predictions build their slots with it.
"""

from __future__ import annotations

import itertools
import random
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatft.core.tags import (
    UNK,
    allowed_transitions,
    bio_chunks,
    decoding_transitions,
    entity_types,
    exclude_unk,
    is_bio_tag,
    orphan_positions,
    split_tag,
)

get_entities = pytest.importorskip("seqeval.metrics.sequence_labeling").get_entities


def seqeval_spans(tags):
    """seqeval spans of one flat sentence with the end made exclusive."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # seqeval warns on non-NE tags such as '<unk>'
        return [(t, s, e + 1) for t, s, e in get_entities(list(tags))]


HAND_CASES = {
    "I after O": ["O", "I-x", "I-x", "O"],
    "I after B of other type": ["B-y", "I-x", "O"],
    "B I then I of other type": ["B-x", "I-x", "I-y"],
    "starts with I": ["I-x", "I-x", "O", "B-y"],
    "single token": ["B-x"],
    "single O": ["O"],
    "all O": ["O", "O", "O"],
    "empty": [],
    "adjacent B B": ["B-x", "B-x", "I-x"],
    "entity at end": ["O", "B-x", "I-x"],
    "IOBES": ["S-x", "B-y", "I-y", "E-y", "E-y", "O", "I-x", "E-x"],
    "<unk> tag": ["<unk>", "<unk>", "I-x", "O", "<pad>"],
    "dotted types": ["B-fromloc.city_name", "I-fromloc.city_name", "B-toloc.city_name"],
    "type with dash": ["B-round-trip", "I-round-trip", "B-x"],
    "bare prefixes": ["B", "I", "O", "I", "B-", "I-"],
}


@pytest.mark.parametrize("tags", list(HAND_CASES.values()), ids=list(HAND_CASES))
def test_bio_chunks_hand_cases_equal_seqeval(tags):
    assert bio_chunks(tags) == seqeval_spans(tags)


def test_bio_chunks_explicit_values():
    # Pin the conlleval repairs explicitly, not only "same as seqeval".
    assert bio_chunks(["O", "I-x", "I-x", "O"]) == [("x", 1, 3)]
    assert bio_chunks(["B-y", "I-x", "O"]) == [("y", 0, 1), ("x", 1, 2)]
    assert bio_chunks(["B-x", "I-x", "I-y"]) == [("x", 0, 2), ("y", 2, 3)]
    assert bio_chunks(["B-x", "B-x"]) == [("x", 0, 1), ("x", 1, 2)]
    assert bio_chunks(["<unk>", "O"]) == [("unk>", 0, 1)]
    assert bio_chunks([]) == []
    assert bio_chunks(("O", "B-x")) == [("x", 1, 2)]  # any sequence, not only list


# Deliberately nasty alphabet: every tag class seqeval's chunker distinguishes, incl. '.', foreign chars, '_'.
WEIRD_TAGS = ["O", "O-x", "B-x", "I-x", "E-x", "S-x", "B-y", "I-y", "B", "I", "E", "S", "B-", "I-_", "X"]
WEIRD_TAGS += [".", ".-x", "<unk>", "X-x", "PAD", "B-a-b", "I-a-b"]


def test_bio_chunks_random_weird_tags_equal_seqeval():
    rng = random.Random(1234)
    for _ in range(3000):
        tags = [rng.choice(WEIRD_TAGS) for _ in range(rng.randint(0, 9))]
        assert bio_chunks(tags) == seqeval_spans(tags), tags


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(WEIRD_TAGS), max_size=12))
def test_bio_chunks_property_equal_seqeval(tags):
    assert bio_chunks(tags) == seqeval_spans(tags)


def test_bio_chunks_rejects_bad_tags():
    with pytest.raises(ValueError):
        bio_chunks(["B-x", ""])
    with pytest.raises(TypeError):
        bio_chunks([["B-x"]])


def test_entity_types():
    vocab = ["O", "<pad>", "B-x", "I-x", "B-fromloc.city_name", "I-y", "S-z", "E-z", "B-round-trip"]
    assert entity_types(vocab) == ["fromloc.city_name", "round-trip", "x", "y", "z"]


def test_split_tag_is_seqevals():
    assert split_tag("B-x") == ("B", "x")
    assert split_tag("O") == ("O", "_")
    assert split_tag("<unk>") == ("<", "unk>")
    assert split_tag("B-round-trip") == ("B", "round-trip")
    assert split_tag("I-") == ("I", "_")


def test_is_bio_tag_accepts_only_o_b_and_i():
    assert [is_bio_tag(t) for t in ["O", "B-x", "I-x.y", "B-", "S-x", "E-x", "Bx", "<unk>", "o"]] == [
        True, True, True, False, False, False, False, False, False
    ]  # fmt: skip


def test_allowed_transitions_exact():
    tags = ["O", "B-a", "I-a", "B-b", "I-b", "<unk>"]
    a_start, a_trans = allowed_transitions(tags)
    assert a_start.dtype == np.bool_ and a_trans.dtype == np.bool_
    assert a_start.tolist() == [True, True, False, True, False, True]
    T, F = True, False
    expected = [
        # O  B-a  I-a  B-b  I-b  <unk>      (to)
        [T, T, F, T, F, T],  # from O
        [T, T, T, T, F, T],  # from B-a
        [T, T, T, T, F, T],  # from I-a
        [T, T, F, T, T, T],  # from B-b
        [T, T, F, T, T, T],  # from I-b
        [T, T, F, T, F, T],  # from <unk> (treated like O)
    ]
    assert a_trans.tolist() == expected
    assert allowed_transitions([])[0].shape == (0,) and allowed_transitions([])[1].shape == (0, 0)


def test_decoding_transitions_never_enter_unk():
    tags = [UNK, "O", "B-a", "I-a"]
    a_start, a_trans = decoding_transitions(tags)
    assert a_start.tolist() == [False, True, True, False]
    assert a_trans[:, 0].tolist() == [False] * 4
    assert a_trans[:, 1:].tolist() == allowed_transitions(tags)[1][:, 1:].tolist()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["O", "B-a", "I-a", "B-b", "I-b"]), max_size=10))
def test_a_path_the_rule_allows_has_no_orphans_and_chunks_to_b_started_spans(tags):
    """The transition rule, the orphan check and the chunker agree: a valid path's spans all start at a B-."""
    vocab = ["O", "B-a", "I-a", "B-b", "I-b"]
    a_start, a_trans = allowed_transitions(vocab)
    ids = [vocab.index(t) for t in tags]
    valid = not ids or (a_start[ids[0]] and all(a_trans[i, j] for i, j in itertools.pairwise(ids)))
    assert valid == (orphan_positions(tags) == [])
    if valid:
        assert all(tags[start].startswith("B-") for _, start, _ in bio_chunks(tags))


def test_orphan_positions():
    assert orphan_positions(["I-a", "O", "B-a", "I-a", "I-b", "B-b", "I-b", "O", "I-b"]) == [0, 4, 8]
    assert orphan_positions([]) == []


def test_exclude_unk_on_numpy_and_torch():
    import torch

    x = np.array([[3.0, 1.0], [0.0, 2.0]])
    assert exclude_unk(x)[:, 0].tolist() == [-np.inf, -np.inf]
    t = torch.tensor([[3.0, 1.0]])
    assert exclude_unk(t).argmax(-1).tolist() == [1]
    single = np.array([[3.0]])
    assert exclude_unk(single).tolist() == [[3.0]]  # one class: nothing else could be predicted
