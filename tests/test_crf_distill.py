"""CRF-to-CRF distillation (``--model.distill_crf``): the teacher's sequence distribution as a target, and the
student's exact KL to it, checked against enumerating every tag sequence."""

from __future__ import annotations

import contextlib
import io
import itertools
import math

import numpy as np
import pytest
import torch

from chatft.cli import main
from chatft.core.crf_posterior import crf_target

from .conftest import cli_args, demo_subset
from .test_distill_cross_tokenizer import FIT, build_other_encoder


def _paths(n: int, t: int):
    return list(itertools.product(range(t), repeat=n))


def _score(path, em, start, trans, end) -> float:
    s = start[path[0]] + end[path[-1]] + sum(em[k, y] for k, y in enumerate(path))
    return s + sum(trans[a, b] for a, b in itertools.pairwise(path))


def _distribution(em, start, trans, end) -> dict:
    scores = {p: _score(p, em, start, trans, end) for p in _paths(*em.shape)}
    log_z = math.log(sum(math.exp(s) for s in scores.values()))
    return {p: math.exp(s - log_z) for p, s in scores.items()}


def _random_crf(rng, n: int = 4, t: int = 3):
    em, start, trans, end = (
        rng.normal(size=(n, t)),
        rng.normal(size=t),
        rng.normal(size=(t, t)),
        rng.normal(size=t),
    )
    trans[2, 0] = -1e4  # a forbidden step, as the BIO masks make them
    return em, start, trans, end


def test_the_target_is_the_enumerated_distributions_marginals_and_entropy():
    em, start, trans, end = _random_crf(np.random.default_rng(0))
    p = _distribution(em, start, trans, end)
    target = crf_target(em, start, trans, end, threshold=0.0)
    unary = np.zeros((4, 3))
    pairs = np.zeros((3, 3))
    for path, prob in p.items():
        for k, y in enumerate(path):
            unary[k, y] += prob
        for a, b in itertools.pairwise(path):
            pairs[a, b] += prob
    assert np.allclose(target.unary, unary, atol=1e-6)
    dense = np.zeros((3, 3))
    dense[target.pair_from, target.pair_to] = target.pair_mass
    assert np.allclose(dense, pairs, atol=1e-6)
    assert dense[2, 0] == 0.0  # the forbidden step carries no mass
    assert target.entropy == pytest.approx(-sum(q * math.log(q) for q in p.values() if q > 0), abs=1e-9)
    assert target.n_words == 4
    with pytest.raises(ValueError, match="at least one word"):
        crf_target(np.zeros((0, 3)), start, trans, end)


def _student_crf(start, trans, end):
    from chatft.model.crf import CRF

    crf = CRF(3).double()
    with torch.no_grad():
        crf.start_transitions.copy_(torch.from_numpy(start))
        crf.transitions.copy_(torch.from_numpy(trans))
        crf.end_transitions.copy_(torch.from_numpy(end))
    return crf


def test_crf_kl_is_the_enumerated_kl_and_zero_for_the_teacher_itself():
    from chatft.training.distill import crf_kl

    rng = np.random.default_rng(1)
    em, start, trans, end = _random_crf(rng)
    target = crf_target(em, start, trans, end, threshold=0.0)
    mask = torch.ones(1, 4, dtype=torch.bool)
    same = _student_crf(start, np.where(trans < -1e3, 0.0, trans), end)  # learned score there: masked anyway
    same.allowed_trans[2, 0] = False
    kl = crf_kl(same, torch.from_numpy(em)[None], [target], mask)
    assert abs(kl.item()) < 1e-6  # the target's statistics are float32

    s_em, s_start, s_trans, s_end = (rng.normal(size=a.shape) for a in (em, start, trans, end))
    student = _student_crf(s_start, s_trans, s_end)
    student.allowed_trans[2, 0] = False
    s_trans_masked = s_trans.copy()
    s_trans_masked[2, 0] = -1e4
    p, q = _distribution(em, start, trans, end), _distribution(s_em, s_start, s_trans_masked, s_end)
    expected = sum(pp * (math.log(pp) - math.log(q[path])) for path, pp in p.items() if pp > 0)
    emissions = torch.from_numpy(s_em)[None].requires_grad_(True)
    # A second utterance without a target, and padding: neither counts.
    batch = torch.cat([emissions, torch.zeros(1, 4, 3, dtype=torch.float64)])
    mask2 = torch.tensor([[True] * 4, [True, True, False, False]])
    kl = crf_kl(student, batch, [target, None], mask2)
    assert kl.item() == pytest.approx(expected, abs=1e-6)
    kl.backward()
    assert student.transitions.grad.abs().sum() > 0 and emissions.grad.abs().sum() > 0
    assert student.transitions.grad[2, 0] == 0  # a forbidden step's score is a constant
    assert crf_kl(student, batch, [None, None], mask2) is None


def test_crf_kl_of_a_batch_is_the_mean_of_each_utterances_enumerated_kl():
    """Utterances of 4, 1 and 3 words (one word: no transition mass) and one without a target, padded to 4
    words: the batch's KL is the mean of the three enumerated KLs, and so is its gradient."""
    from chatft.training.distill import crf_kl

    rng = np.random.default_rng(7)
    t_start, t_trans, t_end = rng.normal(size=3), rng.normal(size=(3, 3)), rng.normal(size=3)
    t_trans[2, 0] = -1e4
    s_start, s_trans, s_end = rng.normal(size=3), rng.normal(size=(3, 3)), rng.normal(size=3)
    student = _student_crf(s_start, s_trans, s_end)
    student.allowed_trans[2, 0] = False
    s_trans_masked = s_trans.copy()
    s_trans_masked[2, 0] = -1e4
    lengths = [4, 0, 1, 3]  # 0: the utterance without a target
    teacher_em = [rng.normal(size=(n, 3)) for n in lengths]
    student_em = np.zeros((4, 4, 3))
    targets, expected = [], []
    for b, n in enumerate(lengths):
        if n == 0:
            targets.append(None)
            student_em[b, :2] = rng.normal(size=(2, 3))  # words, but no target: must not count
            continue
        student_em[b, :n] = rng.normal(size=(n, 3))
        targets.append(crf_target(teacher_em[b], t_start, t_trans, t_end, threshold=0.0))
        p = _distribution(teacher_em[b], t_start, t_trans, t_end)
        q = _distribution(student_em[b, :n], s_start, s_trans_masked, s_end)
        expected.append(sum(pp * (math.log(pp) - math.log(q[path])) for path, pp in p.items() if pp > 0))
    assert targets[2].pair_mass.sum() == 0
    mask = torch.tensor([[k < max(n, 2 * (n == 0)) for k in range(4)] for n in lengths])
    emissions = torch.from_numpy(student_em).requires_grad_(True)
    kl = crf_kl(student, emissions, targets, mask)
    assert kl.item() == pytest.approx(sum(expected) / 3, abs=1e-6)
    kl.backward()
    one_by_one = torch.from_numpy(student_em).requires_grad_(True)
    for b in (0, 2, 3):
        (crf_kl(student, one_by_one[b : b + 1], [targets[b]], mask[b : b + 1]) / 3).backward()
    assert torch.allclose(emissions.grad, one_by_one.grad, atol=1e-6)
    assert emissions.grad[1].abs().sum() == 0 and emissions.grad[2, 1:].abs().sum() == 0


def _targets_of_one_utterance(loaded, words):
    """The teacher's CRF target for one utterance alone, from the inference path (no padding)."""
    from chatft.core.features import pad_batch, tokenize_examples
    from chatft.core.inference_loop import MODEL_INPUTS
    from chatft.model.decoding import slot_decoder_of

    feats = tokenize_examples(loaded.tokenizer, [words], loaded.max_length)
    arrays = pad_batch(feats, loaded.tokenizer.pad_token_id)
    _, slots, _ = loaded.logits({k: arrays[k] for k in MODEL_INPUTS})
    d = slot_decoder_of(loaded.model)
    return crf_target(slots[0, : len(feats[0].word_starts)], d.start, d.trans, d.end)


@pytest.fixture(scope="module")
def crf_teachers(tmp_path_factory, tiny_encoder) -> dict:
    """Two CRF teachers of the demo subset: one with the student's tiny BERT, one with another tokenizer."""
    root = tmp_path_factory.mktemp("crfkd")
    data = demo_subset(root / "data")
    other = build_other_encoder(root / "other-bert")
    out = {"root": root, "data": data}
    for name, encoder in (("same", tiny_encoder), ("other", other)):
        main(
            ["fit", *cli_args(encoder, data, root / name, trainer__max_epochs=2, model__use_crf=True, **FIT)]
        )
        out[name] = root / name / "lightning_logs/version_0/checkpoints/last.ckpt"
    return out


@pytest.mark.parametrize("teacher", ["same", "other"])
def test_a_crf_student_learns_every_utterances_sequence_target(crf_teachers, tiny_encoder, teacher):
    from chatft.core.formats import read_split
    from chatft.model.inference import load_for_inference

    args = cli_args(
        tiny_encoder,
        crf_teachers["data"],
        crf_teachers["root"] / f"student-{teacher}",
        trainer__max_epochs=1,
        model__use_crf=True,
        model__distill_from=crf_teachers[teacher],
        model__distill_crf=True,
        model__distill_init=False,
        **FIT,
    )
    with contextlib.redirect_stdout(io.StringIO()):
        cli = main(["fit", *args])
    kd = cli.model._teacher
    assert kd.crf_targets and sorted(kd._crf) == list(range(64))  # 64 utterances, 4 batches of 16
    assert math.isfinite(float(cli.trainer.callback_metrics["train/distill_loss"]))
    loaded = load_for_inference(crf_teachers[teacher])
    examples = read_split(crf_teachers["data"], "train")
    for i in (0, 17, 63):
        alone = _targets_of_one_utterance(loaded, list(examples[i].words))
        got = kd._crf[i]
        assert got is not None and got.n_words == len(examples[i].words)
        assert np.allclose(got.unary, alone.unary, atol=1e-4)
        assert got.entropy == pytest.approx(alone.entropy, abs=1e-3)


def test_distill_crf_option_errors_are_one_line(crf_teachers, tiny_encoder, tmp_path, capsys):
    softmax_teacher = tmp_path / "soft"
    main(
        [
            "fit",
            *cli_args(
                tiny_encoder,
                crf_teachers["data"],
                softmax_teacher,
                trainer__max_epochs=1,
                model__use_crf=False,
                **FIT,
            ),
        ]
    )
    soft_ckpt = softmax_teacher / "lightning_logs/version_0/checkpoints/last.ckpt"
    capsys.readouterr()
    for options, message in (
        (
            dict(model__use_crf=False, model__distill_from=crf_teachers["same"]),
            "chatft: error: --model.distill_crf distils a CRF teacher into a CRF student: give "
            "--model.distill_from and --model.use_crf true",
        ),
        (
            dict(
                model__use_crf=True, model__distill_from=crf_teachers["same"], model__distill_temperature=2.0
            ),
            "chatft: error: --model.distill_crf learns the teacher's tag-sequence distribution as it is: "
            "--model.distill_temperature must be 1 (got 2.0)",
        ),
        (
            dict(model__use_crf=True, model__distill_from=soft_ckpt, model__distill_init=False),
            f"chatft: error: --model.distill_crf: the teacher {soft_ckpt} has no CRF (it was trained without "
            "--model.use_crf true); drop --model.distill_crf",
        ),
    ):
        args = cli_args(
            tiny_encoder,
            crf_teachers["data"],
            tmp_path / "run",
            trainer__max_epochs=1,
            model__distill_crf=True,
            **options,
        )
        with pytest.raises(SystemExit) as exc:
            main(["fit", *args])
        assert exc.value.code == 2
        assert capsys.readouterr().err.strip().splitlines() == [message]
