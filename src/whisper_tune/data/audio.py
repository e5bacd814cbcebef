"""Decode any common audio file into the 16 kHz mono float32 Whisper expects.

Why: ``WhisperFeatureExtractor`` treats a 2-D array as a *batch* (stereo becomes two
utterances) and silently truncates anything over 30 s, and resampling quality decides
what the model hears. So decoding, down-mixing (before feature extraction), HQ
resampling with soxr and the sanity checks live in one place, and every failure is an
:class:`AudioError` that names the file and carries a stable ``reason`` key that the
data report counts. Training data (paths), evaluation (paths) and the server (uploaded
bytes) all decode through :func:`decode_audio`, so a clip read from disk and the same
file uploaded become the same samples.

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

import io
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from whisper_tune.errors import DataError

__all__ = [
    "SAMPLE_RATE",
    "AudioCheck",
    "AudioError",
    "AudioInfo",
    "AudioSource",
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


AudioSource = str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO
"""A path, the bytes of an audio file (an upload) or an open binary file."""


def _read_source(source: AudioSource, name: str | None) -> tuple[str, str | None, bytes | str]:
    """(label for messages, path or None, what soundfile reads); raises for missing/empty input."""
    if isinstance(source, bytes | bytearray | memoryview):
        label, data = name or "<bytes>", bytes(source)
    elif isinstance(source, str | os.PathLike):
        p = Path(source)
        label = name or str(p)
        if not p.exists():
            raise AudioError(f"{label}: audio file does not exist", "missing_file", str(p))
        if not p.is_file():
            raise AudioError(f"{label}: not a file", "missing_file", str(p))
        if p.stat().st_size == 0:
            raise AudioError(f"{label}: empty file (0 bytes)", "empty_audio", str(p))
        return label, str(p), str(p)
    elif hasattr(source, "read"):
        label = name or str(getattr(source, "name", "") or "<file>")
        data = source.read()
        if not isinstance(data, bytes | bytearray):
            raise AudioError(f"{label}: open the file in binary mode ('rb')", "unreadable_audio")
        data = bytes(data)
    else:
        raise TypeError(f"decode_audio expects a path, bytes or a binary file, got {type(source).__name__}")
    if not data:
        raise AudioError(f"{label}: empty file (0 bytes)", "empty_audio")
    return label, None, data


def decode_audio(
    source: AudioSource, sr: int = SAMPLE_RATE, *, name: str | None = None
) -> tuple[np.ndarray, AudioInfo]:
    """Decode, measure, down-mix to mono and resample to ``sr`` (soxr HQ).

    ``source``: a path, the bytes of a file or an open binary file; the same decoding for
    all three, so a clip scored from disk and the same clip uploaded to the server become
    the same samples. ``name`` labels messages (default: the path, ``<bytes>``, the file's name).
    Every failure is an :class:`AudioError`; ``reason`` is ``missing_file``, ``empty_audio``
    (0 bytes or 0 samples) or ``unreadable_audio`` (not audio, NaN/inf samples).
    """
    import soundfile as sf
    import soxr

    label, path, payload = _read_source(source, name)
    try:
        data, orig_sr = sf.read(
            payload if isinstance(payload, str) else io.BytesIO(payload), dtype="float32", always_2d=True
        )
    except Exception as exc:  # soundfile raises LibsndfileError/RuntimeError/TypeError...
        raise AudioError(
            f"{label}: not a supported audio file (cannot decode audio: {exc})", "unreadable_audio", path
        ) from exc
    if data.shape[0] == 0:
        raise AudioError(f"{label}: audio has no samples", "empty_audio", path)
    if not np.isfinite(data).all():
        raise AudioError(f"{label}: audio contains NaN/inf samples", "unreadable_audio", path)
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


def load_audio(source: AudioSource, sr: int = SAMPLE_RATE) -> np.ndarray:
    """16 kHz (or ``sr``) mono float32 samples; raises :class:`AudioError` naming the file."""
    return decode_audio(source, sr)[0]


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
