"""Guard bookkeeping at each evaluation: base guard WER, the bound, guard_ok and select_score."""

from __future__ import annotations

import pytest

from whisper_tune.train.guard import guard_enabled, guard_fields


def test_step_zero_sets_the_base_and_later_steps_are_judged_against_it():
    start = {"step": 0, "eval_wer": 0.30, "guard_wer": 0.08}
    first = guard_fields([], start, tolerance=0.0)
    assert first == {"base_guard_wer": 0.08, "guard_limit": 0.08, "guard_ok": 1.0, "select_score": 0.30}
    history = [start]
    better = guard_fields(history, {"step": 25, "eval_wer": 0.12, "guard_wer": 0.075}, tolerance=0.0)
    assert better["guard_ok"] == 1.0 and better["select_score"] == pytest.approx(0.12)
    worse = guard_fields(history, {"step": 50, "eval_wer": 0.10, "guard_wer": 0.12}, tolerance=0.0)
    assert worse["guard_ok"] == 0.0 and worse["select_score"] == pytest.approx(1.10)
    tolerated = guard_fields(history, {"step": 50, "eval_wer": 0.10, "guard_wer": 0.12}, tolerance=0.6)
    assert tolerated["guard_limit"] == pytest.approx(0.128) and tolerated["guard_ok"] == 1.0


def test_without_a_guard_the_score_is_eval_wer():
    assert guard_fields([], {"step": 10, "eval_wer": 0.2}, tolerance=0.0) == {"select_score": 0.2}
    # a guard but no step-0 evaluation (resumed from an old run): nothing to judge against
    assert guard_fields([], {"step": 10, "eval_wer": 0.2, "guard_wer": 0.1}, tolerance=0.0) == {
        "select_score": 0.2
    }


def test_guard_off_spellings_match_the_data_layer():
    assert guard_enabled("builtin") and guard_enabled("/data/general.jsonl")
    assert not any(guard_enabled(v) for v in ("none", "off", "False", " "))
