"""Fake run directories for the runs tests (a unique module name: no clash with other areas)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from whisper_tune.runs import RunDir


def fake_run(root: Path, model_dir: Path, wers: dict[int, float | None], name: str = "r1") -> Path:
    """A finished run with one complete checkpoint (the toy model) per step in ``wers``."""
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
    RunDir(run).write_status("finished")
    return run


def half_written(run: Path, model_dir: Path, step: int, how: str) -> Path:
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
