"""Exact checks of chatft.model.crf (and the test-only torch Viterbi of tests/oracles.py) against brute-force enumeration of all tag paths (tiny sizes, fixed seeds)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from chatft.core.tags import FORBIDDEN_SCORE, allowed_transitions
from chatft.model.crf import CRF

from .oracles import crf_viterbi, viterbi_decode

TAG_SETS = {
    3: ["O", "B-a", "I-a"],
    4: ["O", "B-a", "I-a", "B-b"],
    5: ["O", "B-a", "I-a", "B-b", "I-b"],
}
LENGTHS = [4, 2, 0, 1, 3]  # includes an empty row; W = max = 4


def _mask(lengths: list[int], words: int) -> torch.Tensor:
    return torch.arange(words).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)


def _make_crf(tags: list[str], constrained: bool, seed: int = 0, dtype=torch.float64) -> CRF:
    torch.manual_seed(seed)
    a_start, a_trans = allowed_transitions(tags) if constrained else (None, None)
    crf = CRF(len(tags), a_start, a_trans).to(dtype)
    with torch.no_grad():  # larger than the default init so transitions really matter
        for p in crf.parameters():
            p.uniform_(-1.0, 1.0)
    return crf


def _reference_scores(crf: CRF) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Independent re-implementation of the constraint masking, in float64."""
    start = crf.start_transitions.detach().double()
    trans = crf.transitions.detach().double()
    end = crf.end_transitions.detach().double()
    start = torch.where(crf.allowed_start, start, torch.full_like(start, FORBIDDEN_SCORE))
    trans = torch.where(crf.allowed_trans, trans, torch.full_like(trans, FORBIDDEN_SCORE))
    return start, trans, end


def _path_score(em: torch.Tensor, path, start, trans, end) -> float:
    s = start[path[0]] + end[path[-1]] + sum(em[i, t] for i, t in enumerate(path))
    s = s + sum(trans[a, b] for a, b in itertools.pairwise(path))
    return float(s)


def _brute(em: torch.Tensor, start, trans, end) -> dict[tuple[int, ...], float]:
    """Score of every path of length em.shape[0]."""
    n, num_tags = em.shape
    return {
        p: _path_score(em.double(), p, start, trans, end)
        for p in itertools.product(range(num_tags), repeat=n)
    }


def _brute_ll(em, path, start, trans, end) -> float:
    if len(path) == 0:
        return 0.0
    scores = _brute(em, start, trans, end)
    log_z = torch.logsumexp(torch.tensor(list(scores.values()), dtype=torch.float64), 0).item()
    return scores[tuple(path)] - log_z


def _bio_valid(path: list[int], tags: list[str]) -> bool:
    prev = "O"
    for t in path:
        name = tags[t]
        if name.startswith("I-") and prev not in (f"B-{name[2:]}", f"I-{name[2:]}"):
            return False
        prev = name
    return True


def _orphans(path: list[int], tags: list[str]) -> int:
    """How many ``I-x`` of a path do not follow ``B-x``/``I-x`` (each one forbidden step)."""
    count, prev = 0, "O"
    for t in path:
        name = tags[t]
        count += name.startswith("I-") and prev not in (f"B-{name[2:]}", f"I-{name[2:]}")
        prev = name
    return count


@pytest.mark.parametrize("constrained", [False, True])
@pytest.mark.parametrize("num_tags", [3, 4, 5])
def test_log_likelihood_matches_brute_force(num_tags, constrained):
    tags = TAG_SETS[num_tags]
    crf = _make_crf(tags, constrained, seed=num_tags)
    gen = torch.Generator().manual_seed(10 + num_tags)
    W = max(LENGTHS)
    em = torch.randn(len(LENGTHS), W, num_tags, generator=gen, dtype=torch.float64) * 2
    gold = torch.randint(0, num_tags, (len(LENGTHS), W), generator=gen)  # may violate BIO: penalty path
    mask = _mask(LENGTHS, W)
    gold = torch.where(mask, gold, torch.full_like(gold, -100))

    ll = crf.log_likelihood(em, gold, mask)
    assert ll.shape == (len(LENGTHS),) and ll.dtype == torch.float64
    ref = _reference_scores(crf)
    for b, n in enumerate(LENGTHS):
        expected = _brute_ll(em[b, :n], gold[b, :n].tolist(), *ref)
        assert ll[b].item() == pytest.approx(expected, abs=1e-5, rel=1e-9)
    assert ll[LENGTHS.index(0)].item() == 0.0
    # the loss is -ll without the constant 1e4 of each forbidden step (counted here independently)
    steps = [_orphans(gold[b, :n].tolist(), tags) if constrained else 0 for b, n in enumerate(LENGTHS)]
    assert crf.forbidden_steps(gold, mask).tolist() == steps
    nll = crf(em, gold, mask, reduction="none")
    torch.testing.assert_close(nll, -ll + FORBIDDEN_SCORE * torch.tensor(steps, dtype=torch.float64))


def test_float32_and_bf16_inputs():
    tags = TAG_SETS[5]
    crf = _make_crf(tags, constrained=True, seed=1, dtype=torch.float32)
    gen = torch.Generator().manual_seed(1)
    em = torch.randn(len(LENGTHS), 4, 5, generator=gen)
    gold = torch.zeros(len(LENGTHS), 4, dtype=torch.long)  # all O: valid
    mask = _mask(LENGTHS, 4)
    ref = _reference_scores(crf)
    for em_in in (em, em.bfloat16()):
        ll = crf.log_likelihood(em_in, gold, mask)
        assert ll.dtype == torch.float32  # bf16 upcast internally
        for b, n in enumerate(LENGTHS):
            expected = _brute_ll(em_in[b, :n].double(), gold[b, :n].tolist(), *ref)
            assert ll[b].item() == pytest.approx(expected, abs=1e-4)
        assert crf_viterbi(crf, em_in, mask) == crf_viterbi(crf, em_in.float(), mask)


@pytest.mark.parametrize("constrained", [False, True])
def test_probabilities_over_all_paths_sum_to_one(constrained):
    tags = TAG_SETS[5]
    crf = _make_crf(tags, constrained, seed=2)
    n, W = 3, 5  # 125 paths, two padded positions each
    em_one = torch.randn(1, W, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    paths = torch.tensor(list(itertools.product(range(5), repeat=n)))
    gold = torch.cat([paths, torch.full((len(paths), W - n), -100)], dim=1)
    mask = _mask([n] * len(paths), W)
    ll = crf.log_likelihood(em_one.expand(len(paths), W, 5), gold, mask)
    assert ll.exp().sum().item() == pytest.approx(1.0, abs=1e-9)
    if constrained:  # invalid paths carry ~exp(-1e4) mass; valid ones all of it
        valid = torch.tensor([_bio_valid(p, tags) for p in paths.tolist()])
        assert ll[valid].exp().sum().item() == pytest.approx(1.0, abs=1e-9)
        assert torch.isfinite(ll).all() and (ll[~valid] < FORBIDDEN_SCORE / 2).all()


def test_padding_never_matters():
    tags = TAG_SETS[5]
    crf = _make_crf(tags, constrained=True, seed=3)
    gen = torch.Generator().manual_seed(3)
    W = 4
    mask = _mask(LENGTHS, W)
    em = torch.randn(len(LENGTHS), W, 5, generator=gen, dtype=torch.float64)
    gold = torch.randint(0, 5, (len(LENGTHS), W), generator=gen)
    base_ll = crf.log_likelihood(em, gold, mask)
    base_path = crf_viterbi(crf, em, mask)
    assert [len(p) for p in base_path] == LENGTHS

    pad = ~mask
    junk_em = torch.randn(len(LENGTHS), W, 5, generator=gen, dtype=torch.float64) * 1e3
    for fill in (junk_em, torch.full_like(em, float("nan")), torch.full_like(em, float("inf"))):
        em2 = torch.where(pad.unsqueeze(2), fill, em).requires_grad_(True)
        for bad_tag in (-100, 0, 4):
            gold2 = torch.where(pad, torch.full_like(gold, bad_tag), gold)
            ll2 = crf.log_likelihood(em2, gold2, mask)
            torch.testing.assert_close(ll2, base_ll, rtol=0, atol=1e-12)
            assert crf_viterbi(crf, em2.detach(), mask) == base_path
        ll2.sum().backward()
        assert torch.isfinite(em2.grad).all()
        assert (em2.grad[pad] == 0).all()


@pytest.mark.parametrize("constrained", [False, True])
def test_decode_matches_brute_force_argmax(constrained):
    tags = TAG_SETS[5]
    crf = _make_crf(tags, constrained, seed=4)
    W = 4
    em = torch.randn(len(LENGTHS), W, 5, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    em[..., 2] += 1.5  # push towards I-a so constraints actually bite
    paths = crf_viterbi(crf, em, _mask(LENGTHS, W))
    ref = _reference_scores(crf)
    for b, n in enumerate(LENGTHS):
        if n == 0:
            assert paths[b] == []
            continue
        scores = _brute(em[b, :n], *ref)
        assert tuple(paths[b]) == max(scores, key=scores.get)
        if constrained:
            assert _bio_valid(paths[b], tags)


def test_viterbi_bio_constraints_in_softmax_mode():
    """Plain argmax mode: log-softmax emissions, no transitions, BIO constraints only."""
    tags = TAG_SETS[5]
    a_start, a_trans = allowed_transitions(tags)
    gen = torch.Generator().manual_seed(5)
    W = 4
    mask = _mask(LENGTHS, W)
    logits = torch.randn(len(LENGTHS), W, 5, generator=gen)
    logits[..., 2] += 2.0  # I-a and I-b favoured -> argmax is often invalid
    logits[..., 4] += 2.0
    logp = logits.log_softmax(-1)
    paths = viterbi_decode(logp, mask, allowed_start=a_start, allowed_trans=a_trans)
    assert [len(p) for p in paths] == LENGTHS
    argmax = logp.argmax(-1)
    assert any(not _bio_valid(argmax[b, :n].tolist(), tags) for b, n in enumerate(LENGTHS))
    zeros = torch.zeros(5, dtype=torch.float64)
    for b, n in enumerate(LENGTHS):
        assert _bio_valid(paths[b], tags)
        if n:
            scores = _brute(logp[b, :n].double(), zeros, torch.zeros(5, 5, dtype=torch.float64), zeros)
            valid = {p: s for p, s in scores.items() if _bio_valid(list(p), tags)}
            assert tuple(paths[b]) == max(valid, key=valid.get)


def test_viterbi_without_transitions_is_per_position_argmax():
    gen = torch.Generator().manual_seed(6)
    W = 6
    lengths = [6, 3, 0, 5]
    em = torch.randn(len(lengths), W, 7, generator=gen)
    paths = viterbi_decode(em, _mask(lengths, W))
    argmax = em.argmax(-1)
    assert paths == [argmax[b, :n].tolist() for b, n in enumerate(lengths)]


def test_viterbi_falls_back_when_everything_is_forbidden():
    em = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(7))
    none_ok = torch.zeros(4, 4, dtype=torch.bool)
    paths = viterbi_decode(
        em, _mask([3, 2], 3), allowed_start=torch.zeros(4, dtype=torch.bool), allowed_trans=none_ok
    )
    assert [len(p) for p in paths] == [3, 2]
    assert all(0 <= t < 4 for p in paths for t in p)


def test_gradients_finite_and_training_raises_likelihood():
    tags = TAG_SETS[5]
    torch.manual_seed(8)
    a_start, a_trans = allowed_transitions(tags)
    crf = CRF(5, a_start, a_trans)
    proj = torch.nn.Linear(6, 5)
    W = 4
    mask = _mask(LENGTHS, W)
    feats = torch.randn(len(LENGTHS), W, 6)
    gold = torch.tensor(
        [[1, 2, 0, 3], [3, 4, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0], [0, 2, 0, 0]]
    )  # row 4: O I-a
    gold = torch.where(mask, gold, torch.full_like(gold, -100))
    opt = torch.optim.Adam([*crf.parameters(), *proj.parameters()], lr=0.05)
    valid_rows = torch.tensor([0, 1, 3])

    def valid_ll() -> float:
        with torch.no_grad():
            return crf.log_likelihood(proj(feats), gold, mask)[valid_rows].sum().item()

    before = valid_ll()
    for _ in range(15):
        opt.zero_grad()
        loss = crf(proj(feats), gold, mask)  # mean over the 4 non-empty rows
        assert torch.isfinite(loss)  # the BIO-violating gold row is penalised, not -inf
        loss.backward()
        grads = [p.grad for p in [*crf.parameters(), *proj.parameters()]]
        assert all(torch.isfinite(g).all() for g in grads)
        assert crf.transitions.grad[~a_trans].abs().max() == 0  # forbidden scores are constants
        opt.step()
    assert valid_ll() > before + 1.0


def test_reductions_empty_rows_and_input_checks():
    crf = _make_crf(TAG_SETS[3], constrained=False, seed=9)
    em = torch.randn(3, 2, 3, dtype=torch.float64)
    mask = _mask([2, 0, 1], 2)
    gold = torch.zeros(3, 2, dtype=torch.long)
    nll = crf(em, gold, mask, reduction="none")
    assert nll[1] == 0
    torch.testing.assert_close(crf(em, gold, mask, reduction="sum"), nll.sum())
    torch.testing.assert_close(crf(em, gold, mask), nll.sum() / 2)  # mean over non-empty rows only
    # all rows empty / zero words
    assert crf(em, gold, torch.zeros(3, 2, dtype=torch.bool)).item() == 0.0
    assert crf.log_likelihood(em[:, :0], gold[:, :0], mask[:, :0]).tolist() == [0.0, 0.0, 0.0]
    assert crf_viterbi(crf, em[:, :0], mask[:, :0]) == [[], [], []]
    assert crf_viterbi(crf, em, torch.zeros(3, 2, dtype=torch.bool)) == [[], [], []]
    with pytest.raises(ValueError, match="prefix"):
        crf.log_likelihood(em, gold, torch.tensor([[False, True], [True, True], [True, False]]))
    with pytest.raises(ValueError, match="reduction"):
        crf(em, gold, mask, reduction="avg")
    with pytest.raises(ValueError):
        crf_viterbi(crf, torch.randn(3, 2, 4), mask)


def test_constraints_survive_state_dict_roundtrip():
    a_start, a_trans = allowed_transitions(TAG_SETS[5])
    crf = CRF(5, a_start, a_trans)
    sd = crf.state_dict()
    assert {"allowed_start", "allowed_trans", "transitions"} <= set(sd)
    fresh = CRF(5)  # rebuilt without constraints: loading restores them exactly
    fresh.load_state_dict(sd)
    assert (
        fresh.allowed_trans.tolist() == a_trans.tolist() and fresh.allowed_start.tolist() == a_start.tolist()
    )
    em = torch.randn(2, 4, 5, generator=torch.Generator().manual_seed(10))
    assert crf_viterbi(fresh, em, _mask([4, 3], 4)) == crf_viterbi(crf, em, _mask([4, 3], 4))
    assert math.isfinite(fresh(em, torch.zeros(2, 4, dtype=torch.long), _mask([4, 3], 4)).item())


def test_loss_leaves_out_the_constant_of_forbidden_gold_steps():
    """A gold path the constraints forbid (an orphan ``I-x``, or a ``<unk>`` tag unseen in training) would
    add 1e4 per forbidden step to the loss; the loss leaves that constant out, with the same gradients."""
    tags = TAG_SETS[5]  # O B-a I-a B-b I-b
    crf = _make_crf(tags, constrained=True, seed=11)
    mask = _mask([3, 3, 2, 0], 3)
    gold = torch.tensor([[1, 2, 0], [0, 2, 4], [2, 0, -100], [-100, -100, -100]])
    # row 0 allowed; row 1: O->I-a and I-a->I-b; row 2: starts with I-a; row 3 empty
    assert crf.forbidden_steps(gold, mask).tolist() == [0, 2, 1, 0]
    em = torch.randn(
        4, 3, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(12), requires_grad=True
    )
    ll = crf.log_likelihood(em, gold, mask)
    assert ll[1].item() < -2e4 + 100 and ll[2].item() < -1e4 + 100  # the exact log-probability keeps them
    nll = crf(em, gold, mask, reduction="none")
    torch.testing.assert_close(nll, -ll - torch.tensor([0.0, 2e4, 1e4, 0.0], dtype=torch.float64))
    assert 0 < nll[1].item() < 50 and 0 < nll[2].item() < 50
    (g_loss,) = torch.autograd.grad(nll.sum(), em, retain_graph=True)
    (g_ll,) = torch.autograd.grad(-ll.sum(), em)
    torch.testing.assert_close(g_loss, g_ll)
    torch.testing.assert_close(crf(em, gold, mask), nll.sum() / 3)
    assert crf.forbidden_steps(gold[:, :0], mask[:, :0]).tolist() == [0, 0, 0, 0]
