"""Distillation from a teacher whose encoder and tokenizer differ from the student's.

The student is the session's tiny BERT (32 wide, its WordPiece vocabulary of demo words); the teacher is fitted
here on another tiny BERT (48 wide, a vocabulary of letters and short words only, so it splits words into
more sub-words and truncates differently). Its targets are computed from the words with its own tokenizer
before training, and must equal what the inference path gives for each utterance.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
from pathlib import Path

import pytest
import torch

from chatft.cli import main

from .conftest import cli_args, demo_subset

FIT = dict(data__batch_size=16, model__learning_rate="3e-4", model__head_learning_rate="3e-3")


def build_other_encoder(folder: Path) -> Path:
    """A 2-layer, 48-wide random BERT whose vocabulary (letters, ``##`` letters and 1-3 letter words) is not
    the student's: the same words give other ids and more sub-words."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    letters = list("abcdefghijklmnopqrstuvwxyz0123456789'")
    short = ["to", "from", "a", "the", "me", "on", "in", "at", "for", "is", "of", "and"]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *short, *letters, *(f"##{c}" for c in letters)]
    vocab = list(dict.fromkeys(vocab))
    BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True).save_pretrained(folder)
    torch.manual_seed(1)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=48,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config, add_pooling_layer=False).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def xteacher(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("xtok")
    encoder = build_other_encoder(root / "other-bert")
    data = demo_subset(root / "data")
    main(
        [
            "fit",
            *cli_args(encoder, data, root / "teacher", trainer__max_epochs=2, data__max_length=128, **FIT),
        ]
    )
    return {
        "root": root,
        "data": data,
        "encoder": str(encoder),
        "ckpt": root / "teacher/lightning_logs/version_0/checkpoints/last.ckpt",
    }


@pytest.fixture(scope="module")
def xstudent(xteacher, tiny_encoder) -> dict:
    """A student fitted for one epoch (64 utterances, batches of 16: 4 steps) with ``max_length`` 12, so the
    student's truncation cuts words of some utterances and the teacher's (128) does not."""
    args = cli_args(
        tiny_encoder,
        xteacher["data"],
        xteacher["root"] / "student",
        trainer__max_epochs=1,
        data__max_length=12,
        model__distill_from=xteacher["ckpt"],
        **FIT,
    )
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        cli = main(["fit", *args])
    return {"cli": cli, "out": out.getvalue()}


def _single_utterance_targets(loaded, words: list[str]):
    """The inference path on one utterance alone (no padding): intent logits, slot rows of its kept words."""
    from chatft.core.features import pad_batch, tokenize_examples
    from chatft.core.inference_loop import MODEL_INPUTS

    feats = tokenize_examples(loaded.tokenizer, [words], loaded.max_length)
    arrays = pad_batch(feats, loaded.tokenizer.pad_token_id)
    intents, slots, _ = loaded.logits({k: arrays[k] for k in MODEL_INPUTS})
    return torch.from_numpy(intents[0]), torch.from_numpy(slots[0, : len(feats[0].word_starts)])


def test_fit_rows_cuts_and_pads_to_the_students_word_count():
    from chatft.training.distill import fit_rows

    rows = torch.arange(1.0, 7.0).reshape(3, 2)
    cut, seen = fit_rows(rows, 2)
    assert torch.equal(cut, rows[:2]) and seen == 2
    padded, seen = fit_rows(rows, 5)
    assert torch.equal(padded, torch.cat([rows, torch.zeros(2, 2)])) and seen == 3
    same, seen = fit_rows(rows, 3)
    assert torch.equal(same, rows) and seen == 3


def test_cached_targets_are_the_teachers_inference_outputs_with_the_students_word_counts(xstudent, xteacher):
    from chatft.core.formats import read_split
    from chatft.model.inference import load_for_inference
    from chatft.training.distill import word_targets

    cli = xstudent["cli"]
    teacher = cli.model._teacher
    dataset = cli.datamodule.datasets["train"]
    examples = read_split(xteacher["data"], "train")
    assert teacher.own_tokenizer and sorted(teacher._cache) == list(range(64)) == list(range(len(dataset)))
    loaded = load_for_inference(xteacher["ckpt"])
    n_words = [len(dataset[i].word_starts) for i in range(64)]
    assert (
        sum(n < len(ex.words) for n, ex in zip(n_words, examples, strict=True)) == 52
    )  # the student cut these
    # Unpadded, one utterance at a time, word_targets is the inference path to the bit.
    ones = word_targets(loaded, [ex.words for ex in examples], n_words, batch_size=1)
    for i, ex in enumerate(examples):
        intent, rows = _single_utterance_targets(loaded, ex.words)
        assert len(rows) == len(ex.words)  # the teacher (max_length 128) kept every word
        cached_intent, cached_slots, cached_hidden = teacher._cache[i]
        assert cached_hidden is None
        assert cached_slots.shape == (n_words[i], len(loaded.slot_labels))
        assert torch.equal(ones[i][0], intent) and torch.equal(ones[i][1], rows[: n_words[i]])
        assert ones[i][2] == teacher._seen[i] == n_words[i]
        # The fit's cache came from batches of 64 (padding moves the last float bits only).
        assert torch.allclose(cached_intent, intent, atol=1e-5)
        assert torch.allclose(cached_slots, rows[: n_words[i]], atol=1e-5)


def test_cached_slot_rows_match_the_batches_word_mask(xstudent):
    cli = xstudent["cli"]
    teacher = cli.model._teacher
    loader = cli.datamodule.train_dataloader()
    batches = 0
    for batch in loader:
        intents, slots, hidden = teacher.targets(batch)
        mask = batch["word_mask"]
        assert hidden is None and intents.size(0) == mask.size(0) and slots.shape[:2] == mask.shape
        for b, i in enumerate(batch["index"].tolist()):
            n = int(mask[b].sum())
            assert teacher._cache[i][1].size(0) == n
            assert torch.equal(slots[b, :n], teacher._cache[i][1])
            assert not slots[b, n:].any()
        batches += 1
    assert batches == 4


def test_a_teacher_that_truncates_more_gives_zero_rows_and_no_slot_target(xteacher, tiny_encoder):
    """Teacher max_length 8 (it keeps a few words), student counts from max_length 128: the rows past what the
    teacher saw are zeros and those words do not count in the slot KL."""
    from chatft.core.features import tokenize_examples
    from chatft.core.formats import read_split
    from chatft.model.batching import collate
    from chatft.model.encoders import load_tokenizer
    from chatft.model.inference import load_for_inference
    from chatft.training.distill import Teacher, distillation_loss, word_targets

    examples = read_split(xteacher["data"], "train")[:8]
    words = [ex.words for ex in examples]
    student = tokenize_examples(load_tokenizer(tiny_encoder), words, 128)
    counts = [len(f.word_starts) for f in student]
    assert counts == [len(w) for w in words]
    loaded = dataclasses.replace(load_for_inference(xteacher["ckpt"]), max_length=8)
    kept = [len(f.word_starts) for f in tokenize_examples(loaded.tokenizer, words, 8)]
    assert all(k < n for k, n in zip(kept, counts, strict=True))
    targets = word_targets(loaded, words, counts, batch_size=1)
    for (_, rows, seen), k, n, w in zip(targets, kept, counts, words, strict=True):
        assert seen == k and rows.shape == (n, len(loaded.slot_labels))
        assert not rows[k:].any()
        assert torch.equal(rows[:k], _single_utterance_targets(loaded, w)[1])

    teacher = Teacher(loaded.model, weight=1.0, temperature=1.0, inference=loaded)
    teacher.fill(words, counts)
    batch = collate(student, load_tokenizer(tiny_encoder).pad_token_id)
    slots = torch.randn(*batch["word_mask"].shape, len(loaded.slot_labels))
    intents = torch.randn(8, len(loaded.intent_labels))
    loss, soft, _ = teacher.mix(torch.tensor(0.0), batch, intents, slots)
    seen = torch.arange(batch["word_mask"].size(1)) < torch.tensor(kept)[:, None]
    t_intents, t_slots, _ = teacher.targets(batch)
    want = distillation_loss(intents, t_intents, slots, t_slots, batch["word_mask"] & seen)
    assert torch.equal(soft, want) and torch.equal(loss, want)


def test_cross_tokenizer_fit_logs_its_lines(xstudent, xteacher, tiny_encoder):
    lines = [r for r in xstudent["out"].splitlines() if r.startswith("distillation:")]
    assert len(lines) == 3, lines
    assert lines[0] == (
        "distillation: the student starts from its pretrained encoder: the teacher's encoder "
        f"({xteacher['encoder']}) differs from the student's ({tiny_encoder})"
    )
    assert lines[1].startswith(
        f"distillation: the teacher ({xteacher['encoder']}, its own tokenizer, max_length 128) computed the "
        "targets of 64 training utterances in "
    )
    assert lines[1].endswith(" s")
    assert lines[2].startswith("distillation: the teacher's targets for 64 training utterances took ")
    assert lines[2].endswith(" s before training (its own tokenizer); 4 batches read them")
    teacher = xstudent["cli"].model._teacher
    assert teacher.stats["teacher_batches"] == 0 and teacher.stats["cached_batches"] >= 4


def test_cross_tokenizer_option_errors_are_one_line(xteacher, tiny_encoder, tmp_path, capsys):
    why = f"the teacher's tokenizer ({xteacher['encoder']}) is not the student's ({tiny_encoder})"
    for options, message in (
        (
            dict(model__distill_hidden_weight=1.0),
            f"chatft: error: --model.distill_hidden_weight: {why}; hidden states are per token and their "
            "tokens differ: use --model.distill_hidden_weight 0 or a teacher with the student's encoder",
        ),
        (
            dict(model__distill_init=True),
            f"chatft: error: --model.distill_init true: {why}, so its encoder's weights cannot be copied into "
            "the student; drop --model.distill_init",
        ),
        (
            dict(model__distill_weight=0),
            f"chatft: error: --model.distill_from with --model.distill_weight 0: {why}, so it gives no starting "
            "weights and would do nothing; raise --model.distill_weight or drop --model.distill_from",
        ),
    ):
        args = cli_args(
            tiny_encoder,
            xteacher["data"],
            tmp_path / "run",
            trainer__max_epochs=1,
            model__distill_from=xteacher["ckpt"],
            **options,
        )
        with pytest.raises(SystemExit) as exc:
            main(["fit", *args])
        assert exc.value.code == 2
        assert capsys.readouterr().err.strip().splitlines() == [message]


def test_a_teacher_with_the_students_tokenizer_still_runs_lazily(xteacher):
    """Same tokenizer (the teacher's own encoder folder, loaded afresh): no inference copy, empty cache, and the
    teacher runs on the student's batch the first time it sees it."""
    from chatft.core.features import tokenize_examples
    from chatft.core.formats import read_split
    from chatft.model.batching import collate
    from chatft.model.checkpoint import checkpoint_labels
    from chatft.model.encoders import load_tokenizer
    from chatft.training.distill import Teacher

    tokenizer = load_tokenizer(xteacher["encoder"])
    intents, slots = checkpoint_labels(xteacher["ckpt"])
    teacher = Teacher.load(
        xteacher["ckpt"],
        intents,
        slots,
        len(tokenizer),
        "cpu",
        tokenizer=tokenizer,
        weight=0.5,
        temperature=1.0,
    )
    assert not teacher.own_tokenizer and teacher._cache == {}
    feats = tokenize_examples(tokenizer, [ex.words for ex in read_split(xteacher["data"], "train")[:4]], 128)
    teacher.targets(collate(feats, tokenizer.pad_token_id))
    assert teacher.stats["teacher_batches"] == 1 and sorted(teacher._cache) == [0, 1, 2, 3]


def test_same_tokenizer_compares_more_than_the_size(tiny_encoder, tmp_path):
    """Two vocabularies of one size but other tokens are different tokenizers."""
    from transformers import BertTokenizerFast

    from chatft.model.encoders import load_tokenizer
    from chatft.training.distill import same_tokenizer

    mine = load_tokenizer(tiny_encoder)
    vocab = dict(sorted(mine.get_vocab().items(), key=lambda kv: kv[1]))
    assert "to" in vocab and "zzz" not in vocab
    renamed = {(w if w != "to" else "zzz"): i for w, i in vocab.items()}
    other = BertTokenizerFast(vocab=renamed, do_lower_case=True)
    assert len(other) == len(mine) and not same_tokenizer(mine, other)
    assert same_tokenizer(mine, load_tokenizer(tiny_encoder))
