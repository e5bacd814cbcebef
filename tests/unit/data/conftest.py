"""Fixtures for the data tests: a real processor and audio written into tmp dirs.

No audio is committed: every clip (good or deliberately broken) is generated at test time.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from wt_data_testutil import speechlike, write_jsonl


@pytest.fixture(scope="session")
def processor() -> Any:
    from whisper_tune.models.random_init import make_processor

    return make_processor()


@pytest.fixture
def write_wav() -> Callable[..., Path]:
    import soundfile as sf

    def _write(
        path: Path,
        seconds: float = 1.0,
        sr: int = 16000,
        channels: int = 1,
        seed: int = 0,
        data: np.ndarray | None = None,
        **kw: Any,
    ) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        x = data if data is not None else speechlike(seconds, sr, channels, seed=seed)
        sf.write(str(path), x, sr, **kw)
        return path

    return _write


@pytest.fixture
def jsonl() -> Callable[[Path, list[Any]], Path]:
    return write_jsonl
