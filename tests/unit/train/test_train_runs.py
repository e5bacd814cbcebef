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
