"""The ingress's model and task rules with a fake Model handle (no Ray): unknown ``model`` ids get
OpenAI's 404 ``model_not_found``, ``/v1/models`` lists the served id and its aliases, translations
need a multilingual model, and a request's options (task, temperature ladder, word timestamps,
hotwords) reach the Model job; verbose_json carries the segment statistics and ``words``."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.requests import Request
from test_app import _Remote, ingress, upload, wav

from whisper_tune.inference import Segment, Transcript
from whisper_tune.inference.options import TEMPERATURE_LADDER
from whisper_tune.inference.types import Word
from whisper_tune.serve.jobs import Job, served_ids


def body(r: Any) -> dict[str, Any]:
    return dict(json.loads(r.body))


def _models(r: Any) -> list[str]:
    out = asyncio.run(r.models(Request({"type": "http", "query_string": b"", "headers": []})))
    return [m["id"] for m in body(out)["data"]]


def test_served_ids_and_job_keys() -> None:
    assert served_ids("tiny.en", "tiny.en", ("whisper-1",)) == ["tiny.en", "whisper-1"]
    assert served_ids("bank/best", "/runs/bank", ()) == ["bank/best"]  # a path is not an id
    assert served_ids("bank", "s3://b/run", ("whisper-1",)) == ["bank", "whisper-1"]
    a = Job(None, "en", None, True, 0.0, temperatures=TEMPERATURE_LADDER, word_timestamps=True)
    b = Job(None, "en", None, True, 9.0, temperatures=TEMPERATURE_LADDER, word_timestamps=True)
    c = Job(None, "en", None, True, 0.0, task="translate")
    assert a.key() == b.key() != c.key()  # deadlines do not split a batch; options do
    assert c.changes()["task"] == "translate" and a.changes()["word_timestamps"] is True


def test_unknown_model_is_404_model_not_found_and_models_lists_aliases() -> None:
    r = ingress()
    r.model.release.set()
    assert _models(r) == ["fake", "unused", "whisper-1"]
    for ok in ("whisper-1", "fake", None):
        fields = {"model": ok} if ok else {}
        assert asyncio.run(r.transcriptions(upload(wav(1.0), **fields))).status_code == 200, ok
    out = asyncio.run(r.transcriptions(upload(wav(1.0), model="gpt-4o-transcribe")))
    assert out.status_code == 404
    err = body(out)["error"]
    assert err["code"] == "model_not_found" and err["param"] == "model"
    assert err["type"] == "invalid_request_error" and "'gpt-4o-transcribe' does not exist" in err["message"]
    assert "'whisper-1'" in err["message"]  # says what is served


def test_translation_needs_a_multilingual_model() -> None:
    r = ingress()
    r.model.release.set()
    out = asyncio.run(r.translations(upload(wav(1.0), model="whisper-1")))
    assert out.status_code == 400
    err = body(out)["error"]
    assert "English-only" in err["message"] and "/v1/audio/translations" in err["message"]
    assert not r.model.jobs  # refused before decoding


def _multilingual(r: Any, transcript: Transcript) -> None:
    fake = r.model
    inner = fake.info.fn

    async def info() -> dict[str, Any]:
        return {**(await inner()), "multilingual": True}

    async def transcribe(job: Any) -> Transcript:
        fake.jobs.append(job)
        return transcript

    fake.info, fake.transcribe = _Remote(info), _Remote(transcribe)


def test_request_options_reach_the_job_and_verbose_json_has_statistics_and_words() -> None:
    seg = Segment(
        0,
        0.0,
        1.0,
        " Hello there",
        [1, 2],
        avg_logprob=-0.25,
        compression_ratio=1.1,
        no_speech_prob=0.02,
        temperature=0.2,
        words=[Word(" Hello", 0.0, 0.4, 0.9), Word(" there", 0.4, 1.0, 0.8)],
    )
    r = ingress()
    _multilingual(r, Transcript("Hello there", [seg], "german", 1.0, task="translate"))
    fields = {"response_format": "verbose_json", "timestamp_granularities[]": "word", "hotwords": "Zelle"}
    out = asyncio.run(r.translations(upload(wav(1.0), **fields)))
    assert out.status_code == 200, out.body
    job = r.model.jobs[-1]
    assert (job.task, job.temperatures, job.word_timestamps, job.hotwords, job.timestamps) == (
        "translate",
        TEMPERATURE_LADDER,
        True,
        "Zelle",
        True,
    )
    got = body(out)
    assert got["task"] == "translate" and "segments" not in got  # only words were asked for
    assert got["words"] == [
        {"word": "Hello", "start": 0.0, "end": 0.4},
        {"word": "there", "start": 0.4, "end": 1.0},
    ]
    both = {**fields, "timestamp_granularities[]": "segment", "temperature": "0.6"}
    both_req = upload(wav(1.0), **both)
    out = asyncio.run(r.transcriptions(both_req))
    s0 = body(out)["segments"][0]
    assert (s0["avg_logprob"], s0["compression_ratio"], s0["no_speech_prob"], s0["temperature"]) == (
        -0.25,
        1.1,
        0.02,
        0.2,
    )
    assert r.model.jobs[-1].temperatures == (0.6,) and r.model.jobs[-1].task == "transcribe"
