"""Uploaded bytes -> 16 kHz mono float32, and long audio -> <= 30 s windows.

Why here: the server receives bytes, not paths, and must tell "not audio" (HTTP 415)
from "audio but empty" (HTTP 400). Decoding is libsndfile (WAV, FLAC, OGG/Vorbis/Opus,
MP3 with libsndfile >= 1.1) + soxr, the same stack as ``whisper_tune.data``. Long audio
is cut on silence by ``whisper_tune.data.split_long_audio`` when that is available; a
small local splitter with the same contract is kept so serving never depends on the
training-data module being importable.
"""

from __future__ import annotations

import io

import numpy as np

__all__ = ["NotAudioError", "EmptyAudioError", "decode_audio_bytes", "split_long_audio", "SAMPLE_RATE"]

SAMPLE_RATE = 16_000


class NotAudioError(ValueError):
    """The bytes are not a decodable audio file."""


class EmptyAudioError(ValueError):
    """The file decoded but holds no samples."""


def decode_audio_bytes(data: bytes, sr: int = SAMPLE_RATE, *, name: str = "upload") -> np.ndarray:
    """Decode an audio file held in memory to mono float32 at ``sr``."""
    import soundfile as sf

    if not data:
        raise EmptyAudioError(f"{name}: the file is empty")
    try:
        audio, file_sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile raises LibsndfileError/RuntimeError/TypeError by format
        raise NotAudioError(f"{name}: not a supported audio file ({exc})") from exc
    if audio.shape[0] == 0:
        raise EmptyAudioError(f"{name}: the audio holds no samples")
    mono = audio.mean(axis=1) if audio.shape[1] > 1 else audio[:, 0]
    if file_sr != sr:
        import soxr

        mono = soxr.resample(mono, file_sr, sr)
    mono = np.ascontiguousarray(mono, dtype=np.float32)
    if not np.all(np.isfinite(mono)):
        raise NotAudioError(f"{name}: the audio holds NaN or infinite samples")
    return mono


def _local_split(audio: np.ndarray, sr: int, max_s: float) -> list[tuple[float, np.ndarray]]:
    """Cut at the quietest 50 ms in the last quarter of each window (never mid-word if avoidable)."""
    max_n = int(max_s * sr)
    if len(audio) <= max_n:
        return [(0.0, audio)]
    hop = int(0.05 * sr)
    out: list[tuple[float, np.ndarray]] = []
    start = 0
    while start < len(audio):
        if len(audio) - start <= max_n:
            out.append((start / sr, audio[start:]))
            break
        lo = start + (max_n * 3) // 4
        hi = start + max_n - hop
        region = audio[lo : hi + hop]
        n_frames = max(1, (hi - lo) // hop)
        energies = [float(np.mean(region[i * hop : (i + 1) * hop] ** 2)) for i in range(n_frames)]
        cut = lo + int(np.argmin(energies)) * hop + hop // 2
        out.append((start / sr, audio[start:cut]))
        start = cut
    return out


def split_long_audio(
    audio: np.ndarray, sr: int = SAMPLE_RATE, max_s: float = 30.0
) -> list[tuple[float, np.ndarray]]:
    """Windows of at most ``max_s`` seconds as ``(start_seconds, samples)``, in order."""
    try:
        from whisper_tune.data.audio import split_long_audio as data_split
    except ImportError:  # data area not installed/landed: use the local splitter
        data_split = None  # type: ignore[assignment]
    if data_split is not None:
        pieces = data_split(audio, sr=sr, max_s=max_s)
        if all(len(p) <= int(max_s * sr) for _, p in pieces):
            return [(float(s), np.asarray(p, dtype=np.float32)) for s, p in pieces]
    return _local_split(audio, sr, max_s)
