"""A local Ray run prepares its data while Ray and the workers start: the data-ready marker, the
workers' wait, the launcher raising the data's own error, ``best/`` before Ray's shutdown, and
checkpoints moved (not copied) into the run. Ray is not started."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

import whisper_tune.train.launch as launch
from whisper_tune.errors import UserError
from whisper_tune.train import run_files
from whisper_tune.train.callbacks import copy_last_checkpoint, move_to
from whisper_tune.train.config import JobConfig


def test_marker_ok_and_error(tmp_path: Path) -> None:
    threading.Timer(0.3, run_files.mark_data_ready, args=(tmp_path,)).start()
    assert run_files.wait_for_data(tmp_path, poll_s=0.05) is None  # waited for it
    run_files.mark_data_ready(tmp_path, error="UserError: no usable rows")
    assert run_files.wait_for_data(tmp_path) == "UserError: no usable rows"
    assert not list(tmp_path.glob("*.tmp"))


def _cfg(tmp_path: Path) -> JobConfig:
    return JobConfig.from_mapping(
        {
            "data": {"train": "t.jsonl", "eval": "e.jsonl", "guard": "none"},
            "scaling": {"num_workers": 1, "use_gpu": False},
            "run": {"storage_path": str(tmp_path / "runs"), "name": "r"},
        }
    )


@pytest.fixture
def no_ray(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    events: list[str] = []
    monkeypatch.setattr(launch, "_local_resources", lambda: {"CPU": 4.0, "GPU": 0.0})
    monkeypatch.setattr(launch, "_init_ray", lambda cfg: (events.append("ray up"), (True, {"CPU": 4.0}))[1])
    monkeypatch.setattr(launch, "_stop_ray", lambda started, shutdown: events.append("ray down"))
    return events


def _worker_like(events: list[str]) -> Any:
    def fit(cfg: JobConfig, loop: dict[str, Any], run_dir: Path, resumed: bool, use_gpu: bool) -> Any:
        assert loop["wait_for_data"] is True
        failed = run_files.wait_for_data(run_dir, poll_s=0.01)  # what every worker does first
        events.append(f"worker: {failed or 'data ready'}")
        return launch.TrainOutcome(cfg.run.name, run_dir, resumed, 0 if failed else 4, None)

    return fit


def test_data_is_prepared_while_ray_starts(
    tmp_path: Path, no_ray: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def slow_data(cfg: JobConfig, run_dir: Path) -> None:
        time.sleep(0.3)
        no_ray.append("data done")

    monkeypatch.setattr(launch, "_prepare_data", slow_data)
    monkeypatch.setattr(launch, "_fit_ray", _worker_like(no_ray))
    outcome = launch.launch(_cfg(tmp_path))
    assert outcome.global_step == 4
    assert no_ray == ["ray up", "data done", "worker: data ready", "ray down"]
    status = (tmp_path / "runs" / "r" / "status.json").read_text()
    assert '"finished"' in status  # written before Ray's shutdown


def test_a_data_failure_stops_the_workers_and_is_raised(
    tmp_path: Path, no_ray: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def bad_data(cfg: JobConfig, run_dir: Path) -> None:
        time.sleep(0.2)
        raise UserError("train data: no usable rows")

    monkeypatch.setattr(launch, "_prepare_data", bad_data)
    monkeypatch.setattr(launch, "_fit_ray", _worker_like(no_ray))
    with pytest.raises(UserError, match="no usable rows"):
        launch.launch(_cfg(tmp_path))
    assert no_ray == ["ray up", "worker: UserError: train data: no usable rows", "ray down"]
    assert '"failed"' in (tmp_path / "runs" / "r" / "status.json").read_text()


def test_checkpoints_are_moved_into_the_run(tmp_path: Path) -> None:
    hf = tmp_path / "hf"
    (hf / "checkpoint-8").mkdir(parents=True)
    (hf / "checkpoint-8" / "model.safetensors").write_bytes(b"w" * 10)
    from types import SimpleNamespace

    state = SimpleNamespace(log_history=[{"eval_wer": 0.5}], global_step=8, epoch=1.0)
    staged = tmp_path / "staged"
    staged.mkdir()
    assert copy_last_checkpoint(SimpleNamespace(output_dir=str(hf)), state, staged)
    assert not (hf / "checkpoint-8").exists()  # moved out of the Trainer's temporary dir
    run = tmp_path / "run"
    run.mkdir()
    persisted = move_to(run)(SimpleNamespace(path=str(staged)), "checkpoint_000008")
    dest = run / "checkpoint_000008"
    assert (
        Path(persisted.path) == dest and (dest / "checkpoint" / "model.safetensors").read_bytes() == b"w" * 10
    )
    assert (dest / "metrics.json").is_file() and not list(staged.iterdir()) and not list(run.glob(".tmp_*"))
