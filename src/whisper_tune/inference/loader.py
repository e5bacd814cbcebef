"""A model spec -> a loaded backend: ``load_backend(spec, "hf" | "ct2", opts)``.

Why: the server, evaluation and the benchmarks name models the same way (bundled name, HF
dir, run dir, CTranslate2 dir, URI), and the CTranslate2 backend needs an exported copy of
an HF model, made once and cached by content stamp, so both callers run the same artifact.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from whisper_tune.errors import ModelNotFoundError
from whisper_tune.paths import cache_root
from whisper_tune.runs import resolve_model_spec

from .backend import Backend
from .ct2 import CT2Backend
from .device import check_backend_kind
from .hf import HFBackend
from .options import BackendOptions

__all__ = ["ct2_dir_for", "display_name", "load_backend", "resolve_model_dir"]

log = logging.getLogger(__name__)


def resolve_model_dir(spec: str) -> str:
    """A run dir means its ``best/``; a URI is copied locally first (``runs.resolve_model_spec``);
    anything else is passed on unchanged."""
    return resolve_model_spec(spec)


def ct2_dir_for(spec: str) -> Path:
    """The CTranslate2 copy of ``spec``: as is, its ``ct2/`` subdir, or an export cached by content stamp."""
    from whisper_tune.models import ensure_hf_dir, export_ct2, is_ct2_dir

    p = Path(spec).expanduser()
    if p.is_dir() and is_ct2_dir(p):
        return p
    if p.is_dir() and is_ct2_dir(p / "ct2"):
        return p / "ct2"
    hf_dir = ensure_hf_dir(spec)
    hp = Path(hf_dir)
    if not hp.is_dir():
        raise ModelNotFoundError(f"{spec}: no local model directory to export to CTranslate2 (got {hf_dir})")
    stamp = "|".join(
        f"{f.name}:{f.stat().st_size}:{int(f.stat().st_mtime)}" for f in sorted(hp.iterdir()) if f.is_file()
    )
    key = hashlib.sha1(f"{hp.resolve()}|{stamp}".encode()).hexdigest()[:16]
    out = cache_root() / "serve-ct2" / key
    if not is_ct2_dir(out):
        log.info("exporting %s to CTranslate2 at %s", hf_dir, out)
        export_ct2(hp, out)  # writes atomically
    return out


def load_backend(
    spec: str, kind: str = "hf", opts: BackendOptions | None = None, model_name: str | None = None
) -> Backend:
    """Load ``spec`` (bundled name, HF dir, run dir, CTranslate2 dir) into the ``kind`` backend."""
    check_backend_kind(kind)
    opts = opts or BackendOptions()
    src = resolve_model_dir(spec)
    name = model_name or display_name(spec)
    if kind == "hf":
        return HFBackend.from_spec(src, name, opts)
    return CT2Backend(ct2_dir_for(src), name, opts)


def display_name(spec: str) -> str:
    """What clients and reports call the model: ``RUN/best`` for a run, the dir name, or the spec."""
    p = Path(spec).expanduser()
    if p.exists():
        parts = [x for x in p.resolve().parts if x]
        if parts and parts[-1] in ("best", "ct2") and len(parts) > 1:
            return "/".join(parts[-2:])
        return parts[-1] if parts else spec
    return spec
