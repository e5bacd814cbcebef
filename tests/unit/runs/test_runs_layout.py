"""RunDir: layout constants, checkpoint listing and completeness, the best rule, status (local and URI)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from wt_runs_testutil import fake_run, half_written

from whisper_tune import runs, storage
from whisper_tune.errors import UserError
from whisper_tune.runs import Checkpoint, RunDir, best_of


def test_layout_constants_are_the_contract() -> None:
    assert (RunDir.CONFIG_FILE, RunDir.STATUS_FILE, RunDir.BEST_DIR) == ("config.yaml", "status.json", "best")
    assert (RunDir.METRICS_FILE, RunDir.HF_CHECKPOINT, RunDir.CHECKPOINT_PREFIX) == (
        "metrics.json",
        "checkpoint",
        "checkpoint_",
    )
    assert (RunDir.FAST_PATH_FILE, RunDir.TENSORBOARD_DIR) == ("fast_path.json", "tensorboard")
    assert RunDir.checkpoint_name(42) == "checkpoint_000042"


def test_best_of_is_lowest_eval_wer_then_later_step() -> None:
    def ck(step: int, wer: float | None) -> Checkpoint:
        return Checkpoint(Path(f"c{step}"), step, {} if wer is None else {"eval_wer": wer})

    assert best_of([ck(2, 0.5), ck(4, 0.7), ck(6, 0.5), ck(8, None)]).step == 6
    assert best_of([ck(2, None), ck(4, None)]).step == 4  # no scores: the latest
    assert best_of([ck(2, math.nan), ck(4, 0.9)]).step == 4  # NaN is no score
    assert ck(3, math.inf).eval_wer is None and ck(1, 0.25).eval_wer == 0.25
    assert ck(1, 0.2).hf_dir == Path("c1") / "checkpoint"
    with pytest.raises(UserError, match="no checkpoints"):
        best_of([])


def test_best_of_prefers_guard_admissible_checkpoints() -> None:
    def ck(step: int, wer: float, ok: bool | None) -> Checkpoint:
        metrics: dict[str, object] = {"eval_wer": wer}
        if ok is not None:
            metrics["guard_ok"] = ok
        return Checkpoint(Path(f"c{step}"), step, metrics)

    # the lowest eval WER forgot real speech: the best admissible one wins
    assert best_of([ck(2, 0.30, True), ck(4, 0.20, True), ck(6, 0.10, False)]).step == 4
    assert best_of([ck(2, 0.30, False), ck(4, 0.20, False)]).step == 4  # none admissible: plain rule
    assert best_of([ck(2, 0.30, None), ck(4, 0.20, None)]).step == 4  # no guard scored: plain rule
    assert ck(1, 0.1, False).guard_ok is False and ck(1, 0.1, None).guard_ok is None


def test_select_best_is_min_eval_wer_then_later_step(tmp_path: Path, tiny_model_dir: Path) -> None:
    run = fake_run(tmp_path, tiny_model_dir, {2: 0.5, 4: 0.7, 6: 0.5, 8: None})
    rd = RunDir(run)
    assert rd.best_checkpoint().step == 6
    assert [c.step for c in rd.checkpoints()] == [2, 4, 6, 8]
    (run / "checkpoint_000010").mkdir()  # half-written, no HF checkpoint inside: ignored
    assert len(rd.checkpoints()) == 4
    latest = rd.latest_checkpoint()
    assert latest is not None and latest.step == 8 and latest.path == run / "checkpoint_000008"
    assert rd.checkpoint_dir(10) == run / "checkpoint_000010"
    # the function forms older callers use are the same thing
    assert runs.select_best(run).step == 6
    assert [c.step for c in runs.list_checkpoints(run)] == [2, 4, 6, 8]


@pytest.mark.parametrize(
    "how",
    [
        "no-metrics",
        "bad-metrics",
        "no-trainer-state",
        "truncated-weights",
        "truncated-header",
        "no-weights",
        "missing-shard",
    ],
)
def test_half_written_checkpoint_is_ignored_never_loaded(
    tmp_path: Path, tiny_model_dir: Path, how: str
) -> None:
    """Issue: a half-written checkpoint directory is ignored, never loaded (runs listing, best, resume)."""
    from whisper_tune.train.run_files import resume_point

    run = fake_run(tmp_path, tiny_model_dir, {2: 0.5, 4: 0.4})
    half_written(run, tiny_model_dir, 6, how)
    rd = RunDir(run)
    assert [c.step for c in rd.checkpoints()] == [2, 4]
    assert rd.best_checkpoint().step == 4  # the broken one claims eval_wer 0.01: still not chosen
    (listed,) = runs.list_runs(tmp_path)
    assert listed.steps == 4 and listed.checkpoints == 2
    assert resume_point(run) == str(run / "checkpoint_000004" / "checkpoint")
    latest = rd.latest_checkpoint()
    assert latest is not None and latest.hf_dir == run / "checkpoint_000004" / "checkpoint"


def test_complete_sharded_checkpoint_counts(tmp_path: Path, tiny_model_dir: Path) -> None:
    run = fake_run(tmp_path, tiny_model_dir, {2: 0.5})
    hf = run / "checkpoint_000002" / "checkpoint"
    (hf / "model.safetensors").rename(hf / "model-00001-of-00001.safetensors")
    (hf / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"a": "model-00001-of-00001.safetensors"}})
    )
    assert [c.step for c in RunDir(run).checkpoints()] == [2]


def test_select_best_without_checkpoints_is_a_user_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no checkpoints"):
        RunDir(tmp_path / "empty").best_checkpoint()
    with pytest.raises(UserError, match="no checkpoints"):
        runs.select_best(tmp_path / "empty")
    assert RunDir(tmp_path / "empty").latest_checkpoint() is None


def test_status_of_a_dead_launcher_reads_interrupted(tmp_path: Path) -> None:
    import subprocess
    import sys

    runs.write_status(tmp_path, "running")
    assert runs.read_status(tmp_path)["status"] == "running"  # this process is alive
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    data = json.loads((tmp_path / "status.json").read_text())
    data["pid"] = int(proc.stdout)
    (tmp_path / "status.json").write_text(json.dumps(data))
    assert runs.read_status(tmp_path)["status"] == "interrupted"
    assert RunDir(tmp_path).read_status()["status"] == "interrupted"


def test_local_run_dir_files_and_status(tmp_path: Path) -> None:
    rd = RunDir(f"file://{tmp_path}/r")  # a file:// URI is a local path
    assert rd.path == tmp_path / "r" and not rd.is_remote and rd.name == "r"
    assert not rd.exists() and not rd.is_run() and rd.read_json("x.json") == {}
    rd.write_status("preparing", started="now")
    rd.write_status("running", resumed=False)
    status = rd.read_status()
    assert status["status"] == "running" and status["started"] == "now" and status["resumed"] is False
    assert rd.exists() and rd.is_run() and not (tmp_path / "r" / "status.tmp").exists()
    rd.write_json("fast_path.json", {"n_frames": 600})
    assert rd.read_json(RunDir.FAST_PATH_FILE) == {"n_frames": 600}
    assert rd.local_copy() == tmp_path / "r" and rd.mtime_ns() > 0
    with pytest.raises(UserError, match=f"run `whisper-tune best {rd.path}` first"):
        rd.model_dir()
    (tmp_path / "r" / "best").mkdir()
    assert rd.has_best() and rd.model_dir() == str(tmp_path / "r" / "best")
    assert RunDir(rd) == rd and RunDir(str(tmp_path / "r")) == rd and str(rd) == str(tmp_path / "r")


def _remote_checkpoint(run: str, step: int, wer: float, *, weights: bool = True) -> None:
    ckpt = storage.join(run, RunDir.checkpoint_name(step))
    storage.write_text(storage.join(ckpt, "metrics.json"), json.dumps({"step": step, "eval_wer": wer}))
    storage.write_text(storage.join(ckpt, "checkpoint", "trainer_state.json"), '{"global_step": 1}')
    if weights:
        storage.write_bytes(storage.join(ckpt, "checkpoint", "model.safetensors"), b"x")


def test_run_dir_on_a_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same class on fsspec's memory:// filesystem: listing, best, status, best/ as a local dir."""
    monkeypatch.setenv("WHISPER_TUNE_CACHE", str(tmp_path / "cache"))
    uri = f"memory://wt-rundir-{tmp_path.name}/runs/r"
    rd = RunDir(uri + "/")
    assert rd.path == uri and rd.is_remote and rd.name == "r" and not rd.exists()
    assert rd.checkpoint_dir(3) == f"{uri}/checkpoint_000003"
    rd.write_status("running", resumed=True)
    assert rd.is_run() and rd.read_status()["status"] == "running"
    assert json.loads(storage.read_text(f"{uri}/status.json"))["resumed"] is True
    rd.write_json("fast_path.json", {"n_frames": 600})
    assert rd.read_json("fast_path.json") == {"n_frames": 600}
    _remote_checkpoint(uri, 2, 0.3)
    _remote_checkpoint(uri, 4, 0.3)
    _remote_checkpoint(uri, 6, 0.1, weights=False)  # upload cut short: never listed
    assert [c.step for c in rd.checkpoints()] == [2, 4]
    best = rd.best_checkpoint()
    assert best.step == 4 and best.path == f"{uri}/checkpoint_000004" and best.eval_wer == 0.3
    assert best.hf_dir == f"{uri}/checkpoint_000004/checkpoint" and best.name == "checkpoint_000004"
    latest = rd.latest_checkpoint()
    assert latest is not None and latest.step == 4
    assert rd.mtime_ns() >= 0

    with pytest.raises(UserError, match=f"run `whisper-tune best {uri}` first"):
        rd.model_dir()
    storage.write_text(f"{uri}/best/config.json", "{}")
    storage.write_text(f"{uri}/tensorboard/events.out.tfevents.1", "tb")
    model = Path(rd.model_dir())
    assert model.name == "best" and (model / "config.json").read_text() == "{}"
    copy = model.parent
    assert copy.parent == tmp_path / "cache" / "remote" and (copy / "tensorboard").is_dir()
    assert not list(copy.glob("checkpoint_*"))  # the local copy leaves checkpoints in storage
    assert rd.local_copy() == copy
