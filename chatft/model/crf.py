"""Word-level, masked linear-chain CRF (training loss), in plain torch.

Decoding (Viterbi over the learned, masked scores) runs in numpy, outside the model
(:class:`chatft.core.decoding.SlotDecoder`, built by :func:`chatft.model.decoding.slot_decoder_of`); the torch
Viterbi the tests compare it with lives in ``tests/oracles.py``.

Why our own instead of ``pytorch-crf``: that package is unmaintained and scores every position it is
given. Here the CRF runs over *word* positions: the model gathers each word's first sub-word into an
emission tensor ``[B, W, T]`` and a boolean ``mask [B, W]`` marks the real words. The mask must be a
left-aligned prefix (True for the first ``n_b`` words, False after); ``n_b`` may be 0, in which case the
log-likelihood is 0. Padded positions are never scored: their emissions are
replaced by zeros before any arithmetic (so even NaN/inf padding cannot leak into values or gradients) and
their tags are never used as indices.

Design choices:

* Everything is vectorised over the batch and the tags; the only Python loop is over word positions
  (the forward algorithm is inherently sequential in time).
* Computation happens in at least float32: bf16/fp16 emissions are upcast (log-sum-exp over paths in
  bf16 is far too coarse); float64 inputs stay float64, which the tests use for exact checks.
* Constraints (e.g. BIO: ``I-x`` only after ``B-x``/``I-x``, from
  :func:`chatft.core.tags.decoding_transitions`) are boolean masks (tensors or numpy arrays). A forbidden
  start or transition gets the *finite* score :data:`~chatft.core.tags.FORBIDDEN_SCORE` (-1e4) instead of
  its learned score,
  rather than ``-inf``, because:

  - real data sometimes contains gold sequences that violate the scheme (``I-x`` after ``O``); with
    ``-inf`` their log-likelihood would be ``-inf`` and the loss NaN/inf. With a constant -1e4 such a
    sequence gets a large but finite loss, and because the penalty is a constant (the learned parameter
    at that entry is *replaced*, not added to) it contributes no gradient: the rest of the sequence still
    trains normally. The reported loss value is then offset by ~1e4 per violation; repairing the data
    (``O I-x`` -> ``O B-x``) upstream is the better fix.
  - a path always exists, so decoding degrades gracefully even if a caller forbids every transition
    out of some state (Viterbi then picks the least-violating path instead of returning garbage).

  The same masked scores are used for the gold score, the log-partition and Viterbi, so training and
  decoding optimise the same distribution (forbidden paths carry ~exp(-1e4) = 0 probability mass).
* The loss (:meth:`CRF.forward`) leaves those constants out: each forbidden step of a gold path would add
  1e4 to its negative log-likelihood, and one such sequence in a validation set of 500 adds 20 to the mean.
  That happens without any annotation error: a dev or test tag unseen in training maps to ``<unk>``, which
  nothing may start with or move to (ATIS dev has one, ``I-return_date.day_number``, and its CRF validation
  loss read ~20.6 instead of ~0.6). A constant has no gradient, so training is unchanged; only the logged
  loss becomes comparable across runs and with the cross-entropy models. :meth:`CRF.log_likelihood` stays the
  exact log-probability.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from chatft.core.tags import FORBIDDEN_SCORE

__all__ = ["CRF"]


def _compute_dtype(*tensors: Tensor | None) -> torch.dtype:
    """At least float32 (bf16/fp16 are too coarse for log-sum-exp over paths); float64 stays float64."""
    dtype = torch.float32
    for t in tensors:
        if t is not None and t.is_floating_point():
            dtype = torch.promote_types(dtype, t.dtype)
    return dtype


def _check_inputs(emissions: Tensor, mask: Tensor, num_tags: int | None = None) -> Tensor:
    """Validate shapes and the left-aligned-prefix mask; return the mask as bool."""
    if emissions.dim() != 3:
        raise ValueError(f"emissions must be [B, W, T], got shape {tuple(emissions.shape)}")
    if mask.shape != emissions.shape[:2]:
        raise ValueError(f"mask shape {tuple(mask.shape)} != emissions[:2] {tuple(emissions.shape[:2])}")
    if num_tags is not None and emissions.shape[2] != num_tags:
        raise ValueError(f"emissions have {emissions.shape[2]} tags, expected {num_tags}")
    mask = mask.to(device=emissions.device, dtype=torch.bool)
    # A True after a False would make "length" ambiguous and break the gold-score/backtrace shortcuts.
    if mask.shape[1] > 1 and bool((mask[:, 1:] & ~mask[:, :-1]).any()):
        raise ValueError("mask must be a left-aligned prefix (True for the first n words, False after)")
    return mask


def _masked_scores(
    num_tags: int,
    dtype: torch.dtype,
    device: torch.device,
    transitions: Tensor | None,
    start: Tensor | None,
    end: Tensor | None,
    allowed_start: Tensor | np.ndarray | None,
    allowed_trans: Tensor | np.ndarray | None,
) -> tuple[Tensor, Tensor, Tensor]:
    """(start [T], transitions [T, T], end [T]) in ``dtype`` with forbidden entries set to FORBIDDEN_SCORE.

    ``torch.where`` *replaces* the learned score, so forbidden entries are constant (zero gradient).
    """

    def prep(x: Tensor | None, shape: tuple[int, ...]) -> Tensor:
        if x is None:
            return torch.zeros(shape, dtype=dtype, device=device)
        if tuple(x.shape) != shape:
            raise ValueError(f"expected shape {shape}, got {tuple(x.shape)}")
        return x.to(device=device, dtype=dtype)

    start_s = prep(start, (num_tags,))
    trans_s = prep(transitions, (num_tags, num_tags))
    end_s = prep(end, (num_tags,))
    for name, allowed, shape in (
        ("allowed_start", allowed_start, (num_tags,)),
        ("allowed_trans", allowed_trans, (num_tags, num_tags)),
    ):
        if allowed is not None and tuple(allowed.shape) != shape:
            raise ValueError(f"{name}: expected shape {shape}, got {tuple(allowed.shape)}")
    if allowed_start is not None:
        ok = torch.as_tensor(allowed_start, dtype=torch.bool, device=device)
        start_s = torch.where(ok, start_s, torch.full_like(start_s, FORBIDDEN_SCORE))
    if allowed_trans is not None:
        ok = torch.as_tensor(allowed_trans, dtype=torch.bool, device=device)
        trans_s = torch.where(ok, trans_s, torch.full_like(trans_s, FORBIDDEN_SCORE))
    return start_s, trans_s, end_s


def _log_partition(em: Tensor, mask: Tensor, start: Tensor, trans: Tensor, end: Tensor) -> Tensor:
    """The forward algorithm over masked emissions ``[B, W, T]`` (W >= 1): ``log Z`` per sequence; padded steps
    carry alpha through unchanged."""
    alpha = start + em[:, 0]  # [B, T]
    for t in range(1, em.size(1)):
        nxt = torch.logsumexp(alpha.unsqueeze(2) + trans.unsqueeze(0), dim=1) + em[:, t]
        alpha = torch.where(mask[:, t : t + 1], nxt, alpha)
    return torch.logsumexp(alpha + end, dim=1)


class CRF(nn.Module):
    """Linear-chain CRF over word positions with optional hard-ish (finite-penalty) constraints.

    Parameters ``start_transitions [T]``, ``end_transitions [T]``, ``transitions [T, T]`` are initialised
    uniform(-0.1, 0.1). The constraint masks are stored as *persistent* buffers (``allowed_start``,
    ``allowed_trans``; all True when not given) so a checkpoint reload reproduces decoding exactly even if
    the module is rebuilt without passing the constraints. Forbidden entries are excluded in training too
    (gold score and log-partition use the masked scores), so training and decoding agree.
    """

    def __init__(
        self,
        num_tags: int,
        allowed_start: Tensor | np.ndarray | None = None,
        allowed_trans: Tensor | np.ndarray | None = None,
    ):
        super().__init__()
        if num_tags < 1:
            raise ValueError(f"num_tags must be >= 1, got {num_tags}")
        self.num_tags = num_tags
        self.start_transitions = nn.Parameter(torch.empty(num_tags))
        self.end_transitions = nn.Parameter(torch.empty(num_tags))
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags))
        a_start = (
            torch.ones(num_tags, dtype=torch.bool)
            if allowed_start is None
            else torch.as_tensor(allowed_start, dtype=torch.bool)
        )
        a_trans = (
            torch.ones(num_tags, num_tags, dtype=torch.bool)
            if allowed_trans is None
            else torch.as_tensor(allowed_trans, dtype=torch.bool)
        )
        if a_start.shape != (num_tags,) or a_trans.shape != (num_tags, num_tags):
            raise ValueError("allowed_start must be [T] and allowed_trans [T, T]")
        self.register_buffer("allowed_start", a_start.clone(), persistent=True)
        self.register_buffer("allowed_trans", a_trans.clone(), persistent=True)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for p in (self.start_transitions, self.end_transitions, self.transitions):
            nn.init.uniform_(p, -0.1, 0.1)

    def extra_repr(self) -> str:
        return f"num_tags={self.num_tags}"

    def masked_scores(self, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
        """``(start [T], transitions [T, T], end [T])`` as every path score uses them: learned where allowed,
        the constant :data:`~chatft.core.tags.FORBIDDEN_SCORE` where forbidden."""
        return _masked_scores(
            self.num_tags,
            dtype,
            device,
            self.transitions,
            self.start_transitions,
            self.end_transitions,
            self.allowed_start,
            self.allowed_trans,
        )

    def _prepared(self, emissions: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Checked inputs in the compute dtype: ``(mask, emissions with padding zeroed, start, trans, end)``."""
        mask = _check_inputs(emissions, mask, self.num_tags)
        dtype = _compute_dtype(emissions, self.transitions)
        start, trans, end = self.masked_scores(dtype, emissions.device)
        em = torch.where(mask.unsqueeze(2), emissions.to(dtype), 0.0)
        return mask, em, start, trans, end

    def log_likelihood(self, emissions: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        """Exact ``log p(tags | emissions)`` per sequence, shape [B], dtype >= float32.

        Padded positions are ignored entirely; their tags may hold anything (e.g. -100) because they are
        replaced by 0 before being used as indices. Rows with no words get 0.
        """
        mask, em, start, trans, end = self._prepared(emissions, mask)
        if tags.shape != mask.shape:
            raise ValueError(f"tags shape {tuple(tags.shape)} != mask shape {tuple(mask.shape)}")
        if em.size(1) == 0:
            return em.new_zeros(em.size(0))
        tags = torch.where(mask, tags.to(device=emissions.device, dtype=torch.long), 0)
        lengths = mask.sum(dim=1)
        nonempty = lengths > 0

        # Gold path score: no loop needed because the mask is a prefix.
        gold = start[tags[:, 0]]
        gold = gold + (em.gather(2, tags.unsqueeze(2)).squeeze(2) * mask).sum(dim=1)
        gold = gold + (trans[tags[:, :-1], tags[:, 1:]] * mask[:, 1:]).sum(dim=1)
        last_tag = tags.gather(1, (lengths - 1).clamp(min=0).unsqueeze(1)).squeeze(1)
        gold = gold + end[last_tag]

        log_z = _log_partition(em, mask, start, trans, end)
        return torch.where(nonempty, gold - log_z, torch.zeros_like(log_z))

    def log_partition(self, emissions: Tensor, mask: Tensor) -> Tensor:
        """``log Z`` per sequence ``[B]`` (dtype >= float32; 0 for rows with no words), differentiable: the
        normaliser of :meth:`log_likelihood`, also the student's side of CRF-to-CRF distillation."""
        mask, em, start, trans, end = self._prepared(emissions, mask)
        if em.size(1) == 0:
            return em.new_zeros(em.size(0))
        log_z = _log_partition(em, mask, start, trans, end)
        return torch.where(mask.any(dim=1), log_z, torch.zeros_like(log_z))

    def forbidden_steps(self, tags: Tensor, mask: Tensor) -> Tensor:
        """How many forbidden starts and transitions each gold path takes, shape [B] (long).

        Zero for any path the constraints allow; an orphan ``I-x`` or a ``<unk>`` gold tag counts one each
        (the step into it). Padded positions are never looked at.
        """
        mask = mask.to(device=tags.device, dtype=torch.bool)
        if tags.shape != mask.shape:
            raise ValueError(f"tags shape {tuple(tags.shape)} != mask shape {tuple(mask.shape)}")
        if mask.shape[1] == 0:
            return torch.zeros(mask.shape[0], dtype=torch.long, device=tags.device)
        tags = torch.where(mask, tags.to(torch.long), 0)
        steps = (~self.allowed_start[tags[:, 0]] & mask[:, 0]).long()
        return steps + (~self.allowed_trans[tags[:, :-1], tags[:, 1:]] & mask[:, 1:]).long().sum(dim=1)

    def forward(self, emissions: Tensor, tags: Tensor, mask: Tensor, reduction: str = "mean") -> Tensor:
        """The training loss: negative log-likelihood without the constant penalties of forbidden gold steps.

        For a gold path the constraints allow this is exactly ``-log_likelihood``; each forbidden step of
        one that breaks them (a ``<unk>`` or orphan gold tag) would add 1e4 that no parameter can change, so
        it is left out (the module docstring says why; the gradients are the same). ``"mean"`` averages over
        sequences with >= 1 word (0 if none), ``"sum"`` sums, ``"none"`` returns [B].
        """
        ll = self.log_likelihood(emissions, tags, mask)
        nll = -ll + FORBIDDEN_SCORE * self.forbidden_steps(tags.to(ll.device), mask.to(ll.device)).to(
            ll.dtype
        )
        if reduction == "none":
            return nll
        if reduction == "sum":
            return nll.sum()
        if reduction == "mean":
            n = mask.to(torch.bool).any(dim=1).sum().clamp(min=1)
            return nll.sum() / n.to(nll.dtype)
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
