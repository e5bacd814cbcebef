"""The official openai client against the served real tiny.en, both backends: word timestamps,
real segment statistics, temperature, the model field (404 ``model_not_found``), translations
refused for an English-only model; and the ``serve.builder`` application serving a request."""

from __future__ import annotations

import httpx
import pytest
from serve_testlib import ServeEnv

pytestmark = pytest.mark.integration


def _client(serve_env: ServeEnv, app: str) -> object:
    from openai import OpenAI

    return OpenAI(base_url=serve_env.url(app, "/v1"), api_key="unused-on-loopback", max_retries=0)


@pytest.mark.parametrize("app", ["ct2", "hf"])
def test_words_and_segment_statistics(serve_env: ServeEnv, speech_clip: bytes, app: str) -> None:
    client = _client(serve_env, app)
    out = client.audio.transcriptions.create(  # type: ignore[attr-defined]
        model="whisper-1",
        file=("clip.wav", speech_clip, "audio/wav"),
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )
    assert out.words and out.segments
    words = [w.word.lower().strip(".,") for w in out.words]
    assert "account" in words and "debit" in words, words
    starts = [w.start for w in out.words]
    assert starts == sorted(starts) and all(w.end >= w.start for w in out.words)
    assert 0.0 <= out.words[0].start < 1.5 and out.words[-1].end <= out.duration + 0.05
    for s in out.segments:
        assert -1.0 < s.avg_logprob < 0.0  # clear speech: confident, never the old constant 0.0
        assert 0.5 < s.compression_ratio < 2.4
        assert 0.0 < s.no_speech_prob < 0.5
        assert s.temperature == 0.0  # greedy passed the thresholds: no fallback
    only_words = client.audio.transcriptions.create(  # type: ignore[attr-defined]
        model="whisper-1",
        file=("clip.wav", speech_clip, "audio/wav"),
        response_format="verbose_json",
        timestamp_granularities=["word"],
    )
    assert only_words.words and not only_words.segments
    sampled = client.audio.transcriptions.create(  # type: ignore[attr-defined]
        model="tiny.en",
        file=("clip.wav", speech_clip, "audio/wav"),
        response_format="verbose_json",
        temperature=0.4,
    )
    assert {s.temperature for s in sampled.segments} == {0.4} and "card" in sampled.text.lower()


def test_unknown_model_and_translation_errors(serve_env: ServeEnv, speech_clip: bytes) -> None:
    import openai

    client = _client(serve_env, "ct2")
    with pytest.raises(openai.NotFoundError) as nf:
        client.audio.transcriptions.create(  # type: ignore[attr-defined]
            model="gpt-4o-transcribe", file=("clip.wav", speech_clip, "audio/wav")
        )
    assert nf.value.code == "model_not_found" and nf.value.param == "model"
    with pytest.raises(openai.BadRequestError, match="English-only"):
        client.audio.translations.create(  # type: ignore[attr-defined]
            model="whisper-1", file=("clip.wav", speech_clip, "audio/wav")
        )


def test_builder_application_serves_a_request(serve_env: ServeEnv, speech_clip: bytes) -> None:
    from ray import serve

    from whisper_tune.serve.builder import app_builder

    app = app_builder(
        {
            "model": "tiny.en",
            "backend": "ct2",
            "device": "cpu",
            "num_cpus": "0",
            "model_name": "bank-asr",
            "autoscaling_config": {"min_replicas": 1, "max_replicas": 2},
        }
    )
    serve.run(app, name="builder", route_prefix="/builder")
    try:
        r = httpx.post(
            serve_env.url("builder", "/v1/audio/transcriptions"),
            files={"file": ("clip.wav", speech_clip, "audio/wav")},
            data={"model": "bank-asr"},
            timeout=120,
        )
        assert r.status_code == 200, r.text
        assert "debit card" in r.json()["text"].lower()
        ids = [m["id"] for m in httpx.get(serve_env.url("builder", "/v1/models"), timeout=30).json()["data"]]
        assert ids == ["bank-asr", "tiny.en", "whisper-1"]
    finally:
        serve.delete("builder")
