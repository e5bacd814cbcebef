"""Upload decoding: 415 material vs 400 material, resampling, and the long-audio splitter."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from whisper_tune.serve.audio import (
    EmptyAudioError,
    NotAudioError,
    _local_split,
    decode_audio_bytes,
    split_long_audio,
)


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


@pytest.mark.parametrize("splitter", [_local_split, split_long_audio])
def test_split_covers_everything_within_limit(splitter) -> None:
    sr = 16000
    rng = np.random.default_rng(1)
    x = (0.3 * rng.standard_normal(sr * 95)).astype(np.float32)
    x[sr * 27 : sr * 28] = 0.0  # a pause the splitter should prefer
    pieces = splitter(x, sr, 30.0)
    assert all(len(p) <= 30 * sr for _, p in pieces)
    assert np.array_equal(np.concatenate([p for _, p in pieces]), x)
    starts = [s for s, _ in pieces]
    assert starts[0] == 0.0 and starts == sorted(starts)
    assert 27.0 <= starts[1] <= 28.0
    assert splitter(x[: sr * 10], sr, 30.0)[0][1].shape[0] == sr * 10
