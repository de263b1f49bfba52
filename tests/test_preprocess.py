"""Tokenization and label alignment: exact positions, truncation, collate padding."""

from __future__ import annotations

import torch

from chatft.core.features import IGNORE, Features, align_labels, first_subword_positions, tokenize_examples
from chatft.model.batching import collate


def test_align_labels_first_subword_rule():
    # [CLS] w0 w1 w1 w1 w2 [SEP]
    word_ids = [None, 0, 1, 1, 1, 2, None]
    assert align_labels(word_ids, [5, 6, 7]) == [IGNORE, 5, 6, IGNORE, IGNORE, 7, IGNORE]
    assert first_subword_positions(word_ids) == [1, 2, 5]


def test_tokenize_exact_positions(tiny_tokenizer):
    words = ["book", "a", "flight", "to", "boston"]
    tokens = tiny_tokenizer.convert_ids_to_tokens(
        tiny_tokenizer(words, is_split_into_words=True)["input_ids"]
    )
    # The tiny vocabulary keeps words of <= 5 letters whole and spells longer ones letter by letter.
    assert tokens == [
        "[CLS]",
        "book",
        "a",
        "f",
        "##l",
        "##i",
        "##g",
        "##h",
        "##t",
        "to",
        "b",
        "##o",
        "##s",
        "##t",
        "##o",
        "##n",
        "[SEP]",
    ]
    (f,) = tokenize_examples(
        tiny_tokenizer,
        [words],
        64,
        word_tag_ids=[[1, 1, 1, 1, 9]],
        intents=[3],
        gold_tags=[["O", "O", "O", "O", "B-city"]],
    )
    assert f.word_starts == [1, 2, 3, 9, 10]
    assert f.labels == [IGNORE, 1, 1, 1] + [IGNORE] * 5 + [1, 9] + [IGNORE] * 6
    assert f.word_tags == [1, 1, 1, 1, 9]
    assert (f.intent, f.n_words, f.truncated) == (3, 5, False)
    assert f.gold_tags == ("O", "O", "O", "O", "B-city")


def test_truncation_keeps_a_prefix_of_words(tiny_tokenizer):
    words = ["book", "a", "flight", "to", "boston"]
    (f,) = tokenize_examples(tiny_tokenizer, [words], 8, word_tag_ids=[[1, 2, 3, 4, 5]])
    # [CLS] book a f ##l ##i ##g [SEP]: "flight" is cut mid-word but its first sub-word survives.
    assert len(f.input_ids) == 8
    assert f.word_starts == [1, 2, 3]
    assert f.word_tags == [1, 2, 3]
    assert f.truncated and f.n_words == 5


def test_word_without_subwords_becomes_unk(tiny_tokenizer):
    words = ["book", "\u200b", "a"]
    (f,) = tokenize_examples(tiny_tokenizer, [words], 32, word_tag_ids=[[1, 2, 3]])
    assert f.word_starts == [1, 2, 3]
    assert tiny_tokenizer.convert_ids_to_tokens(f.input_ids) == ["[CLS]", "book", "[UNK]", "a", "[SEP]"]


def test_collate_dynamic_padding():
    a = Features([2, 10, 11, 3], [IGNORE, 4, 5, IGNORE], [1, 2], [4, 5], 1, 2, 0, ("B-x", "I-x"))
    b = Features([2, 12, 3], [IGNORE, 6, IGNORE], [1], [6], 2, 3, 1, ("O", "O", "O"))
    batch = collate([a, b], pad_id=0)
    assert batch["input_ids"].tolist() == [[2, 10, 11, 3], [2, 12, 3, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]
    assert batch["word_index"].tolist() == [[1, 2], [1, 0]]
    assert batch["word_mask"].tolist() == [[True, True], [True, False]]
    assert batch["word_tags"].tolist() == [[4, 5], [6, IGNORE]]
    assert batch["intent"].tolist() == [1, 2]
    assert batch["n_words"].tolist() == [2, 3]
    assert batch["gold_tags"] == [("B-x", "I-x"), ("O", "O", "O")]
    assert batch["input_ids"].dtype == torch.long
