"""Helpers shared by the data tests (audio and manifests are generated in tmp dirs, never committed).

A uniquely named module rather than ``conftest`` so ``import`` cannot pick another area's conftest.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np


def speechlike(
    seconds: float, sr: int = 16000, channels: int = 1, amp: float = 0.3, seed: int = 0
) -> np.ndarray:
    """A non-silent, non-clipped signal: amplitude-modulated tones plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)
    x = amp * env * (np.sin(2 * np.pi * 220 * t) + 0.5 * np.sin(2 * np.pi * 700 * t)) / 1.5
    x = x + 0.01 * rng.standard_normal(t.shape)
    if channels > 1:
        x = np.stack([x * (1 - 0.2 * c) for c in range(channels)], axis=1)
    return x.astype(np.float32)


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    """rows: dicts (dumped as JSON) or bytes/str (written verbatim as one line)."""
    with open(path, "wb") as f:
        for r in rows:
            if isinstance(r, bytes):
                f.write(r + b"\n")
            elif isinstance(r, str):
                f.write(r.encode() + b"\n")
            else:
                f.write(json.dumps(r).encode() + b"\n")
    return path
