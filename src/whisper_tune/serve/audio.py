"""Uploaded bytes -> 16 kHz mono float32, with the two failures the API answers differently.

Why here: the server must tell "not audio" (HTTP 415) from "audio but empty" (HTTP 400).
Decoding itself is ``whisper_tune.data.audio.decode_audio`` (libsndfile + soxr), the one
decoder evaluation and training use too; this module only maps its ``AudioError.reason``
to the two error classes the app turns into status codes. Long audio is split inside the
inference backends (``whisper_tune.inference``), not here.
"""

from __future__ import annotations

import numpy as np

from whisper_tune.data.audio import SAMPLE_RATE, AudioError, decode_audio

__all__ = ["NotAudioError", "EmptyAudioError", "decode_audio_bytes", "SAMPLE_RATE"]


class NotAudioError(AudioError, ValueError):
    """The bytes are not a decodable audio file (HTTP 415)."""


class EmptyAudioError(AudioError, ValueError):
    """The file is empty or decoded to no samples (HTTP 400)."""


def decode_audio_bytes(data: bytes, sr: int = SAMPLE_RATE, *, name: str = "upload") -> np.ndarray:
    """Decode an audio file held in memory to mono float32 at ``sr``."""
    try:
        return decode_audio(data, sr, name=name)[0]
    except AudioError as exc:
        cls = EmptyAudioError if exc.reason == "empty_audio" else NotAudioError
        raise cls(str(exc), exc.reason, exc.path) from exc
