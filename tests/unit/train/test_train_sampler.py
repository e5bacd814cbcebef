"""Tests for the length-grouped batch sampler (every index once per epoch, similar lengths per batch)."""

from __future__ import annotations

import math

import pytest
import torch

from whisper_tune.errors import UserError
from whisper_tune.train.sampler import LengthBucketSampler


@pytest.mark.parametrize(("n", "bs", "mult"), [(103, 8, 3), (64, 8, 50), (5, 8, 1), (1, 1, 1), (250, 16, 2)])
def test_length_bucket_sampler_covers_every_index_once(n, bs, mult):
    lengths = [float((i * 7919) % 31) for i in range(n)]
    s = LengthBucketSampler(lengths, bs, bucket_multiplier=mult, seed=3)
    order = list(s)
    assert sorted(order) == list(range(n))
    assert len(s) == n
    batches = s.batches()
    assert all(len(b) == bs for b in batches[:-1])
    assert 0 < len(batches[-1]) <= bs
    s.set_epoch(1)
    assert sorted(s) == list(range(n))


def test_length_bucket_sampler_groups_lengths_and_reshuffles():
    lengths = [float(i % 40) for i in range(400)]
    s = LengthBucketSampler(lengths, 10, bucket_multiplier=40, seed=0)
    batches = s.batches()
    spread = [max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches]
    assert max(spread) <= 1.0  # one chunk holds everything: batches are near-uniform
    assert max(lengths[i] for i in batches[0]) == 39.0  # the longest batch comes first
    s.set_epoch(1)
    assert s.batches() != batches
    random_spread = sum(
        max(lengths[i] for i in range(k, 400, 40)) - min(lengths[i] for i in range(k, 400, 40))
        for k in range(10)
    )
    assert sum(spread) < random_spread or random_spread == 0


def test_length_bucket_sampler_partial_batch_last_with_dataloader():
    lengths = [float(i) for i in range(23)]
    s = LengthBucketSampler(lengths, 5, bucket_multiplier=2, seed=1)
    loader = torch.utils.data.DataLoader(list(range(23)), batch_size=5, sampler=s, drop_last=True)
    seen = [int(i) for b in loader for i in b]
    assert len(seen) == 20 and len(set(seen)) == 20
    leftover = set(range(23)) - set(seen)
    assert leftover == set(s.batches()[-1])


def test_length_bucket_sampler_unshuffled_is_sorted_and_validation():
    s = LengthBucketSampler([3.0, 1.0, 2.0], 2, shuffle=False)
    assert list(s) == [0, 2, 1]
    with pytest.raises(UserError, match="batch size"):
        LengthBucketSampler([1.0], 0)
    with pytest.raises(UserError, match="item 1"):
        LengthBucketSampler([1.0, math.nan], 2)
