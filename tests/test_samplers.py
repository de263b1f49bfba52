"""Length-bucketed training batches and unpadded evaluation shards, with and without DDP ranks."""

from __future__ import annotations

import random

from chatft.training.samplers import BucketBatchSampler, EvalBatchSampler


def _lengths(n=103, seed=0):
    rng = random.Random(seed)
    return [rng.randint(3, 50) for _ in range(n)]


def test_bucket_sampler_covers_every_index_once_and_groups_lengths():
    lengths = _lengths()
    sampler = BucketBatchSampler(lengths, batch_size=8, seed=1, pool_batches=100)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 13
    assert sorted(i for b in batches for i in b) == list(range(103))
    # One pool holds everything: each batch is a contiguous run of the length-sorted order.
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches)
    random_spread = sum(
        max(lengths[i] for i in b) - min(lengths[i] for i in b)
        for b in BucketBatchSampler(lengths, batch_size=8, seed=1, bucket=False)
    )
    assert spread < random_spread / 4


def test_bucket_sampler_is_reproducible_and_changes_per_epoch():
    a = BucketBatchSampler(_lengths(), batch_size=8, seed=3)
    b = BucketBatchSampler(_lengths(), batch_size=8, seed=3)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first


def test_bucket_sampler_ranks_get_distinct_batches_of_equal_count():
    lengths = _lengths()
    ranks = [BucketBatchSampler(lengths, 8, seed=5, num_replicas=2, rank=r) for r in range(2)]
    per_rank = [list(s) for s in ranks]
    assert len(per_rank[0]) == len(per_rank[1]) == len(ranks[0]) == 7
    # 13 batches dealt to 2 ranks: the 14th is a repeat of the first, everything else is distinct.
    seen = [tuple(b) for r in per_rank for b in r]
    assert len(set(seen)) == 13
    assert sorted({i for b in seen for i in b}) == list(range(103))


def test_eval_sampler_shards_without_repeats():
    lengths = _lengths(23)
    shards = [list(EvalBatchSampler(lengths, 4, num_replicas=2, rank=r)) for r in range(2)]
    flat = [i for s in shards for b in s for i in b]
    assert sorted(flat) == list(range(23))  # 23 is odd: no index repeated to even the shards out
    assert [len(b) for b in shards[0]] == [4, 4, 3] and [len(b) for b in shards[1]] == [4, 4, 4]
    for shard in shards:
        order = [i for b in shard for i in b]
        assert [lengths[i] for i in order] == sorted(lengths[i] for i in order)


def test_datamodule_passes_the_pool_size_and_refuses_zero(tiny_encoder, demo_small):
    import pytest

    from chatft.core.errors import ConfigError
    from chatft.training.datamodule import IntentSlotDataModule

    dm = IntentSlotDataModule(str(demo_small), batch_size=4, tokenizer=tiny_encoder, bucket_pool_batches=1)
    dm.setup("fit")
    batches = list(dm.train_dataloader().batch_sampler)
    expected = list(BucketBatchSampler(dm._lengths("train"), batch_size=4, seed=0, pool_batches=1))
    assert batches == expected
    assert batches != list(BucketBatchSampler(dm._lengths("train"), batch_size=4, seed=0, pool_batches=50))
    with pytest.raises(ConfigError, match="data.bucket_pool_batches must be >= 1, got 0"):
        IntentSlotDataModule(str(demo_small), bucket_pool_batches=0)
