"""Paired (block) bootstrap of a WER difference."""

from __future__ import annotations

import numpy as np
import pytest

from whisper_tune.scoring import paired_bootstrap


def test_clear_improvement_has_ci_below_zero_and_poi_near_one():
    rng = np.random.default_rng(1)
    words = rng.integers(5, 15, size=200)
    base = rng.binomial(words, 0.30)
    tuned = rng.binomial(words, 0.10)
    r = paired_bootstrap(base, tuned, words, replicates=1000, seed=3)
    assert r.base_wer == pytest.approx(base.sum() / words.sum())
    assert r.tuned_wer == pytest.approx(tuned.sum() / words.sum())
    assert r.diff_low < r.diff < r.diff_high < 0
    assert r.prob_improvement > 0.99 and r.significant
    assert r.rel_low is not None and r.rel_high is not None and r.rel_low < r.rel_diff < r.rel_high < 0
    assert "95 % CI" in r.summary() and "P(improvement)" in r.summary()


def test_no_difference_straddles_zero_and_is_deterministic():
    rng = np.random.default_rng(2)
    words = rng.integers(5, 15, size=150)
    base = rng.binomial(words, 0.2)
    tuned = base.copy()
    swap = rng.choice(150, size=20, replace=False)
    tuned[swap[:10]] += 1
    tuned[swap[10:]] = np.maximum(tuned[swap[10:]] - 1, 0)
    a = paired_bootstrap(base, tuned, words, replicates=500, seed=7)
    b = paired_bootstrap(base, tuned, words, replicates=500, seed=7)
    assert a == b
    assert a.diff_low < 0 < a.diff_high and not a.significant
    assert 0.05 < a.prob_improvement < 0.95


def test_groups_resample_whole_speakers_and_widen_the_interval():
    # Two speakers carry all the gain: the utterance bootstrap is over-confident.
    words = np.full(100, 10)
    base = np.full(100, 3)
    tuned = np.full(100, 3)
    groups = [f"spk{i % 10}" for i in range(100)]
    for i in range(100):
        if groups[i] in ("spk0", "spk1"):
            tuned[i] = 0
    per_utt = paired_bootstrap(base, tuned, words, replicates=1000, seed=0)
    per_spk = paired_bootstrap(
        base, tuned, words, groups=groups, group_field="speaker", replicates=1000, seed=0
    )
    assert per_spk.units == 10 and per_spk.unit == "speaker" and per_utt.unit == "utterance"
    assert (per_spk.diff_high - per_spk.diff_low) > 1.5 * (per_utt.diff_high - per_utt.diff_low)
    assert per_spk.diff == pytest.approx(per_utt.diff)


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="lengths differ"):
        paired_bootstrap([1], [1, 2], [3])
    with pytest.raises(ValueError, match="no utterances"):
        paired_bootstrap([], [], [])
    with pytest.raises(ValueError, match="group keys"):
        paired_bootstrap([1], [1], [3], groups=["a", "b"])
    with pytest.raises(ValueError, match="replicates"):
        paired_bootstrap([1], [1], [3], replicates=10)
