"""Where whisper-tune keeps its local caches.

Why: converted models, copies of remote runs and models, the staging mirrors of remote runs and
audio pulled from ``hf://`` data sets all live under one root, so one environment variable moves
(or isolates, in tests) every cache at once. It is resolved here only, so every caller agrees on
it (including ``~`` in the variable, which a shell does not expand inside quotes).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CACHE_ENV", "cache_root"]

CACHE_ENV = "WHISPER_TUNE_CACHE"


def cache_root() -> Path:
    """``$WHISPER_TUNE_CACHE`` (``~`` expanded) or ``~/.cache/whisper-tune``; not created here."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "whisper-tune"
