"""Result types of the inference backends, read by evaluation, the response formats and the app.

Why a separate module: ``formats`` and the unit tests need these without importing
torch, CTranslate2 or Ray.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Segment", "Transcript", "Word"]


@dataclass
class Word:
    """One word with absolute times (OpenAI's ``words`` entries; ``probability``: mean token probability)."""

    word: str
    start: float
    end: float
    probability: float = 0.0
    tokens: list[int] = field(default_factory=list)  # its token ids (not in the API's output)


@dataclass
class Segment:
    """One stretch of speech with absolute times (seconds from the start of the file)."""

    id: int
    start: float
    end: float
    text: str
    tokens: list[int] = field(default_factory=list)
    seek: float = 0.0  # start of the 30 s window this segment was decoded in
    # OpenAI's per-window statistics (every segment of a window carries its window's values):
    # mean log-probability of the generated tokens (EOT included), gzip compression ratio of
    # the window's text, probability of <|nospeech|> at the first decoder step
    avg_logprob: float = 0.0
    compression_ratio: float = 0.0
    no_speech_prob: float = 0.0
    temperature: float = 0.0  # the temperature whose result was kept (fallback)
    words: list[Word] | None = None  # with DecodeOptions.word_timestamps


@dataclass
class Transcript:
    """The transcript of one audio file."""

    text: str
    segments: list[Segment]
    language: str
    duration: float
    task: str = "transcribe"
