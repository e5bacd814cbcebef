"""Real compressed audio for the decoding tests, encoded by PyAV (FFmpeg) from a real clip.

At ``tests/`` so the unit data tests and the serve integration tests share it. The wheel's
FFmpeg has encoders for AAC (``aac``), Opus (``libopus``) and MP3 (``mp3``/``libmp3lame``);
its Vorbis encoder is FFmpeg's experimental one, which PyAV cannot unlock, so Ogg Vorbis is
written by libsndfile instead (``soundfile``), Ogg Opus by PyAV.
"""

from __future__ import annotations

import io
import shutil
import subprocess

import numpy as np
import pytest

__all__ = ["CONTAINERS", "align_and_snr", "encode", "espeak_wav"]

# name -> (codec, container format, encoder rate or None = the clip's rate)
CONTAINERS: dict[str, tuple[str, str, int | None]] = {
    "m4a": ("aac", "ipod", None),  # AAC in MP4, what phones record
    "mp4": ("aac", "mp4", None),
    "webm": ("libopus", "webm", 48000),  # what browsers' MediaRecorder uploads
    "opus.ogg": ("libopus", "ogg", 48000),
    "mp3": ("mp3", "mp3", None),
}


def espeak_wav(text: str) -> bytes:
    """A real spoken clip (espeak-ng, 22.05 kHz mono WAV); skips when espeak-ng is absent."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    return subprocess.run(
        ["espeak-ng", "-v", "en-us", "--stdout", text], check=True, capture_output=True
    ).stdout


def encode(x: np.ndarray, sr: int, kind: str) -> bytes:
    """Mono float32 ``x`` at ``sr`` encoded as ``kind`` (a key of CONTAINERS, or ``vorbis.ogg``)."""
    if kind == "vorbis.ogg":
        import soundfile as sf

        buf = io.BytesIO()
        sf.write(buf, x, sr, format="OGG", subtype="VORBIS")
        return buf.getvalue()
    import av

    codec, fmt, rate = CONTAINERS[kind]
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=rate or sr, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.asarray(x, np.float32)[None, :], format="flt", layout="mono")
        frame.sample_rate = sr
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def align_and_snr(y: np.ndarray, ref: np.ndarray) -> tuple[int, float, float]:
    """(lag of ``y`` behind ``ref`` in samples, SNR in dB, correlation) over the aligned overlap.

    Lossy encoders add a delay (AAC's 1024 priming samples when the muxer writes no edit list),
    so the decoded clip is aligned by cross-correlation before it is compared.
    """
    n = len(y) + len(ref)
    xc = np.fft.irfft(np.fft.rfft(y, n) * np.conj(np.fft.rfft(ref, n)), n)
    lag = int(np.argmax(xc))
    lag = lag if lag < n // 2 else lag - n
    a, b = (y[lag:], ref) if lag >= 0 else (y, ref[-lag:])
    m = min(len(a), len(b))
    a, b = a[:m].astype(np.float64), b[:m].astype(np.float64)
    snr = 10 * np.log10(np.sum(b**2) / max(np.sum((a - b) ** 2), 1e-20))
    return lag, float(snr), float(np.corrcoef(a, b)[0, 1])
