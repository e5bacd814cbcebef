"""Streaming decode of the containers libsndfile cannot read (mp4/m4a/aac, webm/opus, ...) via PyAV.

Why: phones, browsers and call recorders upload m4a (AAC in MP4), webm (Opus in Matroska),
3gp/amr, wma and video files with an audio track; libsndfile reads none of them. PyAV (FFmpeg,
the decoder faster-whisper itself uses) reads them all. ``whisper_tune.data.audio`` tries
libsndfile first (wav/flac/ogg/mp3: measured faster on those, and its samples stay bit-identical
to ``soundfile.read``) and comes here for everything else, so training data, evaluation and
serve's uploads all decode any common container the same way.

The decode streams: FFmpeg frames are pulled one at a time, converted to planar float32 at the
stream's own rate and channel layout (``AudioResampler`` with the first frame's rate/layout: a
stream that changes rate or layout midway is converted to the first one), and handed to
``on_block`` in blocks of about ``block_frames`` frames. The decompression-bomb limits are
checked from the container's declared duration before the first frame and against the running
frame count after every frame, so a 3-hour upload over the limit is refused after at most one
frame past it, never decoded whole.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from whisper_tune.data.audio import DecodeLimits

__all__ = ["AvDecodeError", "AvStreamInfo", "decode_with_av"]


class AvDecodeError(Exception):
    """PyAV could not read the bytes as audio; ``reason`` is the data report key."""

    def __init__(self, message: str, reason: str = "unreadable_audio") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class AvStreamInfo:
    """What the decoded audio stream was: container format, codec, rate and channels."""

    container: str
    codec: str
    samplerate: int
    channels: int


def _ffmpeg_reason(exc: BaseException) -> str:
    """FFmpeg's own words (``Invalid data found when processing input``), without file reprs."""
    text = getattr(exc, "strerror", None)
    return str(text) if text else (str(exc) or type(exc).__name__)


def _declared_seconds(container: Any, stream: Any) -> float | None:
    """The stream's (else the container's) declared duration in seconds, if it declares one."""
    import av

    if stream.duration is not None and stream.time_base is not None:
        seconds = float(stream.duration * stream.time_base)
        if seconds > 0:
            return seconds
    if container.duration is not None and container.duration > 0:
        return float(container.duration) / av.time_base
    return None


def decode_with_av(
    label: str,
    source: str | bytes,
    on_block: Callable[[np.ndarray], None],
    *,
    limits: DecodeLimits | None = None,
    block_frames: int = 1 << 16,
) -> AvStreamInfo:
    """Decode the first audio stream of ``source`` (a path or a file's bytes) block by block.

    ``on_block`` gets ``(frames, channels)`` float32 arrays at the stream's own rate. ``limits``
    raise their ``AudioError`` (``audio_too_large``) from the declared duration, then per frame.
    Anything FFmpeg cannot open or decode, and files without an audio stream, raise
    :class:`AvDecodeError` with FFmpeg's reason.
    """
    import av

    try:
        container = av.open(
            source if isinstance(source, str) else io.BytesIO(source), "r", metadata_errors="ignore"
        )
    except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
        raise AvDecodeError(_ffmpeg_reason(exc)) from exc
    with container:
        fmt = str(container.format.name)
        if not container.streams.audio:
            kinds = sorted({str(s.type) for s in container.streams}) or ["nothing"]
            raise AvDecodeError(f"no audio stream in the {fmt} container (it holds: {', '.join(kinds)})")
        stream = container.streams.audio[0]
        rate = int(stream.codec_context.sample_rate or 0)
        channels = int(stream.codec_context.channels or 0)
        declared = _declared_seconds(container, stream)
        if limits is not None and declared is not None and rate > 0 and channels > 0:
            limits.check(label, int(declared * rate), rate, channels, declared=True)
        resampler: Any = None
        pending: list[np.ndarray] = []
        pending_frames = frames = 0

        def flush() -> None:
            nonlocal pending, pending_frames
            if pending:
                block = pending[0] if len(pending) == 1 else np.concatenate(pending, axis=1)
                on_block(np.ascontiguousarray(block.T))
                pending, pending_frames = [], 0

        def take(out_frames: list[Any]) -> None:
            nonlocal frames, pending_frames
            for out in out_frames:
                arr = out.to_ndarray()  # planar float32: (channels, samples)
                if arr.shape[-1] == 0:
                    continue
                frames += arr.shape[-1]
                if limits is not None:
                    limits.check(label, frames, rate, channels, declared=False)
                pending.append(arr.astype(np.float32, copy=False))
                pending_frames += arr.shape[-1]
                if pending_frames >= block_frames:
                    flush()

        try:
            for frame in container.decode(stream):
                if resampler is None:
                    rate = int(frame.sample_rate)
                    channels = int(frame.layout.nb_channels)
                    resampler = av.AudioResampler(format="fltp", layout=frame.layout, rate=rate)
                take(resampler.resample(frame))
            if resampler is not None:
                take(resampler.resample(None))
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            if getattr(exc, "reason", None) == "audio_too_large":
                raise
            raise AvDecodeError(f"the {fmt} audio stream does not decode ({_ffmpeg_reason(exc)})") from exc
        flush()
        codec = str(stream.codec_context.name)
    return AvStreamInfo(container=fmt, codec=codec, samplerate=rate, channels=channels)
