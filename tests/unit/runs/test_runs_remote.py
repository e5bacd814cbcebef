"""Runs in remote storage, through fsspec's ``memory://``: staging mirror, listing, specs, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from whisper_tune import storage
from whisper_tune.runs import RunDir, pull_run, push_run


def test_staged_run_push_pull(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHISPER_TUNE_CACHE", str(tmp_path / "cache"))
    uri = f"memory://wt-stage-{tmp_path.name}/runs"
    local = storage.staging_dir(uri) / "r1"
    (local / "best").mkdir(parents=True)
    (local / "best" / "config.json").write_text("{}")
    (local / "config.yaml").write_text("a: 1\n")
    (local / "config.20260101-000000.yaml").write_text("a: 0\n")
    (local / "status.json").write_text('{"status": "finished"}')
    (local / "features").mkdir()
    (local / "features" / "big.npy").write_bytes(b"x")  # caches are not uploaded
    remote = storage.join(uri, "r1")
    storage.write_text(storage.join(remote, "checkpoint_000004", "metrics.json"), "{}")  # as Ray would
    push_run(local, remote)
    assert storage.listdir(remote) == [
        "best", "checkpoint_000004", "config.20260101-000000.yaml", "config.yaml", "status.json",
    ]  # fmt: skip
    # a fresh machine: pull gets the small files, never the checkpoints
    fresh = tmp_path / "fresh" / "r1"
    assert pull_run(remote, fresh)
    assert sorted(p.name for p in fresh.iterdir()) == [
        "config.20260101-000000.yaml",
        "config.yaml",
        "status.json",
    ]
    assert not pull_run(storage.join(uri, "nope"), tmp_path / "nope")


def test_spec_and_checkpoint_edge_cases_on_fsspec_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same code through a non-S3 scheme (fsspec ``memory://``): what is a run, a model, a
    complete remote checkpoint; errors name the URI and the command to run."""
    from whisper_tune.errors import ModelNotFoundError, UserError
    from whisper_tune.runs import list_runs, resolve_model_spec, resolve_run_dir

    monkeypatch.setenv("WHISPER_TUNE_CACHE", str(tmp_path / "cache"))
    base = f"memory://wt-{tmp_path.name}"
    run = storage.join(base, "runs", "r")
    storage.write_text(storage.join(run, "config.yaml"), "a: 1\n")
    storage.write_text(storage.join(run, "tensorboard", "events.out.tfevents.1"), "tb")
    ok, sharded, missing = (storage.join(run, f"checkpoint_00000{i}") for i in (1, 2, 3))
    for ckpt, step in ((ok, 1), (sharded, 2), (missing, 3)):
        storage.write_text(
            storage.join(ckpt, "metrics.json"), json.dumps({"step": step, "eval_wer": 0.1 * step})
        )
        storage.write_text(storage.join(ckpt, "checkpoint", "trainer_state.json"), '{"global_step": 1}')
    storage.write_bytes(storage.join(ok, "checkpoint", "model.safetensors"), b"x")
    index = {"weight_map": {"a": "model-1.safetensors", "b": "model-2.safetensors"}}
    storage.write_text(storage.join(sharded, "checkpoint", "model.safetensors.index.json"), json.dumps(index))
    storage.write_bytes(storage.join(sharded, "checkpoint", "model-1.safetensors"), b"x")  # shard 2 missing
    storage.write_text(storage.join(missing, "checkpoint", "trainer_state.json"), "not json")
    storage.write_bytes(storage.join(missing, "checkpoint", "model.safetensors"), b"x")

    assert [c.step for c in RunDir(run).checkpoints()] == [1]
    (info,) = list_runs(storage.join(base, "runs"))
    assert (info.name, info.status, info.checkpoints, info.best_checkpoint) == ("r", "unknown", 1, ok)
    with pytest.raises(UserError, match=f"run `whisper-tune best {run}` first"):
        resolve_model_spec(run)
    with pytest.raises(ModelNotFoundError, match="no such directory"):
        resolve_model_spec(storage.join(base, "nope"))
    storage.write_text(storage.join(base, "other", "readme.txt"), "hi")
    with pytest.raises(ModelNotFoundError, match="neither a model directory"):
        resolve_model_spec(storage.join(base, "other"))
    assert resolve_model_spec("tiny.en") == "tiny.en" and resolve_model_spec(str(tmp_path)) == str(tmp_path)

    copy = resolve_run_dir("r", storage.join(base, "runs"))  # a run name under a URI storage
    assert (copy / "config.yaml").read_text() == "a: 1\n" and (copy / "tensorboard").is_dir()
    assert not list(copy.glob("checkpoint_*"))
    with pytest.raises(UserError, match="not found"):
        resolve_run_dir(storage.join(base, "other"))

    # a model dir URI is copied whole; models itself takes model dirs only, never a run
    from whisper_tune.models.load import ensure_hf_dir

    model = storage.join(base, "models", "m")
    storage.write_text(storage.join(model, "config.json"), "{}")
    assert (Path(resolve_model_spec(model)) / "config.json").read_text() == "{}"
    with pytest.raises(ModelNotFoundError, match="runs.resolve_model_spec"):
        ensure_hf_dir(run)
    with pytest.raises(ModelNotFoundError, match="no such directory"):
        ensure_hf_dir(storage.join(base, "nope"))
