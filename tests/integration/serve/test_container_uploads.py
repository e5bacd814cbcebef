"""What phones and browsers upload (m4a = AAC in MP4, webm = Opus in Matroska) is transcribed
through the official openai client (200), like a WAV of the same speech; not-audio stays 415."""

from __future__ import annotations

import re

import pytest
from serve_testlib import ServeEnv, speech

from wt_av_testutil import encode

pytestmark = pytest.mark.integration


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9' ]", " ", text.lower()).split())


@pytest.mark.parametrize(("kind", "mime"), [("m4a", "audio/mp4"), ("webm", "audio/webm")])
def test_openai_client_transcribes_m4a_and_webm(serve_env: ServeEnv, kind: str, mime: str) -> None:
    from openai import OpenAI

    data = encode(
        speech("I would like to check my account balance and freeze my debit card please."), 16000, kind
    )
    client = OpenAI(base_url=serve_env.url("hf", "/v1"), api_key="unused-on-loopback", max_retries=0)
    out = client.audio.transcriptions.create(
        model="whisper-1", file=(f"clip.{kind}", data, mime), response_format="verbose_json"
    )
    text = _norm(out.text)
    assert "check my account" in text and "debit card" in text, text  # tiny.en: "balance" may vary
    assert 3.0 < out.duration < 7.0
