"""Upload decoding: 415 material vs 400 material, resampling (the splitter is tested in tests/unit/data)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from whisper_tune.serve.audio import EmptyAudioError, NotAudioError, decode_audio_bytes


def wav_bytes(x: np.ndarray, sr: int, fmt: str = "WAV") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, sr, format=fmt)
    return buf.getvalue()


def test_stereo_44k_becomes_mono_16k() -> None:
    t = np.arange(44100) / 44100
    left = 0.5 * np.sin(2 * np.pi * 440 * t)
    x = np.stack([left, np.zeros_like(left)], axis=1).astype(np.float32)
    out = decode_audio_bytes(wav_bytes(x, 44100))
    assert out.dtype == np.float32 and out.ndim == 1
    assert abs(len(out) - 16000) <= 2
    assert 0.2 < np.abs(out).max() < 0.3  # down-mixed: half the left channel


def test_flac_decodes() -> None:
    x = (0.1 * np.random.default_rng(0).standard_normal(8000)).astype(np.float32)
    assert len(decode_audio_bytes(wav_bytes(x, 16000, "FLAC"))) == 8000


def test_not_audio_and_empty() -> None:
    with pytest.raises(NotAudioError, match="notes.txt: not a supported audio file"):
        decode_audio_bytes(b"hello, this is not audio" * 10, name="notes.txt")
    with pytest.raises(EmptyAudioError):
        decode_audio_bytes(b"")
    with pytest.raises(EmptyAudioError, match="no samples"):
        decode_audio_bytes(wav_bytes(np.zeros(0, dtype=np.float32), 16000))
