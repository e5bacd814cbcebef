"""Uploaded bytes -> 16 kHz mono float32, with the three failures the API answers differently.

Why here: the server must tell "not audio" (HTTP 415) from "audio but empty" (HTTP 400) from
"audio that decodes to more than the server accepts" (HTTP 413: a decompression bomb, or just
a file longer than ``--max-audio-minutes``). Decoding itself is
``whisper_tune.data.audio.decode_audio`` (libsndfile, else FFmpeg via PyAV: m4a, webm...;
soxr), the one decoder evaluation and
training use too, with ``DecodeLimits`` checked from the file's header before decoding and per
block while decoding; this module only maps its ``AudioError.reason`` to the error classes the
app turns into status codes. Long audio is split inside the inference backends
(``whisper_tune.inference``), not here. A request with timestamps also gets a stereo upload's
per-channel levels (``decode_upload``), read after the checked decode, so a call recording's
turns can place its segments.
"""

from __future__ import annotations

import numpy as np

from whisper_tune.data.audio import SAMPLE_RATE, AudioError, DecodeLimits, decode_audio
from whisper_tune.data.channel_levels import channel_levels

__all__ = [
    "SAMPLE_RATE",
    "AudioTooLargeError",
    "DecodeLimits",
    "EmptyAudioError",
    "NotAudioError",
    "decode_audio_bytes",
    "decode_upload",
]


class NotAudioError(AudioError, ValueError):
    """The bytes are not a decodable audio file (HTTP 415)."""


class EmptyAudioError(AudioError, ValueError):
    """The file is empty or decoded to no samples (HTTP 400)."""


class AudioTooLargeError(AudioError, ValueError):
    """The file decodes to more audio than the limits allow (HTTP 413); the message names the limit."""


_CLASSES: dict[str, type[AudioError]] = {
    "empty_audio": EmptyAudioError,
    "audio_too_large": AudioTooLargeError,
}


def decode_audio_bytes(
    data: bytes, sr: int = SAMPLE_RATE, *, name: str = "upload", limits: DecodeLimits | None = None
) -> np.ndarray:
    """Decode an audio file held in memory to mono float32 at ``sr``, within ``limits`` (if given)."""
    try:
        return decode_audio(data, sr, name=name, limits=limits)[0]
    except AudioError as exc:
        cls = _CLASSES.get(exc.reason, NotAudioError)
        raise cls(str(exc), exc.reason, exc.path) from exc


def decode_upload(
    data: bytes, *, name: str = "upload", limits: DecodeLimits | None = None, levels: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """``decode_audio_bytes``, and with ``levels`` the upload's per-channel power when it has two or
    more channels (``data.channel_levels``: a stereo call's turns for the segment times)."""
    audio = decode_audio_bytes(data, name=name, limits=limits)
    return audio, (channel_levels(data) if levels else None)
