"""Runs in S3 (moto on 127.0.0.1): ``runs``, ``best``, ``evaluate``/``compare``/``serve`` specs by URI.

A tiny run dir is built locally (the random toy Whisper as two complete checkpoints plus a
half-uploaded one), uploaded to the bucket, and then only the URI is used: the listing must come
from the bucket's metadata, ``best`` must download the best checkpoint alone and push ``best/``
back, and the model specs must resolve ``s3://.../RUN`` to that ``best/``. The same rules through
fsspec's ``memory://`` (no server needed) are in ``tests/unit/runs/test_runs_remote.py``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from wt_cluster_helpers import S3Server

from whisper_tune import storage
from whisper_tune.cli import main

pytestmark = pytest.mark.integration


def _checkpoint(run: Path, step: int, wer: float, model: Path, *, complete: bool = True) -> None:
    ckpt = run / f"checkpoint_{step:06d}"
    shutil.copytree(model, ckpt / "checkpoint")
    if complete:
        history = [{"loss": 3.0 - step, "step": step}, {"eval_wer": wer, "step": step}]
        (ckpt / "checkpoint" / "trainer_state.json").write_text(json.dumps({"log_history": history}))
    (ckpt / "metrics.json").write_text(json.dumps({"step": step, "eval_wer": wer}))


def _manifest(d: Path) -> Path:
    rows = []
    t = np.arange(16000) / 16000
    for i, text in enumerate(["freeze my card", "account balance"]):
        sf.write(d / f"c{i}.wav", (0.1 * np.sin(2 * np.pi * 220 * (i + 1) * t)).astype(np.float32), 16000)
        rows.append({"audio_filepath": f"c{i}.wav", "text": text, "id": f"c{i}"})
    (d / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return d / "test.jsonl"


def test_runs_best_evaluate_against_s3(
    s3_env: S3Server,
    tiny_model_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("WHISPER_TUNE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    local = tmp_path / "local"
    run = local / "run1"
    run.mkdir(parents=True)
    (run / "status.json").write_text(json.dumps({"status": "finished", "host": "elsewhere"}))
    _checkpoint(run, 1, 0.5, tiny_model_dir)
    _checkpoint(run, 2, 0.25, tiny_model_dir)
    _checkpoint(run, 3, 0.01, tiny_model_dir, complete=False)  # upload cut short: never chosen
    (local / "run2").mkdir()
    (local / "run2" / "status.json").write_text(json.dumps({"status": "failed"}))
    (local / "not-a-run").mkdir()
    (local / "not-a-run" / "x.txt").write_text("x")
    root = f"s3://{s3_env.bucket}/remote-{tmp_path.name}/runs"
    storage.upload_dir(local, root)
    run_uri = storage.join(root, "run1")

    # runs: from the bucket's metadata
    assert main(["runs", "--storage", root, "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == {"run1", "run2"}
    assert rows["run1"]["status"] == "finished" and rows["run1"]["checkpoints"] == 2
    assert rows["run1"]["best_eval_wer"] == 0.25 and rows["run1"]["steps"] == 2
    assert rows["run1"]["path"] == run_uri
    assert rows["run2"] == {**rows["run2"], "status": "failed", "checkpoints": 0, "best_eval_wer": None}

    # a run without best/ yet: the specs say which command makes it
    data = _manifest(tmp_path)
    assert main(["evaluate", "--model", run_uri, "--data", str(data), "--out", str(tmp_path / "e0")]) == 2
    assert f"whisper-tune best {run_uri}" in capsys.readouterr().err

    # best: downloads the best complete checkpoint only, pushes best/ back
    fetched: list[str] = []
    real_download = storage.download_dir

    def spy(src: Any, dst: Any) -> Path:
        fetched.append(str(src))
        return real_download(src, dst)

    monkeypatch.setattr(storage, "download_dir", spy)
    assert main(["best", run_uri]) == 0
    out = capsys.readouterr().out
    assert fetched == [storage.join(run_uri, "checkpoint_000002")]
    assert f"pushed to:        {run_uri}/best" in out
    prefix = f"remote-{tmp_path.name}/runs/run1/best/"
    keys = s3_env.keys(prefix)
    assert prefix + "model.safetensors" in keys and prefix + "config.json" in keys
    best_metrics = json.loads(storage.read_text(storage.join(run_uri, "best", "metrics.json")))
    assert best_metrics["source_checkpoint"] == storage.join(run_uri, "checkpoint_000002")
    assert best_metrics["eval_wer"] == 0.25
    work = [p for p in (tmp_path / "cache" / "remote-runs").iterdir()]
    assert len(work) == 1 and not list(work[0].glob("checkpoint_*"))  # download removed after export

    # evaluate / compare / serve / models specs: the URI means RUN/best, copied once
    assert main(["evaluate", "--model", run_uri, "--data", str(data), "--out", str(tmp_path / "e1"),
                 "--max-new-tokens", "4", "--device", "cpu"]) == 0  # fmt: skip
    metrics = json.loads((tmp_path / "e1" / "metrics.json").read_text())
    assert metrics["utterances"] == 2 and metrics["skipped"] == 0 and metrics["model"] == run_uri
    assert main(["compare", "--base", str(tiny_model_dir), "--tuned", run_uri, "--data", str(data),
                 "--out", str(tmp_path / "c1"), "--max-new-tokens", "4", "--device", "cpu"]) == 0  # fmt: skip
    assert "WER difference" in capsys.readouterr().out
    report = json.loads((tmp_path / "c1" / "report.json").read_text())
    run_copy = Path(report["run_dir"])  # the run's local copy (for the training curves)
    assert run_copy.parent == tmp_path / "cache" / "remote" and (run_copy / "best" / "config.json").is_file()

    from whisper_tune.inference import resolve_model_dir
    from whisper_tune.models import ensure_hf_dir
    from whisper_tune.runs import resolve_model_spec

    hf = Path(ensure_hf_dir(resolve_model_spec(run_uri)))  # models take model dirs: runs resolve first
    served = Path(resolve_model_dir(run_uri))
    assert hf == served and hf.name == "best" and (hf / "model.safetensors").is_file()
    assert not list(hf.parent.glob("checkpoint_*"))  # the run copy leaves checkpoints in the bucket
    assert json.loads((hf / "metrics.json").read_text())["eval_wer"] == 0.25

    # best/ exported again from another checkpoint: the cached copy is refreshed, not reused
    assert main(["best", run_uri, "--checkpoint", "checkpoint_000001"]) == 0
    capsys.readouterr()
    again = Path(ensure_hf_dir(resolve_model_spec(run_uri)))
    assert json.loads((again / "metrics.json").read_text())["eval_wer"] == 0.5

    # a model dir URI (not a run) and a missing one
    toy_uri = f"s3://{s3_env.bucket}/remote-{tmp_path.name}/models/toy"
    storage.upload_dir(tiny_model_dir, toy_uri)
    assert (Path(ensure_hf_dir(toy_uri)) / "config.json").is_file()
    assert main(["evaluate", "--model", storage.join(root, "nope"), "--data", str(data)]) == 2
    assert "no such directory" in capsys.readouterr().err
