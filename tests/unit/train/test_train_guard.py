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


def test_guard_at_export_skips_the_in_training_guard_and_the_base_evaluation(tmp_path) -> None:
    """``data.guard_at: export``: workers load no guard, nothing is evaluated before step 1;
    the export check (train/finalize.py) still scores the guard."""
    from whisper_tune.config import from_dict
    from whisper_tune.train.config import JobConfig
    from whisper_tune.train.fastpath import plan_fast_path
    from whisper_tune.train.inputs import load_guard
    from whisper_tune.train.trainer import training_arguments

    def job(guard_at: str) -> JobConfig:
        data = {"train": "t.jsonl", "eval": "e.jsonl", "guard": "builtin", "guard_at": guard_at}
        return from_dict(JobConfig, {"model": {"name": "tiny.en"}, "data": data})

    plan = plan_fast_path("cpu", "fp32")
    every = training_arguments(job("every_eval"), plan, output_dir=str(tmp_path), use_gpu=False)
    export = training_arguments(job("export"), plan, output_dir=str(tmp_path), use_gpu=False)
    assert every.eval_on_start and not export.eval_on_start
    assert load_guard(job("export"), processor=None, feature_cache=None) is None
    with pytest.raises(Exception, match="guard_at"):
        job("sometimes")
