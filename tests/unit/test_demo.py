"""The demo's embedded defaults form a valid training job, and its CLI is wired."""

from __future__ import annotations

from pathlib import Path

import pytest

from whisper_tune.cli import build_parser
from whisper_tune.config import apply_overrides, from_dict
from whisper_tune.demo import SIZES, DemoConfig, job_config_dict
from whisper_tune.train.config import JobConfig


@pytest.mark.parametrize("size", sorted(SIZES))
def test_demo_job_config_is_valid(tmp_path: Path, size: str) -> None:
    cfg = DemoConfig(size=size, out=str(tmp_path / "out"))
    for key, value in SIZES[size].items():
        setattr(cfg, key, value)
    job = from_dict(JobConfig, job_config_dict(cfg, tmp_path / "corpus", train_clips=800, use_gpu=False))
    # the measured winner (docs/forgetting.md): encoder-only, no cache (the encoder learns)
    assert job.train.strategy == "encoder" and not job.train.cache_encoder_outputs
    assert job.run.interpolate and job.data.guard == "builtin"
    steps = 25 * cfg.epochs
    assert job.train.warmup_steps == max(1, round(steps / 5))
    assert job.train.save_steps % job.train.eval_steps == 0
    # 800 clips / (2 workers x 16) = 25 steps per epoch: one eval (and checkpoint) per epoch
    assert job.data.pack_share == cfg.pack_share == 0.0
    assert job.train.eval_steps == 25
    assert job.scaling.num_workers == cfg.workers
    assert job.data.train.endswith("train.jsonl") and job.data.eval.endswith("validation.jsonl")
    assert job.run.storage_path == str(Path(cfg.out) / "runs")
    assert job.data.guard_at == "export" and job.train.generation_max_length == "auto"


def test_demo_trains_on_call_windows_with_one_evaluation(tmp_path: Path) -> None:
    calls = tmp_path / "calls_train" / "segments.jsonl"
    cfg = DemoConfig(out=str(tmp_path))
    job = from_dict(JobConfig, job_config_dict(cfg, tmp_path, train_clips=800, use_gpu=False, calls=calls))
    assert job.data.train == [str(tmp_path / "train.jsonl"), str(calls)]
    # 25 clip steps + the call windows' few: no periodic evaluation, only the last step's
    assert job.train.eval_steps > 25 + 10 and job.train.save_steps % job.train.eval_steps == 0


def test_demo_steps_follow_packing(tmp_path: Path) -> None:
    cfg = DemoConfig(out=str(tmp_path), pack_share=0.5)
    job = from_dict(JobConfig, job_config_dict(cfg, tmp_path, train_clips=800, use_gpu=False))
    # 400 clips packed 4.9 to a window (measured: 400 in 82) + 400 single = 482 items = 16 steps
    assert job.data.pack_share == 0.5 and job.train.eval_steps == 16


def test_demo_overrides_are_validated(tmp_path: Path) -> None:
    cfg = DemoConfig(out=str(tmp_path))
    job = job_config_dict(cfg, tmp_path, train_clips=100, use_gpu=False)
    bad = apply_overrides(job, ["train.no_such_key=1"])
    with pytest.raises(Exception, match="train.no_such_key"):
        from_dict(JobConfig, bad)


def test_demo_cli_registered() -> None:
    args = build_parser().parse_args(
        ["demo", "--size", "full", "--out", "x", "--set", "train.learning_rate=3e-5"]
    )
    assert args.command == "demo" and args.size == "full" and args.set == ["train.learning_rate=3e-5"]
