"""The OpenAI client against our endpoint, both backends, long audio, and the listing routes."""

from __future__ import annotations

import re

import httpx
import numpy as np
import pytest
from serve_testlib import SR, ServeEnv, speech, wav_bytes

pytestmark = pytest.mark.integration


def norm(text: str) -> str:
    try:
        from whisper_tune.scoring.normalizers import get_normalizer

        return get_normalizer("whisper_en")(text)
    except ImportError:  # evaluate area absent: a plain normaliser is enough here
        return " ".join(re.sub(r"[^a-z0-9' ]", " ", text.lower()).split())


def test_openai_client_transcribes(serve_env: ServeEnv, speech_clip: bytes) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=serve_env.url("hf", "/v1"), api_key="unused-on-loopback", max_retries=0)
    out = client.audio.transcriptions.create(model="whisper-1", file=("clip.wav", speech_clip, "audio/wav"))
    text = norm(out.text)
    assert "check my account" in text and "debit card" in text

    verbose = client.audio.transcriptions.create(
        model="whisper-1",
        file=("clip.wav", speech_clip, "audio/wav"),
        response_format="verbose_json",
        timestamp_granularities=["segment"],
    )
    assert verbose.duration == pytest.approx(len(speech("x")) / SR, abs=10)  # a float, seconds
    assert verbose.segments and verbose.segments[0].start == 0.0
    assert 2.0 < verbose.segments[-1].end <= verbose.duration + 0.01
    assert norm(verbose.text) == text
    # speech_times (on by default): a segment starts on the speech, not on the window's start
    late = wav_bytes(
        np.concatenate([np.zeros(int(1.2 * SR), np.float32), speech("freeze my debit card please")])
    )
    shifted = client.audio.transcriptions.create(
        model="whisper-1", file=("late.wav", late, "audio/wav"), response_format="verbose_json"
    )
    assert shifted.segments and 1.0 <= shifted.segments[0].start <= 1.5, shifted.segments[0]

    srt = client.audio.transcriptions.create(
        model="whisper-1", file=("clip.wav", speech_clip, "audio/wav"), response_format="srt"
    )
    assert re.match(r"1\n00:00:00,000 --> 00:00:0\d,\d{3}\n\S", str(srt))
    plain = client.audio.transcriptions.create(
        model="whisper-1", file=("clip.wav", speech_clip, "audio/wav"), response_format="text"
    )
    assert norm(str(plain)) == text


def test_models_health_page(serve_env: ServeEnv) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=serve_env.url("ct2", "/v1"), api_key="x", max_retries=0)
    assert [m.id for m in client.models.list()] == ["tiny.en", "whisper-1"]  # the served id, then its alias
    h = httpx.get(serve_env.url("ct2", "/healthz"), timeout=30).json()
    assert h == {"status": "ok", "model": "tiny.en", "backend": "ct2", "device": "cpu", "precision": "int8"}
    stats = httpx.get(serve_env.url("ct2", "/healthz?stats=1"), timeout=30).json()["stats"]
    assert set(stats) == {"batches", "windows", "features_s", "model_s"}
    assert stats["batches"] >= 1 and stats["windows"] >= stats["batches"]  # the warm-up at least
    page = httpx.get(serve_env.url("hf", "/"), timeout=30)
    assert page.status_code == 200 and "MediaRecorder" in page.text and 'id="transcript"' in page.text


def test_backends_agree_through_the_endpoint(serve_env: ServeEnv) -> None:
    clips = [
        speech("Please send two hundred dollars to my savings account."),
        speech("What is the interest rate on my credit card?", voice="en-gb"),
    ]
    for clip in clips:
        texts = {}
        for app in ("hf", "ct2"):
            r = httpx.post(
                serve_env.url(app, "/v1/audio/transcriptions"),
                files={"file": ("c.wav", wav_bytes(clip), "audio/wav")},
                data={"response_format": "verbose_json"},
                timeout=120,
            )
            assert r.status_code == 200, r.text
            texts[app] = norm(r.json()["text"])
            assert r.json()["model"] == "tiny.en"
        assert texts["hf"] == texts["ct2"] and texts["hf"]


def test_long_audio_segments(serve_env: ServeEnv) -> None:
    sentences = [
        "Hello, thank you for calling the bank.",
        "I lost my debit card yesterday.",
        "Can you freeze it and send me a new one?",
        "Sure, I can help with that.",
    ]
    pause = np.zeros(int(1.5 * SR), dtype=np.float32)
    parts: list[np.ndarray] = []
    while sum(len(p) for p in parts) < 75 * SR:
        for s in sentences:
            parts += [speech(s), pause]
    audio = np.concatenate(parts)
    dur = len(audio) / SR
    r = httpx.post(
        serve_env.url("ct2", "/v1/audio/transcriptions"),
        files={"file": ("long.wav", wav_bytes(audio), "audio/wav")},
        data={"response_format": "verbose_json", "timestamp_granularities[]": "segment"},
        timeout=300,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    segs = body["segments"]
    assert body["duration"] == pytest.approx(dur, abs=0.01)
    assert len(segs) >= 6
    starts = [s["start"] for s in segs]
    assert all(b > a for a, b in zip(starts, starts[1:], strict=False)), starts
    assert all(s["end"] >= s["start"] for s in segs)
    assert segs[-1]["end"] <= dur + 0.01 and segs[-1]["start"] > 60.0  # the end of the call is transcribed
    assert norm(body["text"]).count("debit card") >= 3


def test_a_stereo_call_s_turns_cut_and_place_its_segments(serve_env: ServeEnv, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The turn rule of speech_times on the real server: a synthetic call's stereo file keeps its
    turns, and one sentence spoken across two channels with a 0.3 s pause (shorter than the 0.5 s
    split pause) is cut at the change of channel only when the channels are there to say so."""
    import json

    from whisper_tune.data.synth.calls import CallsConfig, synthesize_calls
    from whisper_tune.scoring.boundaries import boundary_score

    def post(name: str, data: bytes, **fields: object) -> dict:  # type: ignore[type-arg]
        r = httpx.post(
            serve_env.url("hf", "/v1/audio/transcriptions"),
            files={"file": (name, data, "audio/wav")},
            data={"response_format": "verbose_json", **fields},
            timeout=300,
        )
        assert r.status_code == 200, r.text
        return dict(r.json())

    synthesize_calls(CallsConfig(out=str(tmp_path), calls=1, seed=5, minutes=(1.0, 1.0), workers=1))
    row = json.loads((tmp_path / "longform.jsonl").read_text().splitlines()[0])
    ref = [(s["start"], s["end"]) for s in row["segments"]]
    segs = post("call.wav", (tmp_path / row["audio_filepath"]).read_bytes())["segments"]
    score = boundary_score(ref, [(s["start"], s["end"]) for s in segs])
    assert score.ref_total >= 12 and score.accuracy is not None and score.accuracy >= 0.8, score

    def trimmed(x: np.ndarray) -> np.ndarray:  # espeak pads its speech with silence
        loud = np.flatnonzero(np.abs(x) > 0.01)
        return x[loud[0] : loud[-1] + 1]

    first, second = (
        trimmed(speech("I would like to check my account")),
        trimmed(speech("balance and my last payment")),
    )
    gap = np.zeros(int(0.3 * SR), np.float32)
    lead = np.zeros(int(0.5 * SR), np.float32)
    left = np.concatenate([lead, first, gap, np.zeros_like(second), lead])
    right = np.concatenate([lead, np.zeros_like(first), gap, second, lead])
    turn = (len(lead) + len(first) + len(gap) / 2) / SR  # the middle of the pause between the two sides
    words = {"timestamp_granularities[]": ["segment", "word"]}
    mono = post("mix.wav", wav_bytes((left + right) / 2), **words)["segments"]
    stereo = post("two.wav", wav_bytes(np.stack([left, right], axis=1)), **words)["segments"]
    assert not any(abs(s["end"] - turn) < 0.3 for s in mono[:-1]), mono  # one sentence: not cut
    cut = [k for k, s in enumerate(stereo[:-1]) if abs(s["end"] - turn) < 0.3]
    assert cut, stereo
    assert norm(" ".join(s["text"] for s in stereo[: cut[0] + 1])).endswith("account")
