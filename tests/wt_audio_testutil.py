"""Audio made by tests that both tiers need (unit and integration serve tests).

At ``tests/`` so either tier can import it: pytest puts this folder on ``sys.path`` for
``tests/conftest.py`` (rootdir-relative imports, no packages under ``tests/``).
"""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf

__all__ = ["silence", "silent_flac", "voiced"]

SR = 16000


def silent_flac(seconds: float, sr: int, channels: int) -> bytes:
    """FLAC of digital silence written block by block (never the whole signal in memory).

    FLAC compresses silence ~4000:1, so a few hundred KB can declare hours of decoded audio:
    the decompression bombs of the serve limits.
    """
    buf = io.BytesIO()
    block = np.zeros((sr * 10, channels), dtype=np.int16)
    with sf.SoundFile(buf, "w", sr, channels, "PCM_16", format="FLAC") as f:
        left = int(seconds * sr)
        while left > 0:
            f.write(block[: min(left, len(block))])
            left -= len(block)
    return buf.getvalue()


def voiced(seconds: float, seed: int = 0) -> np.ndarray:
    """A voiced, amplitude-modulated 150 Hz buzz with harmonics at 16 kHz: close enough to speech
    for Silero VAD."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(SR * seconds)) / SR
    buzz = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 12)) * (
        0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)
    )
    return (0.3 * buzz + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(SR * seconds), np.float32)
