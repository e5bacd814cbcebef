"""Who is talking when on a multichannel recording: each channel's power per short frame.

Why: a bank's call recordings are usually stereo, the agent on one channel and the customer on
the other. Decoded as their mono mix, the channels still say which side is speaking, which is
where a speaker's turn starts and ends (``inference.speech_times`` uses it to cut and trim
segments at turn changes). A level per channel per ``LEVEL_FRAME_S`` is all that needs, so the
file is read in blocks with soundfile (as ``evaluate.pipeline`` reads one side of a call) and
never held whole: a 3-hour stereo call at 8 kHz gives 2 x 540,000 floats. No library returns
per-channel frame energies of a file without decoding it whole (librosa's ``rms`` takes an
array), so the loop is written here.

A mono file, or a format soundfile cannot read (MP3 on old libsndfile, AAC, ...), has no
levels: ``None``, and the caller goes on with the mix alone.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np

__all__ = ["LEVEL_FRAME_S", "channel_levels"]

log = logging.getLogger(__name__)

LEVEL_FRAME_S = 0.02  # 20 ms frames: finer than the VAD's 150 ms pauses, coarse enough to be small


def channel_levels(source: str | Path | bytes, frame_s: float = LEVEL_FRAME_S) -> np.ndarray | None:
    """Mean power per ``frame_s`` frame of each channel of ``source`` (a path or a file's
    bytes): a ``(channels, frames)`` float32 array (frame ``k`` covers ``[k, k+1) * frame_s``
    seconds), or None for a mono recording or one soundfile cannot read."""
    import soundfile as sf

    where = "upload" if isinstance(source, bytes) else str(source)
    try:
        with sf.SoundFile(io.BytesIO(source) if isinstance(source, bytes) else str(source)) as f:
            if f.channels < 2:
                return None
            hop = max(1, round(f.samplerate * frame_s))
            parts: list[np.ndarray] = []
            rest = np.zeros((0, f.channels), np.float32)
            for block in f.blocks(blocksize=hop * 4096, dtype="float32", always_2d=True):
                x = np.concatenate([rest, block]) if rest.size else block
                n = x.shape[0] // hop
                parts.append((x[: n * hop].reshape(n, hop, -1) ** 2).mean(axis=1))
                rest = x[n * hop :]
            if rest.shape[0]:
                parts.append((rest**2).mean(axis=0, keepdims=True))
    except (RuntimeError, OSError, ValueError) as exc:  # soundfile's LibsndfileError is a RuntimeError
        log.debug("%s: no channel levels (%s)", where, exc)
        return None
    if not parts:
        return None
    return np.ascontiguousarray(np.concatenate(parts).T, dtype=np.float32)
