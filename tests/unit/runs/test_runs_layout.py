"""Run directories: best-by-eval_wer selection, listing, export, and the runs/best CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from whisper_tune import runs
from whisper_tune.cli import main
from whisper_tune.errors import UserError


def _fake_run(root: Path, model_dir: Path, wers: dict[int, float | None], name: str = "r1") -> Path:
    run = root / name
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(
        f"model:\n  name: {model_dir}\ndata:\n  train: a.jsonl\n  eval: b.jsonl\n"
    )
    for step, wer in wers.items():
        ck = run / f"checkpoint_{step:06d}"
        shutil.copytree(model_dir, ck / "checkpoint")
        # HF Trainer writes trainer_state.json last: part of every complete checkpoint
        (ck / "checkpoint" / "trainer_state.json").write_text(json.dumps({"global_step": step}))
        metrics = {"step": step, "loss": 1.0}
        if wer is not None:
            metrics["eval_wer"] = wer
        (ck / "metrics.json").write_text(json.dumps(metrics))
    runs.write_status(run, "finished")
    return run


def test_select_best_is_min_eval_wer_then_later_step(tmp_path: Path, tiny_model_dir: Path) -> None:
    run = _fake_run(tmp_path, tiny_model_dir, {2: 0.5, 4: 0.7, 6: 0.5, 8: None})
    assert runs.select_best(run).step == 6
    assert [c.step for c in runs.list_checkpoints(run)] == [2, 4, 6, 8]
    (run / "checkpoint_000010").mkdir()  # half-written, no HF checkpoint inside: ignored
    assert len(runs.list_checkpoints(run)) == 4


def _half_written(run: Path, model_dir: Path, step: int, how: str) -> Path:
    """A checkpoint directory as a crash (or a copy/upload in progress) leaves it."""
    ck = run / f"checkpoint_{step:06d}"
    shutil.copytree(model_dir, ck / "checkpoint")
    (ck / "checkpoint" / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    (ck / "metrics.json").write_text(json.dumps({"step": step, "eval_wer": 0.01}))
    weights = ck / "checkpoint" / "model.safetensors"
    if how == "no-metrics":
        (ck / "metrics.json").unlink()
    elif how == "bad-metrics":
        (ck / "metrics.json").write_text('{"step": ')
    elif how == "no-trainer-state":
        (ck / "checkpoint" / "trainer_state.json").unlink()
    elif how == "truncated-weights":
        data = weights.read_bytes()
        weights.write_bytes(data[: len(data) // 2])
    elif how == "truncated-header":
        weights.write_bytes(weights.read_bytes()[:20])
    elif how == "no-weights":
        weights.unlink()
    elif how == "missing-shard":
        weights.rename(ck / "checkpoint" / "model-00001-of-00002.safetensors")
        index = {
            "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}
        }
        (ck / "checkpoint" / "model.safetensors.index.json").write_text(json.dumps(index))
    else:  # pragma: no cover - test bug
        raise AssertionError(how)
    return ck


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
    from whisper_tune.train.train_func import _local_resume_point

    run = _fake_run(tmp_path, tiny_model_dir, {2: 0.5, 4: 0.4})
    _half_written(run, tiny_model_dir, 6, how)
    assert [c.step for c in runs.list_checkpoints(run)] == [2, 4]
    assert runs.select_best(run).step == 4  # the broken one claims eval_wer 0.01: still not chosen
    (listed,) = runs.list_runs(tmp_path)
    assert listed.steps == 4 and listed.checkpoints == 2
    assert _local_resume_point(run) == str(run / "checkpoint_000004" / "checkpoint")


def test_complete_sharded_checkpoint_counts(tmp_path: Path, tiny_model_dir: Path) -> None:
    run = _fake_run(tmp_path, tiny_model_dir, {2: 0.5})
    hf = run / "checkpoint_000002" / "checkpoint"
    (hf / "model.safetensors").rename(hf / "model-00001-of-00001.safetensors")
    (hf / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"a": "model-00001-of-00001.safetensors"}})
    )
    assert [c.step for c in runs.list_checkpoints(run)] == [2]


def test_select_best_without_checkpoints_is_a_user_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no checkpoints"):
        runs.select_best(tmp_path / "empty")


def test_list_runs_and_cli(tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _fake_run(tmp_path, tiny_model_dir, {2: 0.4, 4: 0.3}, name="alpha")
    (tmp_path / "not-a-run").mkdir()
    listed = runs.list_runs(tmp_path)
    assert [r.name for r in listed] == ["alpha"]
    assert listed[0].best_eval_wer == pytest.approx(0.3) and listed[0].steps == 4
    assert listed[0].status == "finished"
    assert main(["runs", "--storage", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "alpha" in out and "0.3000" in out and "finished" in out
    assert main(["runs", "--storage", str(tmp_path / "nope")]) == 2


def test_export_best_is_self_contained(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    run = _fake_run(tmp_path, tiny_model_dir, {2: 0.9, 4: 0.2})
    assert main(["best", "r1", "--storage", str(tmp_path)]) == 0
    assert "checkpoint_000004" in capsys.readouterr().out
    best = run / "best"
    metrics = json.loads((best / "metrics.json").read_text())
    assert metrics["eval_wer"] == 0.2 and metrics["source_checkpoint"].endswith("checkpoint_000004")
    assert (best / "whisper_tune_config.yaml").is_file() and (best / "generation_config.json").is_file()
    model = WhisperForConditionalGeneration.from_pretrained(best)
    processor = WhisperProcessor.from_pretrained(best)
    feats = processor.feature_extractor(
        [0.0] * 16000, sampling_rate=16000, return_tensors="pt"
    ).input_features
    with torch.no_grad():
        out = model.generate(feats, max_new_tokens=3)
    assert out.shape[0] == 1
    # a second export replaces best/ (no stale files, no .tmp left behind)
    (best / "stale.txt").write_text("x")
    runs.export_best(run)
    assert not (best / "stale.txt").exists() and not (run / ".best.tmp").exists()


def test_best_unknown_run(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not found"):
        runs.resolve_run_dir("ghost", tmp_path)


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


def test_export_best_with_ct2(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _fake_run(tmp_path, tiny_model_dir, {2: 0.5})
    assert main(["best", str(run), "--ct2", "--quantization", "int8"]) == 0
    assert (run / "best" / "ct2" / "model.bin").is_file()
    assert "ctranslate2" in capsys.readouterr().out
