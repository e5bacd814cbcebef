"""Replica logic that needs no running Serve: health verdicts (Model), API-key checks and the request
path of the ingress (Transcriber) with a fake Model handle: pool, 503, 413, 415, temperature."""

from __future__ import annotations

import asyncio
import json
import time
from types import SimpleNamespace
from typing import Any

import pytest
from starlette.requests import Request

from whisper_tune.inference import Transcript
from whisper_tune.serve.app import Model, ServeOptions, Transcriber, hash_api_key, run_inline


def replica(deployment: Any = Model, **kw: Any) -> Any:
    r = object.__new__(deployment.func_or_class)  # the plain class behind the Serve deployment
    r.opts = ServeOptions(model="unused", **kw)
    r._failures = 0
    r._broken = None
    return r


def test_health_fails_after_repeated_batch_failures() -> None:
    r = replica(health_failures=3)
    r.check_health()
    r._note_failure(ValueError("bad batch"))
    r._note_failure(ValueError("bad batch"))
    r.check_health()  # two in a row: still serving
    r._note_failure(ValueError("bad batch"))
    with pytest.raises(RuntimeError, match="backend unhealthy: ValueError: bad batch"):
        r.check_health()


def test_health_fails_at_once_on_cuda_errors() -> None:
    r = replica()
    r._note_failure(RuntimeError("CUDA error: an illegal memory access was encountered"))
    with pytest.raises(RuntimeError, match="CUDA error"):
        r.check_health()


def request(auth: str | None) -> Any:
    return SimpleNamespace(headers={"authorization": auth} if auth is not None else {})


def test_api_key_check() -> None:
    open_replica = replica(Transcriber)
    assert open_replica._auth(request(None)) is None
    r = replica(Transcriber, api_key_sha256=hash_api_key("k3y"))
    assert r._auth(request("Bearer k3y")) is None
    assert r._auth(request("bearer  k3y ")) is None
    for bad in (None, "", "Bearer", "Bearer k3", "Bearer k3y!", "Basic k3y", "k3y"):
        resp = r._auth(request(bad))
        assert resp is not None and resp.status_code == 401, bad
        assert resp.headers["www-authenticate"] == "Bearer"


def test_inline_model_defaults_to_gpu_only() -> None:
    assert run_inline(None, "cuda:0") and run_inline(None, "cuda")
    assert not run_inline(None, "cpu")  # a long file on a CPU would block health checks for minutes
    assert run_inline(True, "cpu") and not run_inline(False, "cuda:0")


# -- the ingress's request path, with a fake Model handle (no Ray) ---------------------------------------


class _Remote:
    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def remote(self, *args: Any) -> Any:
        return self.fn(*args)


class FakeModel:
    """What a Model DeploymentHandle offers the ingress; ``transcribe`` waits for ``release``."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.jobs: list[Any] = []

        async def info() -> dict[str, Any]:
            return {
                "status": "ok",
                "reason": None,
                "model": "fake",
                "backend": "hf",
                "device": "cpu",
                "precision": "float32",
                "multilingual": False,
                "stats": {},
            }

        async def transcribe(job: Any) -> Transcript:
            self.jobs.append(job)
            await self.release.wait()
            return Transcript(text="hello", segments=[], language="english", duration=1.0)

        self.info = _Remote(info)
        self.transcribe = _Remote(transcribe)


def ingress(**kw: Any) -> Any:
    from whisper_tune.serve.limits import Pool, UploadDeadline

    r = replica(Transcriber, **kw)
    r.model = FakeModel()
    r.created = 0
    r._info = None
    r.pool = Pool(r.opts.max_ongoing_requests, r.opts.max_queued_requests)
    r.uploads = 0
    r.upload_deadline = UploadDeadline(r.opts.upload_timeout_s, r.opts.upload_min_kb_s, r.opts.upload_max_s)
    return r


def upload(data: bytes, name: str = "a.wav", **fields: str) -> Request:
    import httpx

    built = httpx.Request(
        "POST", "http://x/v1/audio/transcriptions", files={"file": (name, data)}, data=fields
    )
    body = built.read()
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    headers = [(k.lower().encode(), v.encode()) for k, v in built.headers.items()]
    scope = {"type": "http", "method": "POST", "path": "/v1/audio/transcriptions", "headers": headers}
    return Request({**scope, "query_string": b""}, receive)


def wav(seconds: float, amp: float = 0.1) -> bytes:
    import io

    import numpy as np
    import soundfile as sf

    buf = io.BytesIO()
    t = np.arange(int(seconds * 16000)) / 16000
    sf.write(buf, (amp * np.sin(2 * np.pi * 300 * t)).astype(np.float32), 16000, format="WAV")
    return buf.getvalue()


def body(r: Any) -> dict[str, Any]:
    return dict(json.loads(r.body))


def test_full_pool_answers_503_json_while_healthz_is_served() -> None:
    r = ingress(max_ongoing_requests=2, max_queued_requests=1, retry_after_s=4)

    async def scenario() -> list[Any]:
        clip = wav(1.0)
        held = [asyncio.create_task(r.transcriptions(upload(clip))) for _ in range(3)]  # 2 at work + 1 queued
        await asyncio.sleep(0.3)
        assert (r.pool.running, r.pool.waiting) == (2, 1)
        t0 = time.monotonic()
        rejected = await r.transcriptions(upload(clip))
        health = await r.healthz(Request({"type": "http", "query_string": b"", "headers": []}))
        assert time.monotonic() - t0 < 1.0  # neither waited for the pool
        r.model.release.set()
        done = await asyncio.gather(*held)
        return [rejected, health, *done]

    rejected, health, *done = asyncio.run(scenario())
    assert rejected.status_code == 503 and rejected.headers["retry-after"] == "4"
    err = body(rejected)["error"]
    assert err["code"] == 503 and "busy" in err["message"] and err["type"] == "server_overloaded"
    assert health.status_code == 200 and body(health)["status"] == "ok"
    assert [d.status_code for d in done] == [200, 200, 200] and body(done[0]) == {"text": "hello"}


def test_request_path_errors() -> None:
    import io

    import numpy as np
    import soundfile as sf

    from whisper_tune.data.audio import DecodeLimits

    r = ingress(decode_limits=DecodeLimits(max_duration_s=60))
    r.model.release.set()
    buf = io.BytesIO()
    sf.write(buf, np.zeros((16000 * 61, 2), np.int16), 16000, format="FLAC", subtype="PCM_16")

    async def call(req: Request) -> Any:
        return await r.transcriptions(req)

    too_long = asyncio.run(call(upload(buf.getvalue(), "bomb.flac")))
    assert too_long.status_code == 413
    assert (
        "bomb.flac: the file declares 61 s of audio, over the limit of 60 s"
        in body(too_long)["error"]["message"]
    )
    not_audio = asyncio.run(call(upload(b"just text" * 50, "notes.txt")))
    assert not_audio.status_code == 415 and "object at 0x" not in body(not_audio)["error"]["message"]
    bad_t = asyncio.run(call(upload(wav(1.0), temperature="abc")))
    assert bad_t.status_code == 400 and body(bad_t)["error"]["param"] == "temperature"
    ok = asyncio.run(call(upload(wav(1.0), temperature="0.2", prompt="Zelle")))
    assert ok.status_code == 200 and r.model.jobs[-1].prompt == "Zelle"
    assert (r.pool.running, r.pool.waiting, r.uploads) == (0, 0, 0)


def test_serve_options_turn_the_speech_gate_on() -> None:
    from whisper_tune.inference import SpeechGate

    assert ServeOptions(model="m").backend_options.decode.gate == SpeechGate()


def test_uploads_beyond_max_open_uploads_get_503_at_once() -> None:
    r = ingress(max_open_uploads=2, upload_timeout_s=0.5, retry_after_s=1)

    def stalled() -> Request:
        async def receive() -> dict[str, Any]:
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        headers = [(b"content-type", b"multipart/form-data; boundary=x")]
        return Request(
            {"type": "http", "method": "POST", "path": "/", "headers": headers, "query_string": b""}, receive
        )

    async def scenario() -> tuple[Any, list[Any], float]:
        held = [asyncio.create_task(r.transcriptions(stalled())) for _ in range(2)]
        await asyncio.sleep(0.05)
        assert r.uploads == 2
        t0 = time.monotonic()
        third = await r.transcriptions(stalled())
        quick = time.monotonic() - t0
        return third, await asyncio.gather(*held), quick

    third, held, quick = asyncio.run(scenario())
    assert third.status_code == 503 and third.headers["retry-after"] == "1" and quick < 0.1
    assert "too many uploads in progress (2)" in body(third)["error"]["message"]
    assert [h.status_code for h in held] == [408, 408] and r.uploads == 0


def test_a_stereo_upload_with_timestamps_brings_its_channel_levels() -> None:
    import io

    import numpy as np
    import soundfile as sf

    r = ingress()
    r.model.release.set()
    t = np.arange(16000) / 16000
    tone = (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    buf = io.BytesIO()  # left speaks the first second, right the next
    sf.write(buf, np.stack([np.r_[tone, 0 * tone], np.r_[0 * tone, tone]], axis=1), 16000, format="WAV")
    stereo = buf.getvalue()

    async def call(req: Request) -> Any:
        return await r.transcriptions(req)

    for data, fmt, want in ((stereo, "verbose_json", True), (stereo, "srt", True), (stereo, "text", False),
                            (wav(1.0), "srt", False)):  # fmt: skip
        assert asyncio.run(call(upload(data, response_format=fmt))).status_code == 200
        lv = r.model.jobs[-1].levels
        assert (lv is not None) == want, fmt
        if want:
            assert lv.shape == (2, 100) and lv[0, :45].min() > lv[1, :45].max()


def test_the_model_hands_each_job_s_levels_to_the_backend() -> None:
    from whisper_tune.serve.jobs import Job

    seen: dict[str, Any] = {}

    class Backend:
        def transcribe_batch(
            self, audios: Any, *args: Any, levels: Any = None, **kw: Any
        ) -> list[Transcript]:
            seen["levels"] = levels
            return [Transcript(text="x", segments=[], language="english", duration=1.0) for _ in audios]

    m = replica()
    m.backend, m._inline = Backend(), True
    jobs = [Job("a1", None, None, True, time.monotonic() + 60, levels="L1"),
            Job("a2", None, None, True, time.monotonic() + 60)]  # fmt: skip
    outs = asyncio.run(Model.func_or_class._batched.__wrapped__(m, jobs))  # the batch body, no Serve
    assert [o.text for o in outs] == ["x", "x"] and seen["levels"] == ["L1", None]
