"""Upload decoding: 415 vs 400 vs 413 material, resampling, decompression bombs (the splitter is
tested in tests/unit/data).

The bombs are made here, as the issue's probe made them: FLAC compresses silence ~4000:1, so a
476 KB file declares 20 minutes of 8-channel 48 kHz audio (1.8 GB decoded)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from whisper_tune.data.audio import AudioError, DecodeLimits, decode_audio
from whisper_tune.serve.audio import AudioTooLargeError, EmptyAudioError, NotAudioError, decode_audio_bytes
from wt_audio_testutil import silent_flac


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


def test_not_audio_message_has_no_python_repr() -> None:
    with pytest.raises(NotAudioError) as info:
        decode_audio_bytes(b"hello, this is not audio" * 10, name="notes.txt")
    message = str(info.value)
    assert "object at 0x" not in message and "<_io" not in message, message
    assert "Format not recognised" in message  # libsndfile's reason is kept


@pytest.fixture(scope="module")
def bomb_8ch() -> bytes:
    return silent_flac(20 * 60, 48000, 8)


def test_8_channel_bomb_is_refused_from_its_header(bomb_8ch: bytes) -> None:
    import time

    assert len(bomb_8ch) < 1_000_000  # under a megabyte on the wire ...
    limits = DecodeLimits()
    assert limits.max_duration_s == 7200 and limits.max_decoded_mb == pytest.approx(460.8)
    t0 = time.perf_counter()
    with pytest.raises(AudioTooLargeError) as info:
        decode_audio_bytes(bomb_8ch, name="bomb.flac", limits=limits)
    took = time.perf_counter() - t0
    message = str(info.value)
    assert info.value.reason == "audio_too_large"
    assert "bomb.flac" in message and "1843 MB" in message and "limit of 460.8 MB" in message, message
    assert "1200 s, 8 channels at 48000 Hz" in message
    assert took < 0.5, took  # nothing was decoded: the header said it all


def test_long_mono_silence_is_refused_by_duration() -> None:
    three_hours = silent_flac(3 * 3600, 16000, 1)
    with pytest.raises(
        AudioTooLargeError, match=r"long\.flac: the file declares 10800 s of audio, over the limit of 7200 s"
    ):
        decode_audio_bytes(three_hours, name="long.flac", limits=DecodeLimits())
    # the same file under a higher limit decodes (the limit is the only reason it was refused)
    ten_min = silent_flac(600, 16000, 1)
    with pytest.raises(AudioTooLargeError, match="over the limit of 300 s"):
        decode_audio_bytes(ten_min, limits=DecodeLimits(max_duration_s=300))
    assert len(decode_audio_bytes(ten_min, limits=DecodeLimits(max_duration_s=601))) == 600 * 16000


def test_limits_without_a_header_are_checked_per_block() -> None:
    """What decoding enforces when the header gives no length: the running count, per block."""
    limits = DecodeLimits(max_duration_s=60, max_decoded_mb=10)
    limits.check("x.flac", 59 * 16000, 16000, 1, declared=False)  # under both: no error
    with pytest.raises(AudioError, match="x.flac: decoding reached 61 s of audio, over the limit of 60 s"):
        limits.check("x.flac", 61 * 16000, 16000, 1, declared=False)
    with pytest.raises(AudioError, match="decoding reached 15 MB of decoded samples"):
        limits.check("x.flac", 48000 * 10, 48000, 8, declared=False)
    with pytest.raises(ValueError, match="max_duration_s must be a positive number"):
        DecodeLimits(max_duration_s=0)


def test_a_header_that_claims_less_decodes_no_more_than_it_claims() -> None:
    """A lying FLAC header (total samples patched down) cannot smuggle more samples past the
    header check: decoding stops at the declared length."""
    buf = io.BytesIO()
    x = (0.1 * np.random.default_rng(0).standard_normal(16000 * 5)).astype(np.float32)
    sf.write(buf, x, 16000, format="FLAC")
    data = bytearray(buf.getvalue())
    assert data[:4] == b"fLaC"
    at = 8 + 10  # STREAMINFO after the marker and its block header; 64 bits: rate|channels|bits|total
    field = int.from_bytes(data[at : at + 8], "big")
    assert field & ((1 << 36) - 1) == len(x)
    data[at : at + 8] = ((field & ~((1 << 36) - 1)) | 16000).to_bytes(8, "big")
    out, info = decode_audio(bytes(data), limits=DecodeLimits(max_duration_s=2))
    assert len(out) == 16000 and info.duration == pytest.approx(1.0)


def test_no_limits_by_default_and_bit_identical_to_a_one_shot_read() -> None:
    """Training and evaluation pass no limits; the samples are exactly what ``sf.read`` returns."""
    rng = np.random.default_rng(1)
    for fmt, sub, sr, ch in (("WAV", "PCM_16", 44100, 2), ("MP3", "MPEG_LAYER_III", 16000, 1)):
        x = np.clip(0.3 * rng.standard_normal((sr * 3, ch)), -1, 1).astype(np.float32)
        buf = io.BytesIO()
        sf.write(buf, x, sr, format=fmt, subtype=sub)
        ref, _ = sf.read(io.BytesIO(buf.getvalue()), dtype="float32", always_2d=True)
        out, info = decode_audio(buf.getvalue(), sr)
        mono = ref.mean(axis=1, dtype=np.float32) if ch > 1 else ref[:, 0]
        assert np.array_equal(out, mono), fmt
        assert info.clipped_fraction == pytest.approx(float(np.mean(np.abs(ref) >= 0.999)))
