"""Run directories: layout, listing, best-checkpoint selection and export.

Why: a run directory is the unit users keep, compare and ship. Everything needed to
understand or reuse a run is in it, in plain files, so listing and exporting work
without Ray (and after the cluster is gone)::

    <storage>/<run-name>/
        config.yaml            resolved JobConfig (config.<time>.yaml: earlier ones, on resume)
        status.json            running | finished | failed (+ times, error, best)
        data_report.{json,md}  what was usable and why the rest was not
        checkpoint_<step>/     Ray checkpoints: checkpoint/ (HF Trainer checkpoint) + metrics.json
        tensorboard/           TensorBoard events
        best/                  self-contained HF model dir of the lowest eval_wer checkpoint
                               (+ processor, generation config, whisper_tune_config.yaml,
                               metrics.json); best/ct2/ optional CTranslate2 export
        eval/                  evaluation predictions and reports
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from whisper_tune.errors import UserError

__all__ = [
    "BEST_DIR",
    "CONFIG_FILE",
    "STATUS_FILE",
    "CheckpointInfo",
    "RunInfo",
    "export_best",
    "list_checkpoints",
    "list_runs",
    "read_status",
    "resolve_run_dir",
    "select_best",
    "write_status",
]

log = logging.getLogger(__name__)

CONFIG_FILE = "config.yaml"
STATUS_FILE = "status.json"
BEST_DIR = "best"
METRICS_FILE = "metrics.json"
HF_CHECKPOINT = "checkpoint"
SCORE = "eval_wer"


@dataclass
class CheckpointInfo:
    """One saved checkpoint of a run and the metrics reported with it."""

    path: Path
    step: int
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def eval_wer(self) -> float | None:
        value = self.metrics.get(SCORE)
        return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None

    def sort_key(self) -> tuple[float, int]:
        """Best first: lowest eval_wer, then the later step (more training for the same WER)."""
        wer = self.eval_wer
        return (wer if wer is not None else math.inf, -self.step)


@dataclass
class RunInfo:
    name: str
    path: Path
    status: str
    steps: int
    best_eval_wer: float | None
    best_checkpoint: Path | None
    checkpoints: int


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def list_checkpoints(run_dir: str | Path) -> list[CheckpointInfo]:
    """Checkpoints under ``run_dir`` that hold an HF checkpoint, sorted by step."""
    out = []
    for p in Path(run_dir).glob("checkpoint_*"):
        if not (p / HF_CHECKPOINT).is_dir():
            continue
        metrics = _read_json(p / METRICS_FILE)
        step = metrics.get("step")
        if not isinstance(step, int):
            digits = "".join(ch for ch in p.name.rsplit("_", 1)[-1] if ch.isdigit())
            step = int(digits) if digits else 0
        out.append(CheckpointInfo(p, int(step), metrics))
    return sorted(out, key=lambda c: c.step)


def select_best(run_dir: str | Path) -> CheckpointInfo:
    """The checkpoint with the lowest eval_wer (ties: the later step); UserError if none."""
    ckpts = list_checkpoints(run_dir)
    if not ckpts:
        raise UserError(f"run {run_dir}: has no checkpoints yet")
    return min(ckpts, key=lambda c: c.sort_key())


def write_status(run_dir: str | Path, status: str, **extra: Any) -> None:
    path = Path(run_dir) / STATUS_FILE
    data = _read_json(path)
    data.update(extra)
    data["status"] = status
    data["pid"] = os.getpid()
    data["host"] = socket.gethostname()
    data["updated"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    tmp.replace(path)


def read_status(run_dir: str | Path) -> dict[str, Any]:
    """The run's status.json; a "running"/"preparing" run whose launcher process on this host
    is gone reads as "interrupted" (resume it by launching the same name again)."""
    data = _read_json(Path(run_dir) / STATUS_FILE)
    if data.get("status") in ("running", "preparing") and data.get("host") == socket.gethostname():
        pid = data.get("pid")
        if isinstance(pid, int) and not _pid_alive(pid):
            data["status"] = "interrupted"
    return data


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_run_dir(p: Path) -> bool:
    return p.is_dir() and ((p / CONFIG_FILE).is_file() or (p / STATUS_FILE).is_file())


def list_runs(storage: str | Path) -> list[RunInfo]:
    """All runs under a storage directory, newest first."""
    root = Path(storage)
    if not root.is_dir():
        raise UserError(f"storage {root}: no such directory")
    runs = []
    for p in sorted(
        (q for q in root.iterdir() if _is_run_dir(q)), key=lambda q: q.stat().st_mtime, reverse=True
    ):
        ckpts = list_checkpoints(p)
        best = min(ckpts, key=lambda c: c.sort_key()) if ckpts else None
        status = read_status(p).get("status", "unknown")
        runs.append(
            RunInfo(
                name=p.name,
                path=p,
                status=str(status),
                steps=max((c.step for c in ckpts), default=0),
                best_eval_wer=best.eval_wer if best else None,
                best_checkpoint=best.path if best else None,
                checkpoints=len(ckpts),
            )
        )
    return runs


def resolve_run_dir(run: str | Path, storage: str | Path | None = None) -> Path:
    """A run given by path, or by name under ``storage`` (default ``runs``)."""
    p = Path(run)
    if _is_run_dir(p):
        return p
    q = Path(storage or "runs") / str(run)
    if _is_run_dir(q):
        return q
    raise UserError(f"run {run!r}: not found (looked at {p} and {q})")


def _load_checkpoint_model(hf_ckpt: Path, job: Any) -> Any:
    """The checkpoint's weights as a plain WhisperForConditionalGeneration (LoRA merged)."""
    from transformers import WhisperForConditionalGeneration

    if (hf_ckpt / "adapter_config.json").is_file():
        from peft import PeftModel

        from whisper_tune.train import _deps

        base, _ = _deps.load_model(job.model.name) if job is not None else (None, None)
        if base is None:
            raise UserError(
                f"{hf_ckpt}: LoRA checkpoint but the run has no config.yaml naming the base model"
            )
        return PeftModel.from_pretrained(base, str(hf_ckpt)).merge_and_unload()
    return WhisperForConditionalGeneration.from_pretrained(str(hf_ckpt))


def _load_processor(hf_ckpt: Path, job: Any) -> Any:
    from transformers import WhisperProcessor

    try:
        return WhisperProcessor.from_pretrained(str(hf_ckpt))
    except (OSError, ValueError, TypeError):
        if job is None:
            raise
        from whisper_tune.train import _deps

        return _deps.load_model(job.model.name)[1]


def export_best(
    run_dir: str | Path,
    *,
    checkpoint: str | Path | None = None,
    ct2: bool = False,
    quantization: str | None = None,
) -> Path:
    """Write ``run_dir/best``: the best (or given) checkpoint as a self-contained HF dir.

    Holds the model (LoRA adapters merged), processor, generation config, the run's
    config (``whisper_tune_config.yaml``) and the checkpoint's ``metrics.json``; with
    ``ct2`` also ``best/ct2`` via ``whisper_tune.models.export_ct2``. Replaces an older
    ``best/`` atomically.
    """
    run = Path(run_dir)
    if checkpoint is not None:
        cp = Path(checkpoint)
        metrics = _read_json(cp / METRICS_FILE)
        chosen = CheckpointInfo(cp, int(metrics.get("step", 0) or 0), metrics)
    else:
        chosen = select_best(run)
    hf_ckpt = chosen.path / HF_CHECKPOINT
    if not hf_ckpt.is_dir():
        raise UserError(f"{chosen.path}: no HF checkpoint inside (expected {hf_ckpt})")
    job = None
    if (run / CONFIG_FILE).is_file():
        from whisper_tune.train.config import load_job_config

        job = load_job_config(run / CONFIG_FILE)
    model = _load_checkpoint_model(hf_ckpt, job)
    processor = _load_processor(hf_ckpt, job)
    model.config.use_cache = True
    tmp = run / f".{BEST_DIR}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    processor.save_pretrained(tmp)
    if (run / CONFIG_FILE).is_file():
        shutil.copy2(run / CONFIG_FILE, tmp / "whisper_tune_config.yaml")
    info = dict(chosen.metrics)
    info["source_checkpoint"] = str(chosen.path)
    (tmp / METRICS_FILE).write_text(json.dumps(info, indent=2, default=str), encoding="utf-8")
    best = run / BEST_DIR
    if best.exists():
        shutil.rmtree(best)
    tmp.rename(best)
    log.info("best checkpoint %s (eval_wer %s) exported to %s", chosen.path.name, chosen.eval_wer, best)
    if ct2:
        from whisper_tune.models import export_ct2

        export_ct2(str(best), str(best / "ct2"), quantization=quantization)
    return best
