"""Fine-tuning: typed job config, per-worker train function, Ray Train launcher, DeepSpeed presets.

Why: one import for the pieces other areas (the demo, jobs) call; heavy modules
(torch, transformers, ray) load only when a function is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["JobConfig", "TrainOutcome", "launch", "load_job_config", "train_func"]

if TYPE_CHECKING:
    from whisper_tune.train.config import JobConfig, load_job_config
    from whisper_tune.train.launch import TrainOutcome, launch
    from whisper_tune.train.train_func import train_func


def __getattr__(name: str) -> Any:
    if name in ("JobConfig", "load_job_config"):
        from whisper_tune.train import config

        return getattr(config, name)
    if name in ("TrainOutcome", "launch"):
        from whisper_tune.train import launch as _launch

        return getattr(_launch, name)
    if name == "train_func":
        from whisper_tune.train.train_func import train_func

        return train_func
    raise AttributeError(name)
