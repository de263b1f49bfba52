"""Distillation from several teachers at once (``--model.distill_from '[a.ckpt, b.ckpt]'``).

Two tiny teachers on the demo subset: one on the session's tiny BERT (the student's tokenizer), one on another
tiny BERT with a letters-only vocabulary (its own tokenizer). Their averaged targets must be the mean of what each
one's inference path gives, to the bit, and the student may start from the first one's weights.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from chatft.cli import main

from .conftest import cli_args, demo_subset
from .test_distill_cross_tokenizer import FIT, build_other_encoder

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def teachers(tiny_encoder, tmp_path_factory) -> dict:
    """Two teachers of two epochs, without the small-data fallback intent (it would turn these weak models'
    low-confidence answers into "fallback", which the ensemble benchmark does not model)."""
    root = tmp_path_factory.mktemp("ensemble")
    data = demo_subset(root / "data")
    other = build_other_encoder(root / "other-bert")
    for name, encoder in (("same", tiny_encoder), ("other", other)):
        main(
            [
                "fit",
                *cli_args(
                    encoder,
                    data,
                    root / name,
                    trainer__max_epochs=2,
                    data__max_length=128,
                    oos__fallback=False,
                    **FIT,
                ),
            ]
        )
    ckpt = "lightning_logs/version_0/checkpoints/last.ckpt"
    return {
        "root": root,
        "data": data,
        "other_encoder": str(other),
        "same": root / "same" / ckpt,
        "other": root / "other" / ckpt,
    }


@pytest.fixture(scope="module")
def ensemble_student(teachers, tiny_encoder) -> dict:
    """One epoch (64 utterances, batches of 16) of a student taught by both teachers, the shared-tokenizer
    one first."""
    args = cli_args(
        tiny_encoder,
        teachers["data"],
        teachers["root"] / "student",
        trainer__max_epochs=1,
        model__distill_from=f"[{teachers['same']}, {teachers['other']}]",
        **FIT,
    )
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        cli = main(["fit", *args])
    return {"cli": cli, "out": out.getvalue()}


def test_average_targets_is_the_mean_of_logits_over_the_words_every_teacher_saw():
    from chatft.training.distill import average_targets

    a = [(torch.tensor([1.0, 3.0]), torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]), 3)]
    b = [(torch.tensor([3.0, -1.0]), torch.tensor([[3.0, 0.0], [1.0, 0.0], [0.0, 0.0]]), 2)]
    [(intent, slots, seen)] = average_targets([a, b])
    assert torch.equal(intent, torch.tensor([2.0, 1.0]))
    # Word 3: one teacher's truncation cut it, so it has no averaged row.
    assert torch.equal(slots, torch.tensor([[2.0, 1.0], [2.0, 2.0], [0.0, 0.0]]))
    assert seen == 2
    [(intent, slots, seen)] = average_targets([[(torch.tensor([0.5]), None, 0)]] * 3)
    assert torch.equal(intent, torch.tensor([0.5])) and slots is None and seen == 0


def test_teacher_paths_reads_one_path_a_list_or_none():
    from chatft.training.distill import teacher_paths

    assert teacher_paths(None) == [] and teacher_paths("") == []
    assert teacher_paths("a.ckpt") == ["a.ckpt"]
    assert teacher_paths(["a.ckpt", "b.ckpt"]) == ["a.ckpt", "b.ckpt"]


def test_the_cache_holds_the_mean_of_each_teachers_inference_targets(ensemble_student, teachers):
    from chatft.core.formats import read_split
    from chatft.model.inference import load_for_inference
    from chatft.training.distill import word_targets

    cli = ensemble_student["cli"]
    teacher = cli.model._teacher
    dataset = cli.datamodule.datasets["train"]
    words = [ex.words for ex in read_split(teachers["data"], "train")]
    n_words = [len(dataset[i].word_starts) for i in range(len(dataset))]
    assert len(teacher.ensemble) == 2 and teacher.precomputed and not teacher.own_tokenizer
    assert sorted(teacher._cache) == list(range(64))
    # fill's batches are word_targets' default batches: the same float operations, so equality is exact.
    each = [word_targets(load_for_inference(teachers[k]), words, n_words) for k in ("same", "other")]
    for i in range(64):
        (ia, sa, seen_a), (ib, sb, seen_b) = each[0][i], each[1][i]
        intent, slots, hidden = teacher._cache[i]
        assert hidden is None and teacher._seen[i] == min(seen_a, seen_b) == n_words[i]
        assert torch.equal(intent, torch.stack([ia, ib]).mean(0))
        assert torch.equal(slots, torch.stack([sa, sb]).mean(0))
    assert teacher.stats["teacher_batches"] == 0 and teacher.stats["cached_batches"] == 4


def test_an_ensemble_fit_logs_its_lines_and_the_student_keeps_the_list(
    ensemble_student, teachers, tiny_encoder
):
    lines = [r for r in ensemble_student["out"].splitlines() if r.startswith("distillation:")]
    assert len(lines) == 3, lines
    assert lines[0] == (
        "distillation: the student starts from the first teacher's weights (its layers [0, 1], embeddings and "
        "heads)"
    )
    assert lines[1].startswith(
        f"distillation: 2 teachers ({tiny_encoder}, {teachers['other_encoder']}; each from the words, with its "
        "tokenizer) computed the averaged targets of 64 training utterances in "
    )
    assert lines[2].startswith(
        "distillation: the 2 teachers' averaged targets for 64 training utterances took "
    )
    assert lines[2].endswith(" s before training; 4 batches read them")
    hparams = ensemble_student["cli"].model.hparams
    assert hparams.distill_from == [str(teachers["same"]), str(teachers["other"])]


def test_an_ensemble_of_crf_teachers_targets_the_mean_of_their_crf_scores(teachers, tiny_encoder):
    """With ``distill_crf``, an utterance's target is the CRF whose start, transition and end scores are the
    teachers' means, over the averaged emission rows."""
    from chatft.core.crf_posterior import crf_target
    from chatft.model.checkpoint import checkpoint_labels
    from chatft.model.decoding import slot_decoder_of
    from chatft.model.encoders import load_tokenizer
    from chatft.training.distill import Teacher

    tokenizer = load_tokenizer(tiny_encoder)
    intents, slots = checkpoint_labels(teachers["same"])
    teacher = Teacher.load(
        [teachers["same"], teachers["other"]],
        intents,
        slots,
        len(tokenizer),
        "cpu",
        tokenizer=tokenizer,
        weight=0.5,
        temperature=1.0,
        crf_targets=True,
    )
    decoders = [slot_decoder_of(t.model) for t in teacher.ensemble]
    assert not np.array_equal(decoders[0].trans, decoders[1].trans)
    rows = torch.randn(4, len(slots), generator=torch.Generator().manual_seed(0))
    got = teacher._crf_target(rows, 4)
    mean = [np.mean([getattr(d, k) for d in decoders], 0) for k in ("start", "trans", "end")]
    want = crf_target(rows.double().numpy(), *mean)
    assert got.entropy == want.entropy
    assert np.array_equal(got.unary, want.unary) and np.array_equal(got.pair_mass, want.pair_mass)


def test_ensemble_option_errors_are_one_line(teachers, tiny_encoder, tmp_path, capsys):
    same = teachers["same"]
    why = "2 teachers give averaged targets"
    missing = tmp_path / "nope.ckpt"
    for options, message in (
        (
            dict(model__distill_from=f"[{same}, {same}]", model__distill_hidden_weight=1.0),
            f"chatft: error: --model.distill_hidden_weight: {why}, and hidden states are not averaged: use "
            "--model.distill_hidden_weight 0 or one teacher",
        ),
        (
            dict(model__distill_from=f"[{same}, {same}]", model__distill_weight=0),
            f"chatft: error: --model.distill_from with --model.distill_weight 0: {why}, which weight 0 ignores "
            "(only the first teacher's weights would be used); raise --model.distill_weight or give one teacher",
        ),
        (
            dict(model__distill_from=f"[{same}, {missing}]"),
            f"chatft: error: --model.distill_from {missing}: no such checkpoint file",
        ),
    ):
        args = cli_args(tiny_encoder, teachers["data"], tmp_path / "run", trainer__max_epochs=1, **options)
        with pytest.raises(SystemExit) as exc:
            main(["fit", *args])
        assert exc.value.code == 2
        assert capsys.readouterr().err.strip().splitlines() == [message]


def _ensemble_eval():
    spec = importlib.util.spec_from_file_location("ensemble_eval", REPO / "benchmarks" / "ensemble_eval.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ensemble_eval_scores_each_member_as_chatft_test_does(teachers, tmp_path, capsys):
    """benchmarks/ensemble_eval.py: each member's row is ``chatft test``'s report (the same decoding and span
    F1), and the ensemble's row scores the averaged targets with the mean CRF scores."""
    from chatft.core.formats import read_split
    from chatft.model.decoding import slot_decoder_of
    from chatft.model.inference import load_for_inference
    from chatft.training.distill import average_targets, mean_decoder, word_targets

    script = _ensemble_eval()
    paths = [str(teachers["same"]), str(teachers["other"])]
    out = tmp_path / "e.json"
    assert script.main(["--data", str(teachers["data"]), "--splits", "test", "--json", str(out), *paths]) == 0
    rows = json.loads(out.read_text())["splits"]["test"]
    assert [r["model"] for r in rows] == [*paths, "ensemble of 2 (mean logits)"]
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "| model | split | intent acc | slot F1 | sentence acc |" and len(printed) == 5
    for k, path in enumerate(paths):
        main(["test", "--ckpt_path", path, *cli_args(data=teachers["data"], root=tmp_path / f"t{k}")])
        report = json.loads((tmp_path / f"t{k}/test_report.json").read_text())["metrics"]
        for key in ("intent_acc", "slot_f1", "sent_acc"):
            assert rows[k][key] == pytest.approx(report[f"test/{key}"], abs=1e-6), (path, key)
    # The ensemble row by hand: argmax of the mean intent logits, Viterbi over the mean scores.
    examples = read_split(teachers["data"], "test")
    words = [ex.words for ex in examples]
    models = [load_for_inference(p) for p in paths]
    mean = average_targets([word_targets(m, words, [len(w) for w in words]) for m in models])
    decoder = mean_decoder([slot_decoder_of(m.model) for m in models])
    intents = models[0].intent_labels
    right = sum(intents[int(t[0].argmax())] == ex.intent for t, ex in zip(mean, examples, strict=True))
    assert rows[2]["intent_acc"] == right / len(examples)
    paths_ = [decoder.decode_batch(t[1][None].numpy(), [len(t[1])])[0] for t in mean]
    sentences = sum(
        intents[int(t[0].argmax())] == ex.intent and [models[0].slot_labels[i] for i in p] == list(ex.tags)
        for t, p, ex in zip(mean, paths_, examples, strict=True)
    )
    assert rows[2]["sent_acc"] == sentences / len(examples)


def test_ensemble_eval_needs_two_checkpoints(teachers, capsys):
    with pytest.raises(SystemExit) as exc:
        _ensemble_eval().main(["--data", str(teachers["data"]), str(teachers["same"])])
    assert exc.value.code == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .splitlines()[-1]
        .endswith("error: give two or more checkpoints (an ensemble of one is the model itself)")
    )


def test_ensemble_eval_scores_intent_only_models_without_a_slot_f1():
    """A model without slots (CLINC150-style data): slot F1 is None (printed ``n/a``), and the sentence is right
    when the intent is."""
    from chatft.core.formats import Example
    from chatft.training.distill import mean_decoder

    script = _ensemble_eval()
    examples = [Example(("hi",), None, "greet"), Example(("bye",), None, "bye")]
    logits = [np.array([2.0, 0.0]), np.array([3.0, 1.0])]  # both say "greet"
    result = script.scores(logits, [None, None], [0, 0], None, ("greet", "bye"), (), examples)
    assert result == {"intent_acc": 0.5, "slot_f1": None, "sent_acc": 0.5}
    assert mean_decoder([None, None]) is None


def test_ensemble_eval_names_a_missing_split_in_one_line(teachers):
    args = [
        "--data",
        str(teachers["data"]),
        "--splits",
        "tets",
        "--",
        str(teachers["same"]),
        str(teachers["other"]),
    ]
    with pytest.raises(SystemExit) as exc:
        _ensemble_eval().main(args)
    assert exc.value.code == (
        f"ensemble_eval.py: {teachers['data'] / 'tets'}: split folder not found (expected seq.in, seq.out and "
        "label inside)"
    )


def test_ensemble_eval_says_to_put_dashes_when_splits_took_the_checkpoints(teachers, capsys):
    """``--splits dev A.ckpt B.ckpt`` without ``--``: argparse gives the checkpoints to ``--splits``; the error
    says so and how to write it, instead of argparse's "required: checkpoints"."""
    same, other = str(teachers["same"]), str(teachers["other"])
    with pytest.raises(SystemExit) as exc:
        _ensemble_eval().main(["--data", str(teachers["data"]), "--splits", "dev", same, other])
    assert exc.value.code == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .splitlines()[-1]
        .endswith(
            f"error: --splits took the checkpoints ({same} ...): put -- before them: --splits dev -- A.ckpt B.ckpt"
        )
    )
