"""Decode any common audio file into the 16 kHz mono float32 Whisper expects.

Why: ``WhisperFeatureExtractor`` treats a 2-D array as a *batch* (stereo becomes two
utterances) and silently truncates anything over 30 s, and resampling quality decides
what the model hears. So decoding, down-mixing (before feature extraction), HQ
resampling with soxr and the sanity checks live in one place, and every failure is an
:class:`AudioError` that names the file and carries a stable ``reason`` key that the
data report counts. Training data (paths), evaluation (paths) and the server (uploaded
bytes) all decode through :func:`decode_audio`, so a clip read from disk and the same
file uploaded become the same samples.

Decoding: libsndfile (soundfile; the wheel's 1.2.2 reads wav/flac/ogg vorbis+opus and mp3) when
it recognises the file, else FFmpeg through PyAV (``data.av_decode``: mp4/m4a/aac, webm/opus, 3gp,
wma, a video's audio track...). libsndfile goes first because it is faster on its formats
(docs/data.md, "Audio formats", has the measurement) and its samples stay bit-identical to
``soundfile.read``; only bytes neither reads are "not audio".

Check policy (see ``AudioCheck``):

* empty (0 bytes / 0 samples), unreadable bytes, missing file -> skip (no audio at all);
* silent (RMS below ``silence_dbfs``, default -60 dBFS) -> **skip**: a transcript paired
  with silence teaches the model to hallucinate text;
* clipped (share of samples at full scale above ``clip_fraction``, default 0.1 %) ->
  **warning**, kept: clipped call-centre audio is common and still intelligible, and
  dropping it would bias training towards clean audio. The share is measured on the
  decoded samples before resampling (resampling overshoots and would hide/fake it).

Decompression bombs (``DecodeLimits``, the server passes one): a 476 KB FLAC of 20 minutes of
8-channel 48 kHz silence decodes to 1.8 GB of float32, and the 25 MB upload cap bounds only
the compressed bytes. So a file's decoded length and size are checked against the limits from
its header (``frames``, ``samplerate``, ``channels``) before anything is decoded, and again
while decoding: samples past the declared length (or all of them, when the header does not
say) are read in blocks of ``DECODE_BLOCK`` frames, each down-mixed as it is read, and
decoding stops at the first block over a limit (a header may lie). Failures are ``AudioError`` with reason
``audio_too_large`` and a message that names the limit.
"""

from __future__ import annotations

import io
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from whisper_tune.errors import DataError

__all__ = [
    "SAMPLE_RATE",
    "AudioCheck",
    "AudioError",
    "AudioInfo",
    "AudioSource",
    "DecodeLimits",
    "decode_audio",
    "load_audio",
    "split_long_audio",
]

SAMPLE_RATE = 16000
DECODE_BLOCK = 1 << 18  # frames read per block (8 MB of float32 for 8 channels)
# libsndfile subtypes FFmpeg decodes faster (Ogg Opus: 88 vs 157 ms for 120 s, docs/data.md)
_FFMPEG_FASTER = frozenset({"OPUS"})


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


@dataclass(frozen=True)
class DecodeLimits:
    """The most one file may decode to; the defaults are two hours of 16 kHz mono.

    ``max_duration_s``: seconds of audio (any rate, any number of channels);
    ``max_decoded_mb``: decoded float32 samples of all channels at the file's own rate, in MB
    (10^6 bytes): 2 h x 16,000 Hz x 1 channel x 4 bytes = 460.8 MB, which an 8-channel 48 kHz
    file reaches after 5 minutes.
    """

    max_duration_s: float = 2 * 3600.0
    max_decoded_mb: float = 2 * 3600.0 * SAMPLE_RATE * 4 / 1e6

    def __post_init__(self) -> None:
        for name in ("max_duration_s", "max_decoded_mb"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")

    def check(self, label: str, frames: int, samplerate: int, channels: int, *, declared: bool) -> None:
        """Raise AudioError(``audio_too_large``) when ``frames`` frames break a limit."""
        seconds = frames / float(samplerate)
        mb = frames * channels * 4 / 1e6
        what = "the file declares" if declared else "decoding reached"
        if seconds > self.max_duration_s:
            raise AudioError(
                f"{label}: {what} {seconds:.0f} s of audio, over the limit of {self.max_duration_s:g} s "
                "of decoded audio",
                "audio_too_large",
            )
        if mb > self.max_decoded_mb:
            raise AudioError(
                f"{label}: {what} {mb:.0f} MB of decoded samples ({seconds:.0f} s, {channels} channels at "
                f"{samplerate} Hz), over the limit of {self.max_decoded_mb:g} MB of decoded audio",
                "audio_too_large",
            )


_REPR = re.compile(r"<[^<>]* object at 0x[0-9a-fA-F]+>")


def _decoder_message(exc: BaseException, label: str) -> str:
    """libsndfile's reason without Python reprs (``Error opening <_io.BytesIO object at 0x..>``)."""
    detail = getattr(exc, "error_string", None) if hasattr(exc, "code") else None
    return str(detail) if detail else _REPR.sub(label, str(exc))


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


class _Blocks:
    """Decoded ``(frames, channels)`` blocks -> mono blocks, with the NaN and clipping checks."""

    def __init__(self, label: str, path: str | None) -> None:
        self.label, self.path = label, path
        self.mono: list[np.ndarray] = []
        self.frames = self.clipped = 0

    def add(self, block: np.ndarray) -> None:
        if not np.isfinite(block).all():
            raise AudioError(f"{self.label}: audio contains NaN/inf samples", "unreadable_audio", self.path)
        self.frames += block.shape[0]
        self.clipped += int(np.count_nonzero(np.abs(block) >= AudioCheck.clip_level))
        self.mono.append(block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0])


def _decode_sndfile(f: Any, blocks: _Blocks, limits: DecodeLimits | None) -> tuple[int, int]:
    """Read an open ``soundfile.SoundFile`` into ``blocks``; (rate, channels)."""
    orig_sr, channels = int(f.samplerate), int(f.channels)
    known = 0 < f.frames < 2**62  # 2**62 and up: the length is unknown
    if limits is not None and known:
        limits.check(blocks.label, int(f.frames), orig_sr, channels, declared=True)
    # a declared length (within the limits) is read in one call after a seek to 0, as
    # sf.read() does: the samples stay bit-identical to it (an MP3 decode without that seek,
    # or in blocks, differs in the last bit)
    want = int(f.frames) if known else DECODE_BLOCK
    if f.seekable():
        f.seek(0)
    while True:
        block = f.read(want, dtype="float32", always_2d=True)
        want = DECODE_BLOCK
        if block.shape[0] == 0:
            break
        if limits is not None:
            limits.check(blocks.label, blocks.frames + block.shape[0], orig_sr, channels, declared=False)
        blocks.add(block)
    return orig_sr, channels


def _decode_any(
    label: str, path: str | None, payload: bytes | str, limits: DecodeLimits | None
) -> tuple[_Blocks, int, int]:
    """libsndfile when it recognises the file (wav/flac/ogg/mp3), else PyAV (any FFmpeg container)."""
    import soundfile as sf

    blocks = _Blocks(label, path)
    try:
        f = sf.SoundFile(payload if isinstance(payload, str) else io.BytesIO(payload))
    except Exception as exc:  # soundfile raises LibsndfileError/RuntimeError/TypeError...
        sf_reason = _decoder_message(exc, label)
    else:
        if f.subtype in _FFMPEG_FASTER:
            f.close()
            return _decode_av(label, path, payload, limits, blocks, "")
        try:
            with f:
                return blocks, *_decode_sndfile(f, blocks, limits)
        except AudioError:
            raise
        except Exception as exc:
            raise AudioError(
                f"{label}: not a supported audio file (cannot decode audio: {_decoder_message(exc, label)})",
                "unreadable_audio",
                path,
            ) from exc
    return _decode_av(label, path, payload, limits, blocks, f"{sf_reason}; FFmpeg: ")


def _decode_av(
    label: str, path: str | None, payload: bytes | str, limits: DecodeLimits | None, blocks: _Blocks, why: str
) -> tuple[_Blocks, int, int]:
    from whisper_tune.data.av_decode import AvDecodeError, decode_with_av

    try:
        got = decode_with_av(label, payload, blocks.add, limits=limits, block_frames=DECODE_BLOCK)
    except AvDecodeError as exc:
        raise AudioError(
            f"{label}: not a supported audio file (cannot decode audio: {why}{exc})", exc.reason, path
        ) from exc
    return blocks, got.samplerate, got.channels


def decode_audio(
    source: AudioSource,
    sr: int = SAMPLE_RATE,
    *,
    name: str | None = None,
    limits: DecodeLimits | None = None,
) -> tuple[np.ndarray, AudioInfo]:
    """Decode, measure, down-mix to mono and resample to ``sr`` (soxr HQ).

    ``source``: a path, the bytes of a file or an open binary file; the same decoding for
    all three, so a clip scored from disk and the same clip uploaded to the server become
    the same samples. Any container libsndfile or FFmpeg (PyAV) reads decodes: wav, flac,
    ogg/opus, mp3 (libsndfile), mp4/m4a/aac, webm/opus, 3gp, wma... (PyAV). ``name`` labels
    messages (default: the path, ``<bytes>``, the file's name). ``limits``: refuse files that
    decode to more (checked from the header, then while decoding).
    Every failure is an :class:`AudioError`; ``reason`` is ``missing_file``, ``empty_audio``
    (0 bytes or 0 samples), ``unreadable_audio`` (not audio, NaN/inf samples) or
    ``audio_too_large`` (over ``limits``).
    """
    import soxr

    label, path, payload = _read_source(source, name)
    try:
        blocks, orig_sr, channels = _decode_any(label, path, payload, limits)
    except AudioError as exc:
        exc.path = exc.path or path
        raise
    frames = blocks.frames
    if frames == 0:
        raise AudioError(f"{label}: audio has no samples", "empty_audio", path)
    mono = blocks.mono[0] if len(blocks.mono) == 1 else np.concatenate(blocks.mono)
    blocks.mono = []
    rms = float(np.sqrt(np.mean(np.square(mono, dtype=np.float64))))
    if orig_sr != sr:
        mono = soxr.resample(mono, orig_sr, sr, quality="HQ")
    mono = np.ascontiguousarray(mono, dtype=np.float32)
    info = AudioInfo(
        duration=frames / float(orig_sr),
        orig_sr=orig_sr,
        channels=channels,
        rms_dbfs=_to_dbfs(rms),
        clipped_fraction=blocks.clipped / float(frames * channels),
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
