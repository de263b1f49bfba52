"""A linear-chain CRF's whole distribution over one utterance's tag sequences, as a distillation target.

A CRF teacher's per-word emission scores are not its prediction: what it predicts is ``p(y | x)``, a
distribution over whole tag sequences that its transitions shape as much as its emissions. A CRF student can
learn that distribution exactly: ``KL(p_T || p_S) = log Z_S - E_T[score_S(y)] - H(p_T)``, and a linear-chain
score is a sum over words and word pairs, so ``E_T[score_S(y)]`` needs only the teacher's posterior marginals
of single words (``unary [n, T]``) and of neighbouring pairs, summed over positions (``pairs``, how many times
the teacher expects each transition ``i -> j``), and ``H(p_T)`` is one number. That is "structure-level"
distillation (Wang et al. 2020, "Structure-Level Knowledge Distillation for Multilingual Sequence
Labeling"), in its exact form; :func:`chatft.training.distill.crf_kl` is the student's side.

Computed here once per training utterance, in float64 log space (the forward-backward of the decoder's
marginals, :func:`chatft.core.decoding.crf_forward_backward`), from the teacher's masked scores (forbidden steps at
:data:`~chatft.core.tags.FORBIDDEN_SCORE`, as its decoder uses them). Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chatft.core.decoding import crf_forward_backward

#: Summed pairwise marginals below this are not kept (a few dozen of ATIS's 120 x 120 transitions carry
#: the mass of an utterance; the dropped mass changes the KL by less than 1e-4).
PAIR_THRESHOLD = 1e-6


@dataclass(frozen=True)
class CrfTarget:
    """One utterance's teacher distribution, as the statistics a CRF student's KL to it needs.

    ``unary[t, j] = p(y_t = j | x)`` ``[n, T]``; ``pair_from``, ``pair_to``, ``pair_mass``: the transitions
    ``i -> j`` with ``sum_t p(y_t = i, y_t+1 = j | x) >= PAIR_THRESHOLD`` and that expected count; ``entropy``:
    ``H(p(y | x))`` in nats, so that the KL of a student equal to the teacher is 0.
    """

    unary: np.ndarray
    pair_from: np.ndarray
    pair_to: np.ndarray
    pair_mass: np.ndarray
    entropy: float

    @property
    def n_words(self) -> int:
        return int(self.unary.shape[0])


def crf_target(
    emissions: np.ndarray,
    start: np.ndarray,
    trans: np.ndarray,
    end: np.ndarray,
    threshold: float = PAIR_THRESHOLD,
) -> CrfTarget:
    """The :class:`CrfTarget` of one utterance's emissions ``[n, T]`` (n >= 1) under a CRF's masked ``start
    [T]``, ``trans [T, T]`` and ``end [T]`` scores (a :class:`~chatft.core.decoding.SlotDecoder`'s)."""
    em = np.asarray(emissions, dtype=np.float64)
    start, trans, end = (np.asarray(a, dtype=np.float64) for a in (start, trans, end))
    n, n_tags = em.shape
    if n == 0:
        raise ValueError("crf_target needs at least one word")
    alpha, beta, log_z = crf_forward_backward(em, start, trans, end)
    unary = np.exp(alpha + beta - log_z)
    pairs = np.zeros((n_tags, n_tags))
    for t in range(1, n):
        pairs += np.exp(alpha[t - 1][:, None] + trans + (em[t] + beta[t])[None, :] - log_z)
    # E[score(y)] under the CRF itself; products with forbidden scores are 0 * -1e4 (their mass underflows).
    expected = (unary * em).sum() + unary[0] @ start + unary[-1] @ end + (pairs * trans).sum()
    keep_from, keep_to = np.nonzero(pairs >= threshold)
    return CrfTarget(
        unary=unary.astype(np.float32),
        pair_from=keep_from.astype(np.int64),
        pair_to=keep_to.astype(np.int64),
        pair_mass=pairs[keep_from, keep_to].astype(np.float32),
        entropy=max(0.0, float(log_z - expected)),
    )
