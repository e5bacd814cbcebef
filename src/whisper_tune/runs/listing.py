"""Finding runs: list a storage root, find a run by path, URI or name, turn a model spec into a model.

Why: ``whisper-tune runs``, ``best``, ``evaluate``, ``compare`` and ``serve`` all accept "a run"
in the forms users type (a directory, ``s3://bucket/runs/NAME``, a name under ``--storage``), and
a run used as a model means its ``best/``. These rules were copied into each command before;
here they are written once, on top of :class:`~whisper_tune.runs.layout.RunDir`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from whisper_tune import storage
from whisper_tune.errors import ModelNotFoundError, UserError
from whisper_tune.runs.layout import MODEL_FILES, RunDir, best_of

__all__ = [
    "RunInfo",
    "find_run",
    "list_runs",
    "resolve_model_spec",
    "resolve_run_dir",
    "run_of_model_spec",
]


@dataclass
class RunInfo:
    """One row of ``whisper-tune runs``."""

    name: str
    path: Path | str  # str: a URI (remote storage)
    status: str
    steps: int
    best_eval_wer: float | None
    best_checkpoint: Path | str | None
    checkpoints: int
    best_guard_wer: float | None = None  # real-speech guard WER of the best checkpoint
    base_guard_wer: float | None = None  # ... of the base model (step 0)
    guard_ok: bool | None = None  # the best checkpoint met the guard bound


def _num(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


def _under(root: str | os.PathLike[str], name: str) -> RunDir:
    return RunDir(storage.join(root, name) if storage.is_uri(root) else Path(root) / name)


def list_runs(root: str | os.PathLike[str]) -> list[RunInfo]:
    """All runs under a storage directory or URI (``s3://bucket/runs``), newest first.

    Remote runs are read in place: only each run's status.json and checkpoints' metrics.json.
    """
    if not (storage.is_dir(root) if storage.is_uri(root) else Path(root).is_dir()):
        raise UserError(f"storage {root}: no such directory")
    found: list[tuple[int, RunInfo]] = []
    for name in storage.listdir(root):
        run = _under(root, name)
        if not run.is_run():
            continue
        ckpts = run.checkpoints()
        best = best_of(ckpts) if ckpts else None
        info = RunInfo(
            name=name,
            path=run.path,
            status=str(run.read_status().get("status", "unknown")),
            steps=max((c.step for c in ckpts), default=0),
            best_eval_wer=best.eval_wer if best else None,
            best_checkpoint=best.path if best else None,
            checkpoints=len(ckpts),
            best_guard_wer=_num(best.metrics.get("guard_wer")) if best else None,
            base_guard_wer=_num(best.metrics.get("base_guard_wer")) if best else None,
            guard_ok=best.guard_ok if best else None,
        )
        found.append((run.mtime_ns(), info))
    return [info for _, info in sorted(found, key=lambda t: t[0], reverse=True)]


def find_run(run: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> RunDir:
    """A run given by path or URI, or by name under ``root`` (default ``runs``); UserError if none."""
    s = str(run)
    if storage.is_uri(s) or (root is not None and storage.is_uri(root) and not Path(s).exists()):
        found = RunDir(s) if storage.is_uri(s) else _under(str(root), s)
        if not found.is_run():
            raise UserError(
                f"run {found.path}: not found (no {RunDir.CONFIG_FILE} or {RunDir.STATUS_FILE} there)"
            )
        return found
    here = RunDir(s)
    if here.is_run():
        return here
    named = RunDir(Path(root or "runs") / s)
    if named.is_run():
        return named
    raise UserError(f"run {s!r}: not found (looked at {here.path} and {named.path})")


def resolve_run_dir(run: str | os.PathLike[str], storage_root: str | os.PathLike[str] | None = None) -> Path:
    """:func:`find_run` as a local directory: a remote run is copied without its checkpoints
    (config, status, reports, ``best/``, TensorBoard); ``whisper-tune best URI`` handles those."""
    return find_run(run, storage_root).local_copy()


def run_of_model_spec(spec: str) -> RunDir | None:
    """The run whose ``best/`` a model spec means (a run dir or URI that has one), else None."""
    run = RunDir(spec)
    names = run.names()
    if not names or names & set(MODEL_FILES) or not run.has_best():
        return None
    return run


def resolve_model_spec(spec: str, *, runs_root: str | os.PathLike[str] | None = None) -> str:
    """A run directory, run URI (or, with ``runs_root``, a run name under it) -> its ``best/``,
    as a local path; a model-dir URI -> its local copy; anything else is returned unchanged.

    A run without ``best/`` yet is a UserError naming ``whisper-tune best RUN``; a URI that is
    neither a model dir (``config.json`` or CTranslate2 ``model.bin``) nor a run is a
    ModelNotFoundError. Remote copies are cached (``storage.materialize``).
    """
    if storage.is_uri(spec):
        names = RunDir(spec).names()
        if not names:
            raise ModelNotFoundError(f"{spec}: no such directory (or it is empty)")
        if names & set(MODEL_FILES):
            return str(storage.materialize(spec))
        run = RunDir(spec)
        if run.has_best() or run.looks_like_run():
            return run.model_dir()
        raise ModelNotFoundError(
            f"{spec}: neither a model directory ({' or '.join(MODEL_FILES)}) nor a run directory with "
            f"{RunDir.BEST_DIR}/"
        )
    p = Path(spec).expanduser()
    if runs_root is not None and not p.exists() and "/" not in spec:
        named = _under(runs_root, spec)
        if named.is_run():
            return named.model_dir()
    run = RunDir(p)
    names = run.names()
    if not names or names & set(MODEL_FILES):
        return spec
    if run.has_best() or run.looks_like_run():
        return run.model_dir()
    return spec
