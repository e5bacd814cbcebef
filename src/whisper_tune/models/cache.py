"""Where converted models live, and how they get there safely.

Why: conversion takes seconds to minutes and every training, evaluation and serving
process calls ``load_model``; the converted HF dir is therefore cached. A cache entry must
never be half-written (a killed conversion would otherwise poison every later run), so
entries are built in a temporary sibling directory and renamed into place in one step.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from whisper_tune.paths import CACHE_ENV, cache_root

__all__ = ["CACHE_ENV", "atomic_dir", "cache_lock", "cache_root", "hf_cache_dir", "path_key"]


def hf_cache_dir(key: str) -> Path:
    """Cache location of the converted HF dir for ``key`` (a bundled name or a path key)."""
    return cache_root() / "hf" / key


def path_key(path: Path) -> str:
    """A stable, readable cache key for a local CTranslate2 dir."""
    resolved = str(path.resolve())
    digest = hashlib.sha256(resolved.encode()).hexdigest()[:12]
    stem = "".join(c if c.isalnum() or c in "._-" else "_" for c in path.resolve().name)[:40] or "model"
    return f"ct2-{stem}-{digest}"


@contextlib.contextmanager
def cache_lock(final: Path) -> Iterator[None]:
    """Serialise conversions of one entry across processes (e.g. all Ray workers loading
    the same model on a cold cache): the first converts, the others wait and reuse it."""
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX: atomic rename still prevents torn dirs
        yield
        return
    with open(final.parent / f".{final.name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Yield a temp dir next to ``final``; on success it replaces ``final`` atomically.

    On any exception the temp dir is removed and ``final`` is left as it was.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=final.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes 0700; a shared cache must stay readable
    try:
        yield tmp
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".old-{final.name}-", dir=final.parent))
            os.replace(final, old / "x")
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
