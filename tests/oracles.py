"""Reference decoders the tests compare the package's decoding with (test-only; the package never runs them).

* :func:`viterbi_decode` / :func:`crf_viterbi`: Viterbi in torch, batch-vectorised, over the same masked scores
  the CRF trains with (:mod:`chatft.model.crf`); the numpy decoder (:class:`chatft.core.decoding.SlotDecoder`)
  must give the same paths.
* :func:`slot_decode`, :func:`slot_word_probabilities`, :func:`slot_confidences`: a :class:`SlotDecoder` run on
  one utterance at a time (the per-utterance loop the batched :meth:`SlotDecoder.decode_batch` and
  :meth:`SlotDecoder.probabilities_batch` replaced), with a per-utterance numpy Viterbi.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from chatft.core.decoding import SlotDecoder, _crf_marginals_batch, log_softmax, softmax
from chatft.core.tags import exclude_unk

if TYPE_CHECKING:  # torch is imported by the torch oracles only: the numpy ones stay torch-free
    from torch import Tensor

    from chatft.model.crf import CRF


# ---- torch -------------------------------------------------------------------------------------------
def _torch_viterbi(
    emissions: Tensor, mask: Tensor, start: Tensor, trans: Tensor, end: Tensor
) -> list[list[int]]:
    """Core Viterbi on already-validated, already-masked float inputs. Batch-vectorised."""
    import torch

    batch, words, _ = emissions.shape
    lengths = mask.sum(dim=1)
    if words == 0:
        return [[] for _ in range(batch)]
    score = start + emissions[:, 0]  # [B, T]
    history: list[Tensor] = []  # history[t-1][b, j] = best previous tag for tag j at position t
    for t in range(1, words):
        best, idx = (score.unsqueeze(2) + trans.unsqueeze(0)).max(dim=1)  # max over previous tag
        score = torch.where(mask[:, t : t + 1], best + emissions[:, t], score)
        history.append(idx)
    last = (score + end).argmax(dim=1)  # [B] best tag at position len-1

    # Vectorised backtrace: `cur` is (re)seeded at t == len-1 and followed back from there.
    paths = torch.zeros(batch, words, dtype=torch.long, device=emissions.device)
    cur = last
    for t in range(words - 1, -1, -1):
        cur = torch.where(lengths - 1 == t, last, cur)
        paths[:, t] = cur
        if t > 0:
            cur = history[t - 1].gather(1, cur.unsqueeze(1)).squeeze(1)
    paths_list = paths.tolist()
    return [row[:n] for row, n in zip(paths_list, lengths.tolist(), strict=True)]


def viterbi_decode(
    emissions: Tensor,
    mask: Tensor,
    transitions: Tensor | None = None,
    start: Tensor | None = None,
    end: Tensor | None = None,
    allowed_start: Tensor | np.ndarray | None = None,
    allowed_trans: Tensor | np.ndarray | None = None,
) -> list[list[int]]:
    """Best tag path per sequence; each path has as many tags as its mask has True entries.

    ``transitions [T, T]`` scores i -> j, ``start``/``end [T]`` score the first/last tag; None means zeros.
    ``allowed_*`` (bool) forbid starts/transitions by replacing their score with ``FORBIDDEN_SCORE`` (finite,
    so a path always exists even under over-restrictive constraints). With emissions = log-softmax and no
    transitions it is the BIO-constrained softmax decoding.
    """
    import torch

    from chatft.model.crf import _check_inputs, _compute_dtype, _masked_scores

    with torch.no_grad():
        mask = _check_inputs(emissions, mask)
        dtype = _compute_dtype(emissions, transitions, start, end)
        num_tags = emissions.shape[2]
        start_s, trans_s, end_s = _masked_scores(
            num_tags, dtype, emissions.device, transitions, start, end, allowed_start, allowed_trans
        )
        em = torch.where(mask.unsqueeze(2), emissions.to(dtype), 0.0)
        return _torch_viterbi(em, mask, start_s, trans_s, end_s)


def crf_viterbi(crf: CRF, emissions: Tensor, mask: Tensor) -> list[list[int]]:
    """Viterbi with a CRF's learned scores and stored constraints (no autograd)."""
    import torch

    from chatft.model.crf import _check_inputs, _compute_dtype

    with torch.no_grad():
        mask = _check_inputs(emissions, mask, crf.num_tags)
        dtype = _compute_dtype(emissions, crf.transitions)
        start, trans, end = crf.masked_scores(dtype, emissions.device)
        em = torch.where(mask.unsqueeze(2), emissions.to(dtype), 0.0)
        return _torch_viterbi(em, mask, start, trans, end)


# ---- numpy, one utterance at a time ------------------------------------------------------------------
def _numpy_viterbi(em: np.ndarray, start: np.ndarray, trans: np.ndarray, end: np.ndarray) -> list[int]:
    """Best path of one utterance (first index wins ties, like ``torch.max`` on CPU)."""
    score = start + em[0]
    history = []
    for t in range(1, em.shape[0]):
        cand = score[:, None] + trans  # [prev, next]
        idx = cand.argmax(0)
        score = cand[idx, np.arange(cand.shape[1])] + em[t]
        history.append(idx)
    best = int((score + end).argmax())
    path = [best]
    for idx in reversed(history):
        best = int(idx[best])
        path.append(best)
    return path[::-1]


def slot_decode(decoder: SlotDecoder, emissions: np.ndarray) -> list[int]:
    """The tag path of one utterance's emissions ``[W, T]``."""
    em = np.asarray(emissions, dtype=np.float64)
    if em.shape[0] == 0:
        return []
    if decoder.mode == "softmax":
        return exclude_unk(em.copy()).argmax(-1).tolist()
    if decoder.mode == "softmax_bio":
        em = log_softmax(em)
    return _numpy_viterbi(em, decoder.start, decoder.trans, decoder.end)


def slot_word_probabilities(decoder: SlotDecoder, emissions: np.ndarray) -> np.ndarray:
    """``[W, T]``: softmax over tags (``<unk>`` excluded), or CRF posterior marginals."""
    em = np.asarray(emissions, dtype=np.float64)
    if decoder.mode == "crf":
        # The batched forward-backward on a batch of one: its rounding (equal to the log-space
        # _crf_marginals within 1e-12, tests/test_results.py) so batch == one by one holds bitwise.
        return _crf_marginals_batch(em[None], np.array([len(em)]), decoder.start, decoder.trans, decoder.end)[
            0
        ]
    return softmax(exclude_unk(em.copy()))


def slot_confidences(decoder: SlotDecoder, emissions: np.ndarray, path: Sequence[int]) -> list[float]:
    """Probability of each chosen tag of one utterance."""
    if not len(path):
        return []
    probs = slot_word_probabilities(decoder, np.asarray(emissions)[: len(path)])
    return [float(probs[i, t]) for i, t in enumerate(path)]
