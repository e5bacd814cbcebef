"""Timestamped training labels (data.timestamp_share)."""

from __future__ import annotations

import pytest

from whisper_tune.data import timestamps
from whisper_tune.models.random_init import make_processor


@pytest.fixture(scope="module")
def tok():
    return make_processor().tokenizer


def test_labels_get_start_and_end_times(tok):
    labels = tok("Hello there.").input_ids
    out = timestamps.timestamp_labels(labels, tok, 1.234)
    assert tok.decode(out, decode_with_timestamps=True) == (
        "<|startoftranscript|><|0.00|>Hello there.<|1.24|><|endoftext|>"
    )
    assert timestamps.is_timestamped(out, tok) and not timestamps.is_timestamped(labels, tok)
    assert timestamps.timestamp_labels(out, tok, 2.0) == out  # already timestamped: unchanged
    capped = timestamps.timestamp_labels(labels, tok, 45.0)
    assert "<|30.00|>" in tok.decode(capped, decode_with_timestamps=True)


def test_pick_is_stable_and_close_to_the_share():
    ids = [f"clip-{i}" for i in range(2000)]
    chosen = [i for i in ids if timestamps.pick(i, 0.3)]
    assert chosen == [i for i in ids if timestamps.pick(i, 0.3)]
    assert 0.26 < len(chosen) / len(ids) < 0.34
    assert not any(timestamps.pick(i, 0.0) for i in ids[:50])
    assert all(timestamps.pick(i, 1.0) for i in ids[:50])
