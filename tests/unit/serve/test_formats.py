"""Response formats match OpenAI's shapes (SRT comma, VTT dot + header, verbose_json fields)."""

from __future__ import annotations

import pytest

from whisper_tune.inference.types import Segment, Transcript
from whisper_tune.serve.formats import RESPONSE_FORMATS, render, to_srt, to_verbose_json, to_vtt


@pytest.fixture
def transcript() -> Transcript:
    segs = [
        Segment(id=0, start=0.0, end=2.5, text=" Hello there.", tokens=[1, 2]),
        Segment(id=1, start=3661.25, end=3662.0, text=" Freeze my card.", tokens=[3], seek=3640.0),
    ]
    return Transcript(text="Hello there. Freeze my card.", segments=segs, language="english", duration=3662.0)


def test_srt(transcript: Transcript) -> None:
    assert to_srt(transcript) == (
        "1\n00:00:00,000 --> 00:00:02,500\nHello there.\n\n2\n01:01:01,250 --> 01:01:02,000\nFreeze my card.\n"
    )


def test_vtt(transcript: Transcript) -> None:
    out = to_vtt(transcript)
    assert out.startswith("WEBVTT\n\n")
    assert "01:01:01.250 --> 01:01:02.000\nFreeze my card.\n" in out


def test_verbose_json_fields(transcript: Transcript) -> None:
    out = to_verbose_json(transcript)
    assert out["task"] == "transcribe" and out["language"] == "english" and out["duration"] == 3662.0
    seg = out["segments"][1]
    assert seg["start"] == 3661.25 and seg["end"] == 3662.0 and seg["seek"] == 364000
    for key in ("id", "tokens", "temperature", "avg_logprob", "compression_ratio", "no_speech_prob", "text"):
        assert key in seg


def test_render_all_and_unknown(transcript: Transcript) -> None:
    assert render(transcript, "json") == {"text": transcript.text}
    assert render(transcript, "text") == transcript.text + "\n"
    for fmt in RESPONSE_FORMATS:
        assert render(transcript, fmt)
    with pytest.raises(ValueError, match="response_format must be one of"):
        render(transcript, "xml")
