"""Serving: an OpenAI-compatible transcription service on Ray Serve, with a web page.

Why: the pipeline ends with a tuned model that people must be able to call from the
clients they already have (``/v1/audio/transcriptions``) and try in a browser. This package
holds only the HTTP and Ray Serve side (routes, limits, auth, response formats, the CLI);
the models, decoding and long-audio handling are ``whisper_tune.inference``, the same code
evaluation scores. Importing this package stays light: Ray, FastAPI and torch load only
when the app is used.
"""

from __future__ import annotations

from typing import Any

from whisper_tune.serve.formats import RESPONSE_FORMATS, render

__all__ = ["RESPONSE_FORMATS", "ServeOptions", "build_app", "load_serve_backend", "render"]


def __getattr__(name: str) -> Any:
    if name == "ServeOptions":  # no Ray, no FastAPI
        from whisper_tune.serve import options

        return options.ServeOptions
    if name in ("build_app", "load_serve_backend"):
        from whisper_tune.serve import app

        return getattr(app, name)
    raise AttributeError(name)
