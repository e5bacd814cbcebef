"""One run directory, local or remote: its layout, checkpoints, the best-checkpoint rule, status.

Why: training writes a run directory, and listing, ``best``, evaluation, serving and resuming all
read it, on a local disk or in object storage (``s3://``, ``gs://``, any fsspec scheme). Before
this class each of them knew the file names, parsed checkpoint steps and picked "the best"
checkpoint on its own, slightly differently. :class:`RunDir` is the one place that knows the
layout, and :func:`best_of` the one rule for "best"; the file access goes through
``whisper_tune.storage``, so a path and a URI take the same code.

A checkpoint counts only when it is *complete* (:func:`checkpoint_complete`): a directory a crash
or an upload in progress left half-written is logged and ignored, so it never inflates a run's
steps, is never picked as best and is never resumed from.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from whisper_tune import storage
from whisper_tune.errors import UserError

__all__ = [
    "GUARD_OK",
    "SCORE",
    "SELECT_SCORE",
    "Checkpoint",
    "CheckpointInfo",
    "RunDir",
    "best_of",
    "checkpoint_complete",
    "hf_checkpoint_complete",
    "list_checkpoints",
    "read_status",
    "select_best",
    "write_status",
]

log = logging.getLogger(__name__)

SCORE = "eval_wer"  # the metric "best" is about (lower is better)
GUARD_OK = "guard_ok"  # training: whether the guard WER met base guard WER x (1 + run.guard_tolerance)
SELECT_SCORE = "select_score"  # eval_wer + 1 when guard_ok is false: what Ray keeps checkpoints by
TRAINER_STATE = "trainer_state.json"  # HF Trainer writes it last into a checkpoint
WEIGHT_FILES = ("model.safetensors", "adapter_model.safetensors", "pytorch_model.bin", "adapter_model.bin")
WEIGHT_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
MODEL_FILES = ("config.json", "model.bin")  # an HF model dir, or a CTranslate2 one

Location = Path | str  # a local path, or a URI (str)


def _join(base: Location, *parts: str) -> Location:
    return base.joinpath(*parts) if isinstance(base, Path) else storage.join(base, *parts)


def _names(path: Location) -> set[str]:
    """Names directly under ``path``; empty when it is missing, a file or unreadable."""
    try:
        return set(os.listdir(path) if isinstance(path, Path) else storage.listdir(path))
    except (OSError, ValueError):
        return set()


def _step_of(name: str, metrics: dict[str, Any]) -> int:
    """A checkpoint's step: ``metrics.json``'s ``step``, else the digits of ``checkpoint_<step>``."""
    step = metrics.get("step")
    if isinstance(step, int) and not isinstance(step, bool):
        return step
    digits = "".join(ch for ch in name.rsplit("_", 1)[-1] if ch.isdigit())
    return int(digits) if digits else 0


@dataclass
class Checkpoint:
    """One saved checkpoint of a run (local path or URI) and the metrics reported with it."""

    path: Location
    step: int
    metrics: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Checkpoint:
        """The checkpoint directory at ``path`` with its ``metrics.json`` (``{}`` if unreadable)."""
        loc: Location = str(path) if storage.is_uri(path) else Path(path)
        metrics = storage.read_json(_join(loc, RunDir.METRICS_FILE))
        return cls(loc, _step_of(cls._name_of(loc), metrics), metrics)

    @staticmethod
    def _name_of(loc: Location) -> str:
        return loc.name if isinstance(loc, Path) else loc.rstrip("/").rsplit("/", 1)[-1]

    @property
    def name(self) -> str:
        return self._name_of(self.path)

    @property
    def hf_dir(self) -> Location:
        """The HF Trainer checkpoint inside (``<checkpoint>/checkpoint``)."""
        return _join(self.path, RunDir.HF_CHECKPOINT)

    @property
    def eval_wer(self) -> float | None:
        value = self.metrics.get(SCORE)
        return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None

    @property
    def guard_ok(self) -> bool | None:
        """Whether the checkpoint met the run's real-speech guard bound (None: no guard scored)."""
        value = self.metrics.get(GUARD_OK)
        return bool(value) if isinstance(value, (bool, int, float)) else None

    def sort_key(self) -> tuple[int, float, int]:
        """Best first: checkpoints that meet the real-speech guard bound before those that do not
        (``guard_ok``, written by training when a guard is scored), then the lowest eval_wer (none
        counts as worst), then the later step (more training for the same WER). The one
        definition of "best"; :func:`best_of` applies it."""
        wer = self.eval_wer
        return (1 if self.guard_ok is False else 0, wer if wer is not None else math.inf, -self.step)


CheckpointInfo = Checkpoint  # the name before local and remote checkpoints were one class


def best_of(checkpoints: Sequence[Checkpoint]) -> Checkpoint:
    """THE best-checkpoint rule: guard-admissible first, then lowest eval_wer, ties (and no
    eval_wer) to the later step."""
    if not checkpoints:
        raise UserError("no checkpoints to choose the best from")
    return min(checkpoints, key=lambda c: c.sort_key())


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
        return size > 0 and zipfile.is_zipfile(path)  # torch.save's format; the directory is at the end
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return False


def hf_checkpoint_complete(hf_dir: Location) -> bool:
    """An HF Trainer checkpoint is complete when its trainer state (written last) parses and its
    weights (single file, or every shard an index names) are whole.

    "Whole" is checked byte-wise on a local disk. In remote storage a file that exists is whole
    (object stores write each object atomically), so presence is enough there; ``best`` checks
    the downloaded copy byte-wise again before exporting it.
    """
    names = _names(hf_dir)
    if TRAINER_STATE not in names or not storage.read_json(_join(hf_dir, TRAINER_STATE)):
        return False

    def whole(name: str) -> bool:
        return name in names and (not isinstance(hf_dir, Path) or _weights_file_complete(hf_dir / name))

    for index in WEIGHT_INDEXES:
        if index in names:
            weight_map = storage.read_json(_join(hf_dir, index)).get("weight_map")
            if not isinstance(weight_map, dict) or not weight_map:
                return False
            return all(whole(str(f)) for f in set(weight_map.values()))
    present = [n for n in WEIGHT_FILES if n in names]
    return bool(present) and all(whole(n) for n in present)


def checkpoint_complete(ckpt: Checkpoint) -> bool:
    """``metrics.json`` (written after the HF checkpoint is copied in) parses and the HF
    checkpoint inside is complete (:func:`hf_checkpoint_complete`)."""
    return bool(ckpt.metrics) and hf_checkpoint_complete(ckpt.hf_dir)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunDir:
    """A run directory at a local path or a URI; see the package docstring for the layout."""

    CONFIG_FILE = "config.yaml"  # resolved JobConfig (config.<time>.yaml: earlier ones, on resume)
    STATUS_FILE = "status.json"  # running | finished | failed (+ times, error, best)
    BEST_DIR = "best"  # self-contained HF model dir of the best checkpoint
    METRICS_FILE = "metrics.json"  # in each checkpoint, and in best/
    HF_CHECKPOINT = "checkpoint"  # the HF Trainer checkpoint inside a checkpoint_<step>/
    CHECKPOINT_PREFIX = "checkpoint_"
    FAST_PATH_FILE = "fast_path.json"  # what the training fast path chose (n_frames...)
    TENSORBOARD_DIR = "tensorboard"
    EVAL_DIR = "eval"  # evaluation reports of the run's model
    EVAL_DATA_REPORT_DIR = "eval_data_report"
    DATA_REPORT_FILES = ("data_report.json", "data_report.md")

    def __init__(self, path: str | os.PathLike[str] | RunDir) -> None:
        raw = path.path if isinstance(path, RunDir) else path
        s = str(raw)
        if storage.is_uri(s):
            self.path: Location = s.rstrip("/")
        else:
            self.path = Path(s[len("file://") :] if s.startswith("file://") else raw).expanduser()

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __str__(self) -> str:
        return str(self.path)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunDir) and str(self.path) == str(other.path)

    def __hash__(self) -> int:
        return hash(str(self.path))

    @property
    def is_remote(self) -> bool:
        return isinstance(self.path, str)

    @property
    def name(self) -> str:
        return Checkpoint._name_of(self.path)

    def join(self, *parts: str) -> Location:
        """A path (or URI) inside the run."""
        return _join(self.path, *parts)

    def names(self) -> set[str]:
        """Names directly in the run directory (empty if it does not exist)."""
        return _names(self.path)

    def exists(self) -> bool:
        """The directory exists (a run or not)."""
        return self.path.is_dir() if isinstance(self.path, Path) else storage.is_dir(self.path)

    def is_run(self) -> bool:
        """It holds a run's ``config.yaml`` or ``status.json``."""
        return bool(self.names() & {self.CONFIG_FILE, self.STATUS_FILE})

    def looks_like_run(self) -> bool:
        """A run, or at least a directory of checkpoints."""
        names = self.names()
        return bool(names & {self.CONFIG_FILE, self.STATUS_FILE}) or any(
            n.startswith(self.CHECKPOINT_PREFIX) for n in names
        )

    def has_best(self) -> bool:
        best = self.join(self.BEST_DIR)
        return best.is_dir() if isinstance(best, Path) else storage.is_dir(best)

    # ------------------------------------------------------------------ checkpoints

    @classmethod
    def checkpoint_name(cls, step: int) -> str:
        """``checkpoint_000042``: the directory name of the checkpoint for ``step``."""
        return f"{cls.CHECKPOINT_PREFIX}{step:06d}"

    def checkpoint_dir(self, step: int) -> Location:
        """Where a Ray/local checkpoint for ``step`` goes."""
        return self.join(self.checkpoint_name(step))

    def checkpoints(self) -> list[Checkpoint]:
        """Complete checkpoints, sorted by step; incomplete ones are logged and skipped."""
        out = []
        for name in sorted(self.names()):
            if not name.startswith(self.CHECKPOINT_PREFIX):
                continue
            ckpt = Checkpoint.load(self.join(name))
            if not checkpoint_complete(ckpt):
                log.info(
                    "%s: incomplete checkpoint (still being written, or interrupted): ignored", ckpt.path
                )
                continue
            out.append(ckpt)
        return sorted(out, key=lambda c: c.step)

    def best_checkpoint(self) -> Checkpoint:
        """:func:`best_of` the complete checkpoints; UserError if there are none."""
        ckpts = self.checkpoints()
        if not ckpts:
            raise UserError(f"run {self.path}: has no checkpoints yet")
        return best_of(ckpts)

    def latest_checkpoint(self) -> Checkpoint | None:
        """The complete checkpoint with the highest step (where training resumes), or None."""
        ckpts = self.checkpoints()
        return max(ckpts, key=lambda c: c.step) if ckpts else None

    # ------------------------------------------------------------------ small files and status

    def read_json(self, name: str) -> dict[str, Any]:
        """A JSON object file at the run root; {} when missing or unreadable."""
        return storage.read_json(self.join(name))

    def write_json(self, name: str, data: dict[str, Any]) -> None:
        """Write a JSON file at the run root (atomically: a temp file renamed over it)."""
        text = json.dumps(data, indent=2, default=str)
        target = self.join(name)
        if not isinstance(target, Path):
            storage.write_text(target, text)  # one object PUT: atomic
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)

    def write_status(self, status: str, **extra: Any) -> None:
        """Update ``status.json``: ``status``, ``extra`` fields, and who wrote it when."""
        data = self.read_json(self.STATUS_FILE)
        data.update(extra)
        data["status"] = status
        data["pid"] = os.getpid()
        data["host"] = socket.gethostname()
        data["updated"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.write_json(self.STATUS_FILE, data)

    def read_status(self) -> dict[str, Any]:
        """The run's status.json; a "running"/"preparing" run whose launcher process on this host
        is gone reads as "interrupted" (resume it by launching the same name again)."""
        data = self.read_json(self.STATUS_FILE)
        if data.get("status") in ("running", "preparing") and data.get("host") == socket.gethostname():
            pid = data.get("pid")
            if isinstance(pid, int) and not _pid_alive(pid):
                data["status"] = "interrupted"
        return data

    def mtime_ns(self) -> int:
        """When the run last changed, for "newest first": the directory's mtime on a local disk,
        else that of its status.json (or config.yaml): object-store prefixes have no mtime."""
        if isinstance(self.path, Path):
            return storage.mtime_ns(self.path)
        name = self.STATUS_FILE if self.STATUS_FILE in self.names() else self.CONFIG_FILE
        return storage.mtime_ns(self.join(name))

    # ------------------------------------------------------------------ local copies

    def local_copy(self) -> Path:
        """The run as a local directory: itself, or (remote) a cached copy without its checkpoints
        (config, status, reports, ``best/``, TensorBoard), refreshed when the remote changed."""
        if isinstance(self.path, Path):
            return self.path
        return storage.materialize(self.path, exclude_top=(self.CHECKPOINT_PREFIX,))

    def model_dir(self) -> str:
        """Local path of the run's ``best/`` (materialized when remote); UserError without one."""
        if not self.has_best():
            raise UserError(
                f"{self.path} is a training run without {self.BEST_DIR}/ yet: "
                f"run `whisper-tune best {self.path}` first"
            )
        return str(self.local_copy() / self.BEST_DIR)


# ---------------------------------------------------------------------- function forms
# Kept for callers written before RunDir (train_func, the train integration tests).


def list_checkpoints(run_dir: str | os.PathLike[str]) -> list[Any]:
    """``RunDir(run_dir).checkpoints()`` (typed loosely: its callers use ``c.path / name`` on a
    local run, where ``path`` is a Path)."""
    return RunDir(run_dir).checkpoints()


def select_best(run_dir: str | os.PathLike[str]) -> Checkpoint:
    """``RunDir(run_dir).best_checkpoint()``."""
    return RunDir(run_dir).best_checkpoint()


def read_status(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """``RunDir(run_dir).read_status()``."""
    return RunDir(run_dir).read_status()


def write_status(run_dir: str | os.PathLike[str], status: str, **extra: Any) -> None:
    """``RunDir(run_dir).write_status(status, **extra)``."""
    RunDir(run_dir).write_status(status, **extra)
