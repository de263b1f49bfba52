"""Batch samplers that know about sequence length and about DDP ranks.

Why our own instead of ``transformers``' ``LengthGroupedSampler`` wrapped by Lightning's
``DistributedSamplerWrapper``: the wrapper deals out *indices* round-robin, so a rank's batches are
re-formed from every N-th index and the epoch's last batch is padded with repeated samples. Here each
rank gets whole, distinct, length-bucketed batches, the same number on every rank (training), and
evaluation shards are never padded with repeats (so a test-set number counts every utterance once).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler


class BucketBatchSampler(Sampler[list[int]]):
    """Shuffled batches of utterances of similar length, reproducible from ``seed`` and the epoch.

    Each epoch: shuffle all indices, cut them into pools of ``batch_size * pool_batches``, sort each pool
    by length, cut pools into batches, shuffle the batches. Every rank computes the same batch list and
    takes every ``num_replicas``-th batch; the list is truncated (``drop_last``) or cycled so that every
    rank gets the same number of batches, which DDP needs to stay in step.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        shuffle: bool = True,
        bucket: bool = True,
        seed: int = 0,
        pool_batches: int = 50,
        drop_last: bool = False,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is not in [0, {num_replicas})")
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.bucket = bucket
        self.seed = seed
        self.pool_batches = pool_batches
        self.drop_last = drop_last
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of each epoch so every epoch has its own order."""
        self.epoch = epoch

    def _all_batches(self) -> list[list[int]]:
        rng = random.Random(self.seed + self.epoch)
        order = list(range(len(self.lengths)))
        if self.shuffle:
            rng.shuffle(order)
        if self.bucket and order:
            # Each pool sorted by length, stably: one stable numpy sort on (pool, length) gives exactly the
            # order of sorting each pool with sorted(), without a Python call per utterance.
            pool = self.batch_size * self.pool_batches
            shuffled = np.asarray(order, dtype=np.int64)
            pools = np.arange(len(shuffled), dtype=np.int64) // pool
            key = pools * (int(self.lengths.max()) + 1) + self.lengths[shuffled]
            order = shuffled[np.argsort(key, kind="stable")].tolist()
        batches = [order[s : s + self.batch_size] for s in range(0, len(order), self.batch_size)]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        if self.shuffle:
            rng.shuffle(batches)
        return batches

    def __len__(self) -> int:
        n = (
            len(self.lengths) // self.batch_size
            if self.drop_last
            else math.ceil(len(self.lengths) / self.batch_size)
        )
        return n // self.num_replicas if self.drop_last else math.ceil(n / self.num_replicas)

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._all_batches()
        if not batches:
            return iter(())
        per_rank = len(self)
        total = per_rank * self.num_replicas
        if total > len(batches):  # cycle a few batches so every rank gets as many (training only)
            batches = batches + batches[: total - len(batches)]
        return iter(batches[self.rank : total : self.num_replicas])


class EvalBatchSampler(Sampler[list[int]]):
    """Deterministic evaluation batches: each rank takes a contiguous, unpadded shard of the indices.

    With ``sort_by_length`` the shard is batched in length order (less padding, same results: metrics
    are sums over utterances and predictions carry their original index).
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        sort_by_length: bool = True,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        n = len(lengths)
        lo, hi = n * rank // num_replicas, n * (rank + 1) // num_replicas
        shard = list(range(lo, hi))
        if sort_by_length:
            shard.sort(key=lambda i: lengths[i])
        self.batches = [shard[s : s + batch_size] for s in range(0, len(shard), batch_size)]

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)
