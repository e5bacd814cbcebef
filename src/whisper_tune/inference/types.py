"""Result types of the inference backends, read by evaluation, the response formats and the app.

Why a separate module: ``formats`` and the unit tests need these without importing
torch, CTranslate2 or Ray.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Segment", "Transcript"]


@dataclass
class Segment:
    """One stretch of speech with absolute times (seconds from the start of the file)."""

    id: int
    start: float
    end: float
    text: str
    tokens: list[int] = field(default_factory=list)
    seek: float = 0.0  # start of the 30 s window this segment was decoded in
    avg_logprob: float = 0.0
    compression_ratio: float = 0.0
    no_speech_prob: float = 0.0


@dataclass
class Transcript:
    """The transcript of one audio file."""

    text: str
    segments: list[Segment]
    language: str
    duration: float
