"""Decode any common audio file into the 16 kHz mono float32 Whisper expects.

Why: ``WhisperFeatureExtractor`` treats a 2-D array as a *batch* (stereo becomes two
utterances) and silently truncates anything over 30 s, and resampling quality decides
what the model hears. So decoding, down-mixing (before feature extraction), HQ
resampling with soxr and the sanity checks live in one place, and every failure is an
:class:`AudioError` that names the file and carries a stable ``reason`` key that the
data report counts.

Decoding uses soundfile (libsndfile >= 1.1 reads wav/flac/ogg/opus and mp3; the wheel's
libsndfile 1.2.2 does, checked in the tests).

Check policy (see ``AudioCheck``):

* empty (0 bytes / 0 samples), unreadable bytes, missing file -> skip (no audio at all);
* silent (RMS below ``silence_dbfs``, default -60 dBFS) -> **skip**: a transcript paired
  with silence teaches the model to hallucinate text;
* clipped (share of samples at full scale above ``clip_fraction``, default 0.1 %) ->
  **warning**, kept: clipped call-centre audio is common and still intelligible, and
  dropping it would bias training towards clean audio. The share is measured on the
  decoded samples before resampling (resampling overshoots and would hide/fake it).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from whisper_tune.errors import DataError

__all__ = [
    "SAMPLE_RATE",
    "AudioCheck",
    "AudioError",
    "AudioInfo",
    "decode_audio",
    "load_audio",
    "split_long_audio",
]

SAMPLE_RATE = 16000


class AudioError(DataError):
    """An audio file that cannot be used; ``reason`` is a report key, the message names the file."""

    def __init__(self, message: str, reason: str = "unreadable_audio", path: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.path = path


@dataclass(frozen=True)
class AudioCheck:
    """Thresholds for the per-clip checks (documented policy in the module docstring)."""

    silence_dbfs: float = -60.0
    clip_level: float = 0.999
    clip_fraction: float = 0.001
    max_duration_s: float = 30.0


@dataclass(frozen=True)
class AudioInfo:
    """What was measured while decoding; stored next to cached features."""

    duration: float
    orig_sr: int
    channels: int
    rms_dbfs: float
    clipped_fraction: float

    def problems(self, check: AudioCheck) -> tuple[str | None, list[str]]:
        """(skip reason or None, warning reasons)."""
        warnings: list[str] = []
        if self.clipped_fraction > check.clip_fraction:
            warnings.append("clipped")
        if self.rms_dbfs < check.silence_dbfs:
            return "silent", warnings
        if self.duration > check.max_duration_s:
            return "too_long", warnings
        return None, warnings


def _to_dbfs(rms: float) -> float:
    return 20.0 * math.log10(rms) if rms > 0 else -math.inf


def decode_audio(path: str | os.PathLike[str], sr: int = SAMPLE_RATE) -> tuple[np.ndarray, AudioInfo]:
    """Decode, measure, down-mix to mono and resample to ``sr`` (soxr HQ)."""
    import soundfile as sf
    import soxr

    p = Path(path)
    if not p.exists():
        raise AudioError(f"{p}: audio file does not exist", "missing_file", str(p))
    if not p.is_file():
        raise AudioError(f"{p}: not a file", "missing_file", str(p))
    if p.stat().st_size == 0:
        raise AudioError(f"{p}: empty file (0 bytes)", "empty_audio", str(p))
    try:
        data, orig_sr = sf.read(str(p), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises LibsndfileError/RuntimeError/TypeError...
        raise AudioError(f"{p}: cannot decode audio ({exc})", "unreadable_audio", str(p)) from exc
    if data.shape[0] == 0:
        raise AudioError(f"{p}: audio has no samples", "empty_audio", str(p))
    if not np.isfinite(data).all():
        raise AudioError(f"{p}: audio contains NaN/inf samples", "unreadable_audio", str(p))
    clipped = float(np.mean(np.abs(data) >= AudioCheck.clip_level))
    mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    rms = float(np.sqrt(np.mean(np.square(mono, dtype=np.float64))))
    if orig_sr != sr:
        mono = soxr.resample(mono, orig_sr, sr, quality="HQ")
    mono = np.ascontiguousarray(mono, dtype=np.float32)
    info = AudioInfo(
        duration=data.shape[0] / float(orig_sr),
        orig_sr=int(orig_sr),
        channels=int(data.shape[1]),
        rms_dbfs=_to_dbfs(rms),
        clipped_fraction=clipped,
    )
    return mono, info


def load_audio(path: str | os.PathLike[str], sr: int = SAMPLE_RATE) -> np.ndarray:
    """16 kHz (or ``sr``) mono float32 samples; raises :class:`AudioError` naming the file."""
    return decode_audio(path, sr)[0]


def split_long_audio(
    audio: np.ndarray, sr: int = SAMPLE_RATE, max_s: float = 30.0, *, min_s: float | None = None
) -> list[tuple[float, np.ndarray]]:
    """Cut ``audio`` into chunks of at most ``max_s`` seconds, each cut at the quietest
    20 ms frame in the last half of the window (so words are rarely split).

    Returns ``[(start_seconds, chunk), ...]``; the chunks concatenate back to ``audio``
    exactly (nothing dropped, nothing truncated). For transcription of long recordings;
    training rejects long clips instead, because their transcripts cannot be cut.
    """
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"split_long_audio expects mono audio, got shape {x.shape}")
    max_len = int(max_s * sr)
    if max_len <= 0:
        raise ValueError("max_s must be positive")
    if x.shape[0] <= max_len:
        return [(0.0, x)]
    lo_len = int((min_s if min_s is not None else max_s / 2) * sr)
    lo_len = min(max(lo_len, 1), max_len)
    frame = max(1, int(0.02 * sr))
    out: list[tuple[float, np.ndarray]] = []
    pos = 0
    n = x.shape[0]
    while n - pos > max_len:
        seg = x[pos + lo_len : pos + max_len]
        n_frames = max(1, seg.shape[0] // frame)
        energy = np.square(seg[: n_frames * frame].reshape(n_frames, frame), dtype=np.float64).mean(axis=1)
        # the latest among (near-)quietest frames keeps chunks long
        best = int(np.flatnonzero(energy <= energy.min() * 1.000001 + 1e-12)[-1])
        cut = pos + lo_len + best * frame + frame // 2
        cut = min(max(cut, pos + 1), pos + max_len)
        out.append((pos / sr, x[pos:cut]))
        pos = cut
    out.append((pos / sr, x[pos:]))
    return out
