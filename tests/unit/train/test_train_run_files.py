"""The training code's run-dir access: names, JSON files, checkpoints and the resume point."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from whisper_tune import runs
from whisper_tune.train import run_files


def test_names_follow_the_runs_layout(tmp_path: Path) -> None:
    assert (
        run_files.METRICS_FILE == runs.RunDir.METRICS_FILE
        and run_files.HF_CHECKPOINT == runs.RunDir.HF_CHECKPOINT
    )
    assert run_files.checkpoint_dir_name(42) == "checkpoint_000042"
    assert run_files.checkpoint_dir(tmp_path, 7) == tmp_path / "checkpoint_000007"
    assert run_files.is_remote("s3://bucket/runs/r") and not run_files.is_remote(tmp_path)


def test_json_files_keep_their_format_and_other_keys(tmp_path: Path) -> None:
    assert run_files.read_json(tmp_path, run_files.FAST_PATH_FILE) == {}
    assert run_files.write_json(tmp_path, run_files.FAST_PATH_FILE, {"n_frames": 864, "at": tmp_path})
    path = tmp_path / "fast_path.json"
    assert path.read_text(encoding="utf-8") == json.dumps({"n_frames": 864, "at": str(tmp_path)}, indent=2)
    assert run_files.update_json(tmp_path, run_files.FAST_PATH_FILE, throughput={"measured_steps": 2})
    assert run_files.read_json(tmp_path, "fast_path.json") == {
        "n_frames": 864,
        "at": str(tmp_path),
        "throughput": {"measured_steps": 2},
    }
    assert not run_files.write_json("s3://bucket/run", "fast_path.json", {})  # remote: not written here


def test_checkpoints_and_resume_point(tmp_path: Path, tiny_model_dir: Path) -> None:
    assert run_files.latest_checkpoint(tmp_path) is None and run_files.resume_point(tmp_path) is None
    for step in (2, 4):
        ck = run_files.checkpoint_dir(tmp_path, step)
        shutil.copytree(tiny_model_dir, ck / "checkpoint")
        (ck / "checkpoint" / "trainer_state.json").write_text(json.dumps({"global_step": step}))
        (ck / "metrics.json").write_text(json.dumps({"step": step, "eval_wer": 1.0 / step}))
    (tmp_path / "checkpoint_000009").mkdir()  # half-written: not listed
    assert [c.step for c in run_files.checkpoints(tmp_path)] == [2, 4]
    latest = run_files.latest_checkpoint(tmp_path)
    assert latest is not None and latest.step == 4
    assert run_files.resume_point(tmp_path) == str(tmp_path / "checkpoint_000004" / "checkpoint")
