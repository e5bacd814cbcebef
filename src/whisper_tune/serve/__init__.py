"""Serving: an OpenAI-compatible transcription service on Ray Serve, with a web page.

Why: the pipeline ends with a tuned model that people must be able to call from the
clients they already have (``/v1/audio/transcriptions``) and try in a browser. Two
backends (Transformers, CTranslate2) share one interface, ``Backend.transcribe_batch``,
which the benchmark and the evaluate area can use in-process too. Importing this package
stays light: Ray, FastAPI and torch load only when the app or a backend is used.
"""

from __future__ import annotations

from typing import Any

from whisper_tune.serve.backends import (
    Backend,
    BackendOptions,
    CT2Backend,
    HFBackend,
    UnsupportedLanguageError,
    load_backend,
    resolve_model_dir,
)
from whisper_tune.serve.formats import RESPONSE_FORMATS, render
from whisper_tune.serve.types import Segment, Transcript

__all__ = [
    "Backend",
    "BackendOptions",
    "CT2Backend",
    "HFBackend",
    "RESPONSE_FORMATS",
    "Segment",
    "ServeOptions",
    "Transcript",
    "UnsupportedLanguageError",
    "build_app",
    "load_backend",
    "render",
    "resolve_model_dir",
]


def __getattr__(name: str) -> Any:
    if name in ("ServeOptions", "build_app"):
        from whisper_tune.serve import app

        return getattr(app, name)
    raise AttributeError(name)
