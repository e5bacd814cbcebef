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
    "restore_full_context",
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
    path: Path | str  # str: a URI (remote storage)
    status: str
    steps: int
    best_eval_wer: float | None
    best_checkpoint: Path | str | None
    checkpoints: int


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


TRAINER_STATE = "trainer_state.json"
_WEIGHT_FILES = ("model.safetensors", "adapter_model.safetensors", "pytorch_model.bin", "adapter_model.bin")
_WEIGHT_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")


def _weights_file_complete(path: Path) -> bool:
    """Whether a weights file is whole: safetensors header + every tensor's bytes, or a whole zip."""
    try:
        size = path.stat().st_size
        if path.suffix == ".safetensors":
            with path.open("rb") as fh:
                head = fh.read(8)
                if len(head) < 8:
                    return False
                n = int.from_bytes(head, "little")
                if n <= 0 or 8 + n > size:
                    return False
                header = json.loads(fh.read(n))
            if not isinstance(header, dict):
                return False
            ends = [
                int(v["data_offsets"][1])
                for k, v in header.items()
                if k != "__metadata__" and isinstance(v, dict) and "data_offsets" in v
            ]
            return 8 + n + max(ends, default=0) <= size
        import zipfile

        return size > 0 and zipfile.is_zipfile(path)  # torch.save's format; the directory is at the end
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return False


def _hf_checkpoint_complete(hf_ckpt: Path) -> bool:
    """An HF Trainer checkpoint is complete when its trainer state (written last) parses and its
    weights (single file, or every shard an index names) are whole."""
    if not _read_json(hf_ckpt / TRAINER_STATE):
        return False
    for name in _WEIGHT_INDEXES:
        index = hf_ckpt / name
        if index.is_file():
            weight_map = _read_json(index).get("weight_map")
            if not isinstance(weight_map, dict) or not weight_map:
                return False
            return all(_weights_file_complete(hf_ckpt / str(f)) for f in set(weight_map.values()))
    present = [hf_ckpt / n for n in _WEIGHT_FILES if (hf_ckpt / n).is_file()]
    return bool(present) and all(_weights_file_complete(f) for f in present)


def list_checkpoints(run_dir: str | Path) -> list[CheckpointInfo]:
    """Complete checkpoints under ``run_dir``, sorted by step.

    A checkpoint counts only when ``metrics.json`` (written after the HF checkpoint is copied in)
    parses and the HF checkpoint inside is complete (see :func:`_hf_checkpoint_complete`): a
    half-written directory (a crash or a copy/upload in progress) is logged and ignored, so it
    never inflates a run's steps, is never picked as best, and is never resumed from.
    """
    out = []
    for p in Path(run_dir).glob("checkpoint_*"):
        if not p.is_dir():
            continue
        metrics = _read_json(p / METRICS_FILE)
        if not metrics or not _hf_checkpoint_complete(p / HF_CHECKPOINT):
            log.info("%s: incomplete checkpoint (still being written, or interrupted): ignored", p)
            continue
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
    """All runs under a storage directory or URI (``s3://bucket/runs``), newest first."""
    from whisper_tune import storage as remote

    if remote.is_uri(storage):
        return _list_remote_runs(str(storage))
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
    """A run given by path, or by name under ``storage`` (default ``runs``).

    A URI (``run``, or ``storage`` + name) gives a local copy of the run without its checkpoints
    (config, status, reports, ``best/``, TensorBoard): ``whisper-tune best URI`` handles those.
    """
    from whisper_tune import storage as remote

    if remote.is_uri(run) or (storage is not None and remote.is_uri(storage) and not Path(run).exists()):
        uri = str(run) if remote.is_uri(run) else remote.join(str(storage), str(run))
        if not remote.is_dir(uri) or not set(remote.listdir(uri)) & {CONFIG_FILE, STATUS_FILE}:
            raise UserError(f"run {uri}: not found (no {CONFIG_FILE} or {STATUS_FILE} there)")
        return remote.materialize(uri, exclude_top=(remote.CHECKPOINT_PREFIX,))
    p = Path(run)
    if _is_run_dir(p):
        return p
    q = Path(storage or "runs") / str(run)
    if _is_run_dir(q):
        return q
    raise UserError(f"run {run!r}: not found (looked at {p} and {q})")


def _list_remote_runs(root: str) -> list[RunInfo]:
    """``list_runs`` on a URI: reads each run's status.json and checkpoints' metrics.json only."""
    from whisper_tune import storage as remote

    if not remote.is_dir(root):
        raise UserError(f"storage {root}: no such directory")
    found: list[tuple[float, RunInfo]] = []
    for name in remote.listdir(root):
        uri = remote.join(root, name)
        entries = set(remote.listdir(uri))
        if not entries & {CONFIG_FILE, STATUS_FILE}:
            continue
        ckpts = remote.remote_checkpoints(uri)
        best = min(ckpts, key=lambda c: c.sort_key()) if ckpts else None
        status = remote.read_json(remote.join(uri, STATUS_FILE))
        state = str(status.get("status", "unknown"))
        if state in ("running", "preparing") and status.get("host") == socket.gethostname():
            pid = status.get("pid")
            if isinstance(pid, int) and not _pid_alive(pid):
                state = "interrupted"
        loc = remote.resolve(remote.join(uri, STATUS_FILE if STATUS_FILE in entries else CONFIG_FILE))
        mtime = loc.filesystem.get_file_info(loc.path).mtime_ns or 0
        info = RunInfo(
            name=name,
            path=uri,
            status=state,
            steps=max((c.step for c in ckpts), default=0),
            best_eval_wer=best.eval_wer if best else None,
            best_checkpoint=best.uri if best else None,
            checkpoints=len(ckpts),
        )
        found.append((mtime, info))
    return [info for _, info in sorted(found, key=lambda t: t[0], reverse=True)]


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


FULL_POSITIONS = 1500  # Whisper's encoder positions for 30 s (3000 mel frames)
SHORT_DIR = "short"  # best/short: the model at its shortened training context (optional)


def restore_full_context(model: Any) -> int | None:
    """Give a short-context Whisper (``fastpath.shorten_encoder_context``) its full 30 s table back.

    Whisper's encoder position table is fixed sinusoids (HF creates it with
    ``requires_grad_(False)``, so fine-tuning never changes it): the rows the short model kept
    are its own, the rest are recomputed with transformers' ``sinusoids``. Afterwards
    ``config.max_source_positions`` is 1500 again, so plain ``from_pretrained`` +
    ``WhisperProcessor`` (padding to 30 s) + ``generate()`` pipelines accept the model.
    Returns the mel frames the model had (its training context), or None when already full.
    """
    import torch
    from transformers.models.whisper.modeling_whisper import sinusoids

    positions = int(model.config.max_source_positions)
    if positions >= FULL_POSITIONS:
        return None
    encoder = model.get_encoder()
    old = encoder.embed_positions
    full = sinusoids(FULL_POSITIONS, old.embedding_dim).to(device=old.weight.device, dtype=old.weight.dtype)
    own = old.weight.detach()
    drift = float((own - full[:positions]).abs().max()) if positions else 0.0
    if drift > 1e-2:
        log.warning(
            "encoder position table differs from Whisper's sinusoids by up to %.3g (trained?); "
            "its %d rows are kept, rows %d.. are sinusoids",
            drift,
            positions,
            positions,
        )
    full[:positions] = own
    new = torch.nn.Embedding(
        FULL_POSITIONS, old.embedding_dim, device=old.weight.device, dtype=old.weight.dtype
    )
    with torch.no_grad():
        new.weight.copy_(full)
    new.weight.requires_grad_(False)
    encoder.embed_positions = new
    encoder.max_source_positions = FULL_POSITIONS
    model.config.max_source_positions = FULL_POSITIONS
    if getattr(encoder, "config", None) is not None:
        encoder.config.max_source_positions = FULL_POSITIONS
    decoder = model.get_decoder()
    if hasattr(decoder, "max_source_positions"):
        decoder.max_source_positions = FULL_POSITIONS
    return 2 * positions


def _training_frames(run: Path) -> int | None:
    """Encoder context the run trained at, from its fast_path.json (written by the workers)."""
    value = _read_json(run / "fast_path.json").get("n_frames")
    return int(value) if isinstance(value, int) else None


def export_best(
    run_dir: str | Path,
    *,
    checkpoint: str | Path | None = None,
    ct2: bool = False,
    quantization: str | None = None,
    short: bool = False,
) -> Path:
    """Write ``run_dir/best``: the best (or given) checkpoint as a self-contained HF dir.

    Holds the model (LoRA adapters merged), processor, generation config, the run's
    config (``whisper_tune_config.yaml``) and the checkpoint's ``metrics.json``; with
    ``ct2`` also ``best/ct2`` via ``whisper_tune.models.export_ct2``. Replaces an older
    ``best/`` atomically. A model trained at a shortened encoder context is exported with
    the full 30 s context (:func:`restore_full_context`) so any Whisper pipeline loads it;
    ``metrics.json`` records ``train_encoder_frames``, and ``short`` also writes the
    short-context model to ``best/short/`` (its features must be cut to that many frames).
    Half-precision checkpoints (DeepSpeed bf16) are saved as float32.
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
    trained_dtype = str(next(model.parameters()).dtype).replace("torch.", "")
    if trained_dtype != "float32":
        # bf16/fp16 DeepSpeed checkpoints would load as bf16 and then reject the float32
        # features every WhisperProcessor returns; Whisper checkpoints are float32 on disk.
        import torch

        model = model.to(torch.float32)
    tmp = run / f".{BEST_DIR}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    if short and int(model.config.max_source_positions) < FULL_POSITIONS:
        model.save_pretrained(tmp / SHORT_DIR)
        processor.save_pretrained(tmp / SHORT_DIR)
    short_frames = restore_full_context(model)
    train_frames = short_frames or _training_frames(run) or 2 * FULL_POSITIONS
    model.save_pretrained(tmp)
    processor.save_pretrained(tmp)
    if (run / CONFIG_FILE).is_file():
        shutil.copy2(run / CONFIG_FILE, tmp / "whisper_tune_config.yaml")
    info = dict(chosen.metrics)
    info["source_checkpoint"] = str(chosen.path)
    info["train_encoder_frames"] = train_frames  # the context it was fine-tuned at (3000 = 30 s)
    info["export_encoder_frames"] = 2 * FULL_POSITIONS
    info["trained_dtype"] = trained_dtype  # weights are saved as float32 either way
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
