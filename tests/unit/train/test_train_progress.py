"""train/progress.py: rank 0's progress.json and the driver's one bar fed from it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from whisper_tune import console
from whisper_tune.train.progress import (
    PROGRESS_FILE,
    ProgressFile,
    follow_progress,
    progress_note,
    read_progress,
)


def _state(step: int, max_steps: int = 8, epoch: float = 0.0) -> SimpleNamespace:
    return SimpleNamespace(global_step=step, max_steps=max_steps, epoch=epoch)


def test_progress_file_follows_the_trainer(tmp_path: Path) -> None:
    cb = ProgressFile(tmp_path, min_gap_s=0.0)
    cb.on_train_begin(None, _state(0), None)
    assert read_progress(tmp_path) | {"time": 0} == {
        "phase": "training", "step": 0, "max_steps": 8, "epoch": 0.0, "time": 0,
    }  # fmt: skip
    cb.on_step_end(None, _state(3, epoch=0.375), None)
    cb.on_log(None, _state(3), None, logs={"loss": 1.25, "learning_rate": 1e-4})
    cb.on_prediction_step(None, _state(3), None)
    p = read_progress(tmp_path)
    assert p is not None and p["phase"] == "evaluating" and p["step"] == 3 and p["loss"] == 1.25
    cb.on_log(None, _state(3), None, logs={"eval_wer": 0.1234, "guard_wer": 0.03})
    cb.on_evaluate(None, _state(3), None)
    p = read_progress(tmp_path)
    assert p is not None and p["phase"] == "training"
    assert progress_note(p) == "epoch 0.38, loss 1.250, eval WER 12.34 %, guard 3.00 %"
    cb.on_train_end(None, _state(8, epoch=1.0), None)
    p = read_progress(tmp_path)
    assert p is not None and (p["phase"], p["step"]) == ("finished", 8)
    assert not list(tmp_path.glob(".*tmp"))  # written atomically


def test_writes_are_throttled_and_never_fail(tmp_path: Path) -> None:
    cb = ProgressFile(tmp_path, min_gap_s=3600)
    cb.on_train_begin(None, _state(0), None)  # forced
    cb.on_step_end(None, _state(1), None)  # throttled
    assert read_progress(tmp_path)["step"] == 0  # type: ignore[index]
    gone = ProgressFile(tmp_path / "not" / "here", min_gap_s=0)
    gone.on_train_begin(None, _state(0), None)  # another node's run dir: no error


def test_read_progress_tolerates_garbage(tmp_path: Path) -> None:
    assert read_progress(tmp_path) is None
    (tmp_path / PROGRESS_FILE).write_text("{half")
    assert read_progress(tmp_path) is None
    (tmp_path / PROGRESS_FILE).write_text("[1]")
    assert read_progress(tmp_path) is None


def test_follow_progress_feeds_the_stage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stage = console.Stage("training", unit="steps")
    (tmp_path / PROGRESS_FILE).write_text(json.dumps({"step": 9, "max_steps": 10, "time": 0}))  # stale
    with follow_progress(tmp_path, stage, poll_s=0.05):
        time.sleep(0.2)
        assert stage.done == 0  # a previous run's file is ignored
        cb = ProgressFile(tmp_path, min_gap_s=0.0)
        cb.on_train_begin(None, _state(2, max_steps=10), None)
        deadline = time.monotonic() + 5
        while stage.done != 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert (stage.done, stage.total) == (2, 10) and "epoch" in stage.note
    stage.close()
    assert capsys.readouterr().out.startswith("training ...")
