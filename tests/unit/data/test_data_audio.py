"""Audio decoding, down-mix, resampling, checks and long-audio splitting."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from whisper_tune.data import AudioError, load_audio, split_long_audio
from whisper_tune.data.audio import AudioCheck, decode_audio


def test_unreadable_bytes_named_wav(tmp_path: Path) -> None:
    p = tmp_path / "garbage.wav"
    p.write_bytes(b"this is not RIFF audio at all" * 10)
    with pytest.raises(AudioError, match="garbage.wav.*cannot decode") as ei:
        load_audio(p)
    assert ei.value.reason == "unreadable_audio"


def test_zero_length_file(tmp_path: Path) -> None:
    p = tmp_path / "empty.wav"
    p.write_bytes(b"")
    with pytest.raises(AudioError, match=r"empty.wav.*0 bytes") as ei:
        load_audio(p)
    assert ei.value.reason == "empty_audio"


def test_wav_header_without_samples(tmp_path: Path) -> None:
    p = tmp_path / "nosamples.wav"
    sf.write(str(p), np.zeros((0,), np.float32), 16000)
    with pytest.raises(AudioError, match="no samples") as ei:
        load_audio(p)
    assert ei.value.reason == "empty_audio"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="missing.wav.*does not exist") as ei:
        load_audio(tmp_path / "missing.wav")
    assert ei.value.reason == "missing_file"


def test_stereo_44k1_downmixed_then_resampled(tmp_path: Path) -> None:
    sr = 44100
    t = np.arange(sr) / sr
    left = 0.4 * np.sin(2 * np.pi * 440 * t)
    right = -left + 0.2 * np.sin(2 * np.pi * 1000 * t)  # mean = 0.1 * sin(1 kHz)
    p = tmp_path / "stereo.wav"
    sf.write(str(p), np.stack([left, right], 1).astype(np.float32), sr, subtype="FLOAT")
    x, info = decode_audio(p)
    assert x.ndim == 1 and x.dtype == np.float32 and abs(x.shape[0] - 16000) <= 1
    assert (info.orig_sr, info.channels) == (44100, 2)
    # the 440 Hz parts cancel when down-mixed: what is left is the 1 kHz tone at amplitude 0.1
    spec = np.abs(np.fft.rfft(x[1000:15000]))
    freqs = np.fft.rfftfreq(14000, 1 / 16000)
    assert abs(freqs[spec.argmax()] - 1000) < 5
    assert np.max(np.abs(x[1000:15000])) == pytest.approx(0.1, abs=0.01)


def test_8khz_accepted_and_resampled(tmp_path: Path, write_wav) -> None:
    p = write_wav(tmp_path / "phone.wav", seconds=2.0, sr=8000)
    x, info = decode_audio(p)
    assert info.orig_sr == 8000 and info.duration == pytest.approx(2.0)
    assert abs(x.shape[0] - 32000) <= 1


@pytest.mark.parametrize("fmt", ["FLAC", "OGG", "MP3"])
def test_compressed_formats_decode(tmp_path: Path, write_wav, fmt: str) -> None:
    p = write_wav(tmp_path / f"clip.{fmt.lower()}", seconds=1.0, sr=22050, format=fmt)
    x = load_audio(p)
    assert x.dtype == np.float32 and abs(x.shape[0] - 16000) < 1200  # mp3 adds encoder delay
    assert np.sqrt(np.mean(x**2)) > 0.05


def test_silent_and_clipped_measured(tmp_path: Path) -> None:
    sr = 16000
    sf.write(str(tmp_path / "silent.wav"), np.zeros(sr, np.float32), sr)
    _, info = decode_audio(tmp_path / "silent.wav")
    assert info.problems(AudioCheck()) == ("silent", [])
    loud = np.clip(2.0 * np.sin(2 * np.pi * 200 * np.arange(sr) / sr), -1, 1).astype(np.float32)
    sf.write(str(tmp_path / "clipped.wav"), loud, sr, subtype="FLOAT")
    _, info = decode_audio(tmp_path / "clipped.wav")
    assert info.clipped_fraction > 0.3
    assert info.problems(AudioCheck()) == (None, ["clipped"])


def test_over_30s_flagged_too_long(tmp_path: Path, write_wav) -> None:
    _, info = decode_audio(write_wav(tmp_path / "long.wav", seconds=35.0, sr=8000))
    assert info.duration == pytest.approx(35.0)
    assert info.problems(AudioCheck())[0] == "too_long"


def test_split_long_audio_cuts_in_silence_and_loses_nothing() -> None:
    sr = 16000
    rng = np.random.default_rng(0)
    parts = []
    for seconds in (12.0, 11.0, 14.0, 9.0, 7.0):  # 53 s of "speech" separated by 0.4 s pauses
        parts.append((0.3 * rng.standard_normal(int(seconds * sr))).astype(np.float32))
        parts.append(np.zeros(int(0.4 * sr), np.float32))
    x = np.concatenate(parts)
    chunks = split_long_audio(x, sr, max_s=30.0)
    assert len(chunks) >= 2
    assert all(len(c) <= 30 * sr for _, c in chunks)
    assert np.array_equal(np.concatenate([c for _, c in chunks]), x)
    starts = [s for s, _ in chunks]
    assert starts[0] == 0.0
    for (s0, c0), (s1, _) in zip(chunks, chunks[1:], strict=False):
        assert s1 == pytest.approx(s0 + len(c0) / sr)
    for s, _ in chunks[1:]:  # every cut lands inside a pause
        i = int(round(s * sr))
        assert np.all(x[max(0, i - 80) : i + 80] == 0)


def test_split_short_audio_is_one_chunk() -> None:
    x = np.ones(16000, np.float32)
    ((start, chunk),) = split_long_audio(x)
    assert start == 0.0 and chunk is not None and len(chunk) == 16000
    with pytest.raises(ValueError, match="mono"):
        split_long_audio(np.ones((10, 2), np.float32))


def test_nan_samples_are_unreadable(tmp_path: Path) -> None:
    x = np.zeros(1600, np.float32)
    x[10] = np.nan
    sf.write(str(tmp_path / "nan.wav"), x, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN") as ei:
        load_audio(tmp_path / "nan.wav")
    assert ei.value.reason == "unreadable_audio"


def test_split_covers_everything_within_limit() -> None:
    """Moved from the serve tests (which also ran it on serve's own splitter, now deleted)."""
    splitter = split_long_audio
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


def test_path_bytes_and_file_decode_to_the_same_samples(tmp_path: Path) -> None:
    """Evaluation reads paths, the server uploaded bytes: one decoder, so the same samples."""

    t = np.arange(44100) / 44100
    x = np.stack([0.4 * np.sin(2 * np.pi * 300 * t), 0.1 * np.sin(2 * np.pi * 500 * t)], axis=1)
    p = tmp_path / "call.flac"
    sf.write(str(p), x.astype(np.float32), 44100, format="FLAC")
    from_path, info = decode_audio(p)
    from_bytes, info_b = decode_audio(p.read_bytes())
    with p.open("rb") as f:
        from_file, info_f = decode_audio(f)
    np.testing.assert_array_equal(from_path, from_bytes)
    np.testing.assert_array_equal(from_path, from_file)
    assert info == info_b == info_f and info.channels == 2 and info.orig_sr == 44100


def test_bytes_errors_keep_their_reasons() -> None:
    with pytest.raises(AudioError, match="upload.bin: not a supported audio file") as ei:
        decode_audio(b"no audio here" * 20, name="upload.bin")
    assert ei.value.reason == "unreadable_audio" and ei.value.path is None
    with pytest.raises(AudioError, match="<bytes>: empty file") as ei:
        decode_audio(b"")
    assert ei.value.reason == "empty_audio"
    with pytest.raises(TypeError, match="path, bytes or a binary file"):
        decode_audio(123)  # type: ignore[arg-type]
