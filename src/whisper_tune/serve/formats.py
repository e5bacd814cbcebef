"""Render a transcript in the response formats OpenAI's transcription API defines.

Why: users already have clients for ``/v1/audio/transcriptions``; they pick
``response_format`` = json | text | srt | vtt | verbose_json and expect the exact shapes
(SRT uses ``00:00:01,000`` with a comma, WebVTT a dot and a ``WEBVTT`` header,
verbose_json carries ``segments`` with the fields the official client models).
Pure functions, no server imports, so they are unit-tested in milliseconds.
"""

from __future__ import annotations

from typing import Any

from whisper_tune.inference.types import Transcript

__all__ = ["RESPONSE_FORMATS", "MEDIA_TYPES", "render", "to_json", "to_verbose_json", "to_srt", "to_vtt"]

RESPONSE_FORMATS: tuple[str, ...] = ("json", "text", "srt", "vtt", "verbose_json")
MEDIA_TYPES: dict[str, str] = {
    "json": "application/json",
    "verbose_json": "application/json",
    "text": "text/plain; charset=utf-8",
    "srt": "application/x-subrip; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
}


def _clock(seconds: float, sep: str) -> str:
    ms_total = max(0, int(round(seconds * 1000)))
    h, rem = divmod(ms_total, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def to_json(t: Transcript) -> dict[str, Any]:
    return {"text": t.text}


def to_verbose_json(t: Transcript, *, with_segments: bool = True, with_words: bool = False) -> dict[str, Any]:
    """OpenAI's verbose_json: ``segments`` with each window's statistics; ``words`` (word, start,
    end; the text without its leading space) when word timestamps were asked for."""
    out: dict[str, Any] = {
        "task": t.task,
        "language": t.language,
        "duration": round(t.duration, 3),
        "text": t.text,
    }
    if with_segments:
        out["segments"] = [
            {
                "id": s.id,
                "seek": int(round(s.seek * 100)),  # OpenAI reports the window start in 10 ms frames
                "start": round(s.start, 3),
                "end": round(s.end, 3),
                "text": s.text,
                "tokens": list(s.tokens),
                "temperature": s.temperature,
                "avg_logprob": s.avg_logprob,
                "compression_ratio": s.compression_ratio,
                "no_speech_prob": s.no_speech_prob,
            }
            for s in t.segments
        ]
    if with_words:
        out["words"] = [
            {"word": w.word.strip(), "start": round(w.start, 3), "end": round(w.end, 3)}
            for s in t.segments
            for w in (s.words or [])
            if w.word.strip()
        ]
    return out


def to_srt(t: Transcript) -> str:
    blocks = []
    for i, s in enumerate(t.segments, start=1):
        blocks.append(f"{i}\n{_clock(s.start, ',')} --> {_clock(s.end, ',')}\n{s.text.strip()}\n")
    return "\n".join(blocks)


def to_vtt(t: Transcript) -> str:
    blocks = ["WEBVTT\n"]
    for s in t.segments:
        blocks.append(f"{_clock(s.start, '.')} --> {_clock(s.end, '.')}\n{s.text.strip()}\n")
    return "\n".join(blocks)


def render(
    t: Transcript, response_format: str, *, with_segments: bool = True, with_words: bool = False
) -> str | dict[str, Any]:
    """A dict for the JSON formats, a string for text/srt/vtt. Raises ValueError on an unknown format."""
    if response_format == "json":
        return to_json(t)
    if response_format == "verbose_json":
        return to_verbose_json(t, with_segments=with_segments, with_words=with_words)
    if response_format == "text":
        return t.text + "\n"
    if response_format == "srt":
        return to_srt(t)
    if response_format == "vtt":
        return to_vtt(t)
    raise ValueError(f"response_format must be one of {', '.join(RESPONSE_FORMATS)}; got {response_format!r}")
