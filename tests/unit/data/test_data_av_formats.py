"""Every common container decodes (m4a/mp4 AAC, webm/ogg Opus, ogg Vorbis, mp3) to the samples of
the WAV it was encoded from, within each codec's loss; not-audio stays "not audio"; the
decompression-bomb limits hold for PyAV's streaming decode too."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from whisper_tune.data.audio import DecodeLimits, decode_audio, load_audio
from whisper_tune.data.av_decode import AvDecodeError, decode_with_av
from wt_av_testutil import align_and_snr, encode, espeak_wav

TEXT = "I would like to check my account balance and freeze my debit card please."


@pytest.fixture(scope="module")
def clip() -> tuple[bytes, np.ndarray, np.ndarray, int]:
    """(wav bytes, 16 kHz reference, samples at the clip's own rate, that rate)."""
    wav = espeak_wav(TEXT)
    ref, info = decode_audio(wav)
    own, _ = decode_audio(wav, info.orig_sr)
    return wav, ref, own, info.orig_sr


# minimum SNR (dB) after alignment: AAC/Opus measured ~25 dB, MP3 ~17 dB on this clip
@pytest.mark.parametrize(
    ("kind", "min_snr"),
    [("m4a", 18), ("mp4", 18), ("webm", 18), ("opus.ogg", 18), ("vorbis.ogg", 12), ("mp3", 12)],
)
def test_container_decodes_to_the_wav_samples(
    clip: tuple[bytes, np.ndarray, np.ndarray, int], tmp_path: Path, kind: str, min_snr: float
) -> None:
    _, ref, own, sr = clip
    data = encode(own, sr, kind)
    y, info = decode_audio(data, name=f"clip.{kind}")
    assert y.dtype == np.float32 and y.ndim == 1 and info.channels == 1
    lag, snr, corr = align_and_snr(y, ref)
    assert 0 <= lag <= 1100, lag  # at most AAC's 1024 priming samples (at 22.05 kHz) of delay
    assert snr >= min_snr and corr >= 0.97, (kind, snr, corr)
    assert abs(len(y) - lag - len(ref)) <= 0.1 * 16000  # no audio lost, at most a frame of padding
    path = tmp_path / f"clip.{kind}"
    path.write_bytes(data)
    assert np.array_equal(load_audio(path), y)  # a path and the same bytes: the same samples
    with path.open("rb") as f:
        assert np.array_equal(decode_audio(f)[0], y)


def test_m4a_and_webm_are_not_libsndfile_formats(clip: tuple[bytes, np.ndarray, np.ndarray, int]) -> None:
    """Why PyAV is needed at all: libsndfile refuses what phones and browsers upload."""
    _, _, own, sr = clip
    for kind in ("m4a", "webm"):
        with pytest.raises(sf.LibsndfileError):
            sf.SoundFile(io.BytesIO(encode(own, sr, kind)))


def test_stereo_44k_aac_is_downmixed_and_resampled() -> None:
    sr = 44100
    t = np.arange(2 * sr) / sr
    left = 0.4 * np.sin(2 * np.pi * 440 * t)
    right = -left + 0.2 * np.sin(2 * np.pi * 1000 * t)  # mean = 0.1 * sin(1 kHz)
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="ipod") as out:
        stream = out.add_stream("aac", rate=sr, layout="stereo")
        frame = av.AudioFrame.from_ndarray(
            np.stack([left, right]).astype(np.float32), format="fltp", layout="stereo"
        )
        frame.sample_rate = sr
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    x, info = decode_audio(buf.getvalue(), name="stereo.m4a")
    assert (info.orig_sr, info.channels) == (44100, 2)
    assert abs(len(x) - 32000) <= 1200
    mid = x[4000:28000]
    spec = np.abs(np.fft.rfft(mid))
    freqs = np.fft.rfftfreq(len(mid), 1 / 16000)
    assert abs(freqs[spec.argmax()] - 1000) < 5  # the 440 Hz parts cancelled in the down-mix
    assert np.max(np.abs(mid)) == pytest.approx(0.1, abs=0.02)


def test_not_audio_is_named_and_keeps_both_decoders_reasons(tmp_path: Path) -> None:
    with pytest.raises(Exception) as info:
        decode_audio(b"hello, this is not audio" * 10, name="notes.txt")
    msg = str(info.value)
    assert info.value.reason == "unreadable_audio"  # type: ignore[attr-defined]
    assert "notes.txt: not a supported audio file" in msg and "Format not recognised" in msg
    assert "FFmpeg: Invalid data found when processing input" in msg and "object at 0x" not in msg
    png = b"\x89PNG\r\n\x1a\n" + bytes(200)  # FFmpeg opens it: an image, no audio stream
    p = tmp_path / "photo.m4a"
    p.write_bytes(png)
    with pytest.raises(Exception, match=r"photo.m4a: not a supported audio file.*no audio stream") as info:
        load_audio(p)
    assert info.value.reason == "unreadable_audio" and info.value.path == str(p)  # type: ignore[attr-defined]


def test_truncated_upload_is_unreadable_not_a_crash(clip: tuple[bytes, np.ndarray, np.ndarray, int]) -> None:
    _, _, own, sr = clip
    data = encode(own, sr, "m4a")
    with pytest.raises(Exception) as info:
        decode_audio(data[: len(data) // 2], name="cut.m4a")
    assert info.value.reason in ("unreadable_audio", "empty_audio"), info.value  # type: ignore[attr-defined]
    assert "cut.m4a" in str(info.value)


def test_limits_refuse_from_the_declared_duration(clip: tuple[bytes, np.ndarray, np.ndarray, int]) -> None:
    _, _, own, sr = clip
    with pytest.raises(
        Exception, match=r"long.m4a: the file declares 4 s of audio, over the limit of 2 s"
    ) as info:
        decode_audio(encode(own, sr, "m4a"), name="long.m4a", limits=DecodeLimits(max_duration_s=2))
    assert info.value.reason == "audio_too_large"  # type: ignore[attr-defined]
    y, _ = decode_audio(encode(own, sr, "m4a"), limits=DecodeLimits(max_duration_s=10))
    assert len(y) > 4 * 16000


def test_streaming_decode_stops_at_the_limit(clip: tuple[bytes, np.ndarray, np.ndarray, int]) -> None:
    """A stream without a declared length is refused once decoding passes the limit: no more
    than one codec frame past it is ever decoded (never the whole file)."""
    _, _, own, sr = clip
    long = np.tile(own, 8)  # ~34 s
    data = encode(long, sr, "webm")
    seen: list[int] = []
    limits = DecodeLimits(max_duration_s=3)
    with pytest.raises(Exception, match=r"over the limit of 3 s") as info:
        decode_with_av("x.webm", data, lambda b: seen.append(b.shape[0]), limits=limits, block_frames=4800)
    assert info.value.reason == "audio_too_large"  # type: ignore[attr-defined]
    assert sum(seen) <= 3 * 48000  # handed over: at most the limit (the block past it is refused)
    # the per-frame check is what stops it: the same limit, ignoring any declared length
    counted: list[int] = []

    class NoHeader(DecodeLimits):
        def check(self, label: str, frames: int, samplerate: int, channels: int, *, declared: bool) -> None:
            if not declared:
                counted.append(frames)
                super().check(label, frames, samplerate, channels, declared=declared)

    with pytest.raises(Exception, match="decoding reached 3 s of audio"):
        decode_with_av("x.webm", data, lambda b: None, limits=NoHeader(max_duration_s=3))
    assert counted and counted[-1] <= 3 * 48000 + 960 * 2  # stopped within a 20 ms Opus frame or two


def test_av_decoder_errors_are_its_own_type() -> None:
    with pytest.raises(AvDecodeError, match="Invalid data"):
        decode_with_av("x", b"\x00\x01" * 100, lambda b: None)
