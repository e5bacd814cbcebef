"""Which windows are worth decoding: an energy gate that keeps silence and crumbs of audio from the model.

Why: Whisper writes text for audio without speech, because it only ever saw transcribed audio
in training: ten minutes of digital silence came back from the server as 21 x "you", a 0.05 s
clip as "you". So the server (``serve``) skips, before any features are computed,

* every 30 s window with less than ``min_active_s`` (0.1 s) of 20 ms frames whose RMS level is
  above ``floor_dbfs`` (-60 dBFS, the level the data checks call silent: digital silence, a muted
  line, dither), and
* every file shorter than ``min_duration_s`` (0.1 s: no word is that short),

and returns empty text (no segments) for them. A skipped window also costs no model time, so an
hour of silence is answered in milliseconds.

Why an energy gate next to a VAD model: the gate costs microseconds and needs no model, so it
is on by default; Silero VAD (``DecodeOptions.vad``, ``inference.vad``, from faster-whisper)
is the option for long recordings. What the gate cannot do: noise that has energy (white
noise, hum, music) still reaches the model, which may invent text for it; VAD, OpenAI's
no-speech rule (``DecodeOptions.skip_silence``) and the ``verbose_json`` segment statistics
are the answers to that.

It is an option (``DecodeOptions.gate``, ``None`` = off): on by default in the server, off for
``evaluate``, whose test utterances must all be decoded (an empty hypothesis for a reference
that the gate judged silent would hide what the model does).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from whisper_tune.data.audio import SAMPLE_RATE

from .options import InvalidOptionError

__all__ = ["SpeechGate"]


@dataclass(frozen=True)
class SpeechGate:
    """Thresholds of the energy gate (the rule is in the module docstring)."""

    floor_dbfs: float = -60.0  # a frame is active when its RMS level is above this
    min_active_s: float = 0.1  # a window needs this much active audio to be decoded
    min_duration_s: float = 0.1  # a file shorter than this gets no text
    frame_s: float = 0.02

    def __post_init__(self) -> None:
        if not math.isfinite(self.floor_dbfs) or self.floor_dbfs > 0:
            raise InvalidOptionError(
                f"gate floor_dbfs must be a finite level <= 0 dBFS, got {self.floor_dbfs}"
            )
        for name in ("min_active_s", "min_duration_s"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise InvalidOptionError(f"gate {name} must be >= 0 seconds, got {value}")
        if not 0 < self.frame_s <= 1:
            raise InvalidOptionError(f"gate frame_s must be in (0, 1] seconds, got {self.frame_s}")

    def active_seconds(self, audio: np.ndarray, sr: int = SAMPLE_RATE) -> float:
        """Seconds of ``audio`` in frames whose RMS level is above ``floor_dbfs``."""
        x = np.asarray(audio, dtype=np.float32).reshape(-1)
        frame = max(1, int(round(self.frame_s * sr)))
        n = x.shape[0] // frame
        if x.shape[0] % frame:  # the tail is a frame of its own (zero padding lowers its level)
            x = np.concatenate([x, np.zeros(frame - x.shape[0] % frame, dtype=np.float32)])
            n += 1
        if n == 0:
            return 0.0
        power = np.square(x.reshape(n, frame), dtype=np.float64).mean(axis=1)
        floor = 10.0 ** (self.floor_dbfs / 10.0)  # dBFS of the RMS -> mean power
        return float(np.count_nonzero(power > floor)) * frame / sr

    def too_short(self, audio: np.ndarray, sr: int = SAMPLE_RATE) -> bool:
        """A whole file below ``min_duration_s``: no text, whatever it holds."""
        return len(audio) < self.min_duration_s * sr

    def passes(self, window: np.ndarray, sr: int = SAMPLE_RATE) -> bool:
        """Whether one window (at most 30 s) has enough active audio to be decoded."""
        if len(window) == 0:
            return False
        return self.active_seconds(window, sr) + 1e-9 >= self.min_active_s
