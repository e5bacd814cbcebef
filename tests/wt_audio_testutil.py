"""Audio made by tests that both tiers need (unit and integration serve tests).

At ``tests/`` so either tier can import it: pytest puts this folder on ``sys.path`` for
``tests/conftest.py`` (rootdir-relative imports, no packages under ``tests/``).
"""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf

__all__ = ["silent_flac"]


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
