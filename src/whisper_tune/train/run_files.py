"""Every run-directory access of the training code, behind a few functions.

Why: the layout of a run directory (checkpoint folder names, which files a checkpoint
holds, which one is the resume point) belongs to ``whisper_tune.runs``; the training code
only writes into it. Keeping all of the training code's reads and writes of the run dir
here (through ``runs.RunDir``) means the train modules never spell a file name or glob a
folder themselves.

A run dir is a local path here (the launcher hands each worker the local mirror); a URI
is recognised and the small JSON files are then not written (as before: Ray uploads the
checkpoints, the launcher pushes the rest).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from whisper_tune.runs import Checkpoint, RunDir

__all__ = [
    "resume_checkpoint",
    "CHECKPOINT_PREFIX",
    "PLAN_FILE",
    "StepClock",
    "ENCODER_CACHE_DIR",
    "FAST_PATH_FILE",
    "FEATURES_DIR",
    "HF_CHECKPOINT",
    "METRICS_FILE",
    "TENSORBOARD_DIR",
    "DATA_READY_FILE",
    "checkpoint_dir",
    "checkpoint_dir_name",
    "checkpoints",
    "is_remote",
    "latest_checkpoint",
    "mark_data_ready",
    "read_json",
    "resume_point",
    "update_json",
    "wait_for_data",
    "write_json",
]

METRICS_FILE = RunDir.METRICS_FILE  # a checkpoint's metrics (written after its HF checkpoint)
HF_CHECKPOINT = RunDir.HF_CHECKPOINT  # the HF Trainer checkpoint folder inside a run checkpoint
CHECKPOINT_PREFIX = RunDir.CHECKPOINT_PREFIX  # + the step, 6 digits: what Ray and the local path write
FAST_PATH_FILE = RunDir.FAST_PATH_FILE  # what the plan chose (+ measured throughput), by rank 0
TENSORBOARD_DIR = RunDir.TENSORBOARD_DIR
FEATURES_DIR = "features"  # default log-mel feature cache (data.feature_cache overrides it)
ENCODER_CACHE_DIR = "encoder_cache"  # default cached encoder outputs (train.encoder_cache_dir)


def is_remote(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` is a URI (``s3://...``) rather than a local folder."""
    return "://" in str(run_dir)


def checkpoint_dir_name(step: int) -> str:
    """The folder name of the checkpoint for ``step`` (``checkpoint_000042``)."""
    return RunDir.checkpoint_name(step)


def checkpoint_dir(run_dir: Path, step: int) -> Path:
    """Where the checkpoint for ``step`` goes in a local run dir."""
    return Path(run_dir) / checkpoint_dir_name(step)


def checkpoints(run_dir: Path) -> list[Checkpoint]:
    """Complete checkpoints of the run, sorted by step (half-written ones are left out)."""
    return RunDir(run_dir).checkpoints()


def latest_checkpoint(run_dir: Path) -> Checkpoint | None:
    """The complete checkpoint with the highest step (where a restarted run resumes), or None."""
    return RunDir(run_dir).latest_checkpoint()


def resume_point(run_dir: Path) -> str | None:
    """The HF Trainer checkpoint to resume from (inside :func:`latest_checkpoint`), or None."""
    latest = latest_checkpoint(run_dir)
    return None if latest is None else str(Path(latest.path) / HF_CHECKPOINT)


def read_json(run_dir: Path, name: str) -> dict[str, Any]:
    """A small JSON file at the run's root; ``{}`` when it is missing (or the run is remote)."""
    path = Path(run_dir) / name
    if is_remote(run_dir) or not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def write_json(run_dir: Path, name: str, data: dict[str, Any]) -> bool:
    """Write a small JSON file at the run's root (indented, non-JSON values as strings).

    Returns False, writing nothing, for a remote run dir.
    """
    if is_remote(run_dir):
        return False
    (Path(run_dir) / name).write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    return True


def update_json(run_dir: Path, name: str, **fields: Any) -> bool:
    """Set ``fields`` in a run-root JSON file, keeping its other keys."""
    if is_remote(run_dir):
        return False
    return write_json(run_dir, name, {**read_json(run_dir, name), **fields})


PLAN_FILE = "plan.json"  # the GPU plan's choices and reasons (train/plan.py)


class StepClock:
    """Seconds per recipe step (model, data, plan...), recorded in ``fast_path.json`` as ``setup_s``:
    what a run spends before its first training step."""

    def __init__(self) -> None:
        self.marks: dict[str, float] = {}
        self.timeline: dict[str, float] = {"start": round(time.time(), 2)}  # epoch s at each step's end
        self._t = time.perf_counter()

    def done(self, name: str, value: Any) -> Any:
        now = time.perf_counter()
        self.marks[name] = round(now - self._t, 2)
        self.timeline[name] = round(time.time(), 2)
        self._t = now
        return value


@contextlib.contextmanager
def resume_checkpoint(use_ray: bool, run_dir: Path) -> Iterator[str | None]:
    """The HF checkpoint to resume from while the block runs, or None for a fresh start.

    Under Ray: the checkpoint Ray restored (``ray.train.get_checkpoint()``, kept on disk
    until the block ends); without Ray: the run dir's latest complete checkpoint.
    """
    if not use_ray:
        yield resume_point(run_dir)
        return
    import ray.train

    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None:
        yield None
        return
    with checkpoint.as_directory() as ckpt_dir:
        yield str(Path(ckpt_dir) / HF_CHECKPOINT)


DATA_READY_FILE = ".data_ready.json"  # the launcher's data preparation ended (ok or an error)


def mark_data_ready(run_dir: Path, error: str | None = None) -> None:
    """The launcher: its feature cache and data reports are complete (or failed with ``error``)."""
    tmp = Path(run_dir) / f"{DATA_READY_FILE}.tmp"
    tmp.write_text(json.dumps({"ok": error is None, "error": error}), encoding="utf-8")
    tmp.replace(Path(run_dir) / DATA_READY_FILE)  # atomic: a worker never reads half a file


def wait_for_data(run_dir: Path, poll_s: float = 0.2) -> str | None:
    """A worker started while the launcher still prepares the data: wait for it to end.

    Returns None once the data is ready, or the launcher's error (the worker then stops
    without training; the launcher raises that error itself).
    """
    path = Path(run_dir) / DATA_READY_FILE
    while not path.is_file():
        time.sleep(poll_s)
    found = json.loads(path.read_text(encoding="utf-8"))
    return None if found.get("ok") else str(found.get("error") or "data preparation failed")
