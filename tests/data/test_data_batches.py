"""Splits, statistics, normalisation and batch plans: deterministic and framework-neutral."""

from __future__ import annotations

import numpy as np
import pytest

from cnn.data import BatchPlan, channel_stats, split_train_val


def test_mnist_train_mean_and_std_are_the_published_values(mnist):
    mean, std = channel_stats(mnist.train.images)
    assert round(mean[0], 4) == 0.1307 and round(std[0], 4) == 0.3081


def test_channel_stats_equal_a_float64_reference_per_channel():
    images = np.random.default_rng(0).integers(0, 256, (5000, 5, 3, 3), dtype=np.uint8)
    mean, std = channel_stats(images)
    reference = images.astype(np.float64) / 255.0
    np.testing.assert_allclose(mean, reference.mean(axis=(0, 1, 2)), rtol=1e-12)
    np.testing.assert_allclose(std, reference.std(axis=(0, 1, 2)), rtol=1e-12)
    assert all(isinstance(v, float) for v in mean + std)


def test_split_has_the_right_sizes_is_disjoint_sorted_and_complete():
    train, val = split_train_val(60000, 0.1, seed=7)
    assert len(val) == 6000 and len(train) == 54000
    assert train.dtype == val.dtype == np.int64
    assert np.all(np.diff(train) > 0) and np.all(np.diff(val) > 0)
    assert np.intersect1d(train, val).size == 0
    np.testing.assert_array_equal(np.union1d(train, val), np.arange(60000))


def test_split_depends_only_on_the_seed_and_is_pinned_across_platforms():
    # PCG64 streams are specified bit for bit; these values must never change.
    train, val = split_train_val(10, 0.3, seed=0)
    assert val.tolist() == [2, 4, 6] and train.tolist() == [0, 1, 3, 5, 7, 8, 9]
    assert not np.array_equal(split_train_val(100, 0.2, 1)[1], split_train_val(100, 0.2, 2)[1])


def test_split_without_validation_keeps_everything_for_training():
    train, val = split_train_val(5, 0.0, seed=0)
    assert train.tolist() == [0, 1, 2, 3, 4] and val.size == 0


def test_batch_order_depends_only_on_seed_and_epoch():
    plan = BatchPlan(10, 4, shuffle=True, seed=0)
    batches = plan.indices(0)
    # Pinned: the MLX and PyTorch sides must draw exactly this order for (seed 0, epoch 0).
    assert [b.tolist() for b in batches] == [[4, 6, 2, 7], [3, 5, 9, 0], [8, 1]]
    again = BatchPlan(10, 4, shuffle=True, seed=0).indices(0)
    assert len(again) == len(batches) and all(np.array_equal(a, b) for a, b in zip(batches, again))
    assert not np.array_equal(np.concatenate(plan.indices(1)), np.concatenate(batches))
    assert len(plan) == 3 and all(b.dtype == np.int64 for b in batches)


def test_unshuffled_plan_keeps_file_order():
    assert [b.tolist() for b in BatchPlan(5, 2, shuffle=False).indices(3)] == [[0, 1], [2, 3], [4]]


@pytest.mark.parametrize("n, batch, world, drop_last", [
    (10, 3, 3, False), (10, 3, 3, True), (7, 2, 4, False), (7, 2, 4, True),
    (100, 8, 8, False), (3, 5, 4, False), (3, 5, 4, True), (0, 4, 2, False),
])
def test_every_rank_gets_the_same_number_of_batches_from_disjoint_shards(n, batch, world,
                                                                        drop_last):
    plans = [BatchPlan(n, batch, True, seed=5, drop_last=drop_last, rank=r, world_size=world)
             for r in range(world)]
    per_rank = [plan.indices(2) for plan in plans]
    assert len({len(p) for p in plans}) == 1
    assert len(per_rank) == world and all(len(b) == len(p) for b, p in zip(per_rank, plans))
    shards = [np.concatenate(b) if b else np.zeros(0, np.int64) for b in per_rank]
    positions = np.concatenate(shards)
    if drop_last:
        # Full batches only and no sample twice: the shards are disjoint sets.
        assert all(len(b) == batch for batches in per_rank for b in batches)
        assert len(np.unique(positions)) == len(positions)
    else:
        # Every sample at least once; only the wrap-around padding repeats.
        assert set(positions.tolist()) == set(range(n))
        assert len(positions) == n + (-n) % world


def test_shards_interleave_one_global_order_like_distributed_sampler():
    whole = np.concatenate(BatchPlan(12, 12, True, seed=3).indices(4))
    for rank in range(3):
        shard = np.concatenate(BatchPlan(12, 2, True, seed=3, rank=rank, world_size=3).indices(4))
        np.testing.assert_array_equal(shard, whole[rank::3])


def test_invalid_plans_are_refused():
    with pytest.raises(ValueError):
        BatchPlan(10, 0, True)
    with pytest.raises(ValueError):
        BatchPlan(10, 2, True, rank=2, world_size=2)
