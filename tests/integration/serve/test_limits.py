"""Every error the issue lists returns its code from the real Serve app (the ``/limits`` app).

That app runs a random toy Whisper with an API key, a 2.5 MB body limit, one request at a
time plus one queued, and a 1 s deadline; its model decodes 224 tokens per window, so a
60 s upload cannot finish in time.
"""

from __future__ import annotations

import concurrent.futures as cf

import httpx
import numpy as np
import pytest
from serve_testlib import API_KEY, SR, ServeEnv, wav_bytes

pytestmark = pytest.mark.integration

AUTH = {"Authorization": f"Bearer {API_KEY}"}


def post(
    env: ServeEnv, *, headers: dict[str, str] | None = None, timeout: float = 60, **kw
) -> httpx.Response:
    return httpx.post(env.url("limits", "/v1/audio/transcriptions"), headers=headers, timeout=timeout, **kw)


def clip(seconds: float) -> bytes:
    rng = np.random.default_rng(0)
    return wav_bytes((0.05 * rng.standard_normal(int(seconds * SR))).astype(np.float32))


def err(r: httpx.Response) -> str:
    return str(r.json()["error"]["message"])


def test_401_missing_or_wrong_key(serve_env: ServeEnv) -> None:
    files = {"file": ("a.wav", clip(1), "audio/wav")}
    for headers in (
        None,
        {"Authorization": "Bearer wrong"},
        {"Authorization": API_KEY},
        {"Authorization": "Basic dXNlcjpwYXNz"},
    ):
        r = post(serve_env, headers=headers, files=files)
        assert r.status_code == 401, (headers, r.text)
        assert r.headers["www-authenticate"] == "Bearer"
    assert httpx.get(serve_env.url("limits", "/v1/models"), timeout=30).status_code == 401
    models = httpx.get(serve_env.url("limits", "/v1/models"), headers=AUTH, timeout=30).json()
    # the served name and its alias; the model's directory is not an id (no server paths in listings)
    assert [m["id"] for m in models["data"]] == ["toy", "whisper-1"]


def test_413_by_content_length_and_by_streamed_bytes(serve_env: ServeEnv) -> None:
    big = b"\0" * (3 * 1024 * 1024)
    r = post(serve_env, headers=AUTH, files={"file": ("big.wav", big, "audio/wav")})
    assert r.status_code == 413 and "exceeds 2.5 MB" in err(r)

    def chunks():  # no Content-Length: chunked transfer, counted while streaming
        boundary = b"--xyz\r\n"
        yield boundary + b'Content-Disposition: form-data; name="file"; filename="big.wav"\r\n\r\n'
        for _ in range(48):
            yield b"\0" * 65536
        yield b"\r\n--xyz--\r\n"

    headers = {**AUTH, "Content-Type": "multipart/form-data; boundary=xyz"}
    r = post(serve_env, headers=headers, content=chunks())
    assert r.status_code == 413, r.text


def test_415_not_audio(serve_env: ServeEnv) -> None:
    r = post(
        serve_env, headers=AUTH, files={"file": ("notes.txt", b"just some text, no audio" * 40, "text/plain")}
    )
    assert r.status_code == 415 and "notes.txt: not a supported audio file" in err(r)
    assert "object at 0x" not in err(r) and "<_io" not in err(r)


def test_400_empty_missing_and_bad_fields(serve_env: ServeEnv) -> None:
    r = post(serve_env, headers=AUTH, files={"file": ("empty.wav", b"", "audio/wav")})
    assert r.status_code == 400 and "empty" in err(r)
    r = post(serve_env, headers=AUTH, files={"other": ("a.wav", clip(1), "audio/wav")})
    assert r.status_code == 400 and "'file'" in err(r)
    r = post(serve_env, headers=AUTH, data={"model": "whisper-1"})
    assert r.status_code == 400
    r = post(
        serve_env,
        headers=AUTH,
        files={"file": ("a.wav", clip(1), "audio/wav")},
        data={"response_format": "xml"},
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "response_format"
    r = post(
        serve_env, headers=AUTH, files={"file": ("a.wav", clip(1), "audio/wav")}, data={"language": "fr"}
    )
    assert r.status_code == 400 and "English-only" in err(r)
    r = post(
        serve_env,
        headers=AUTH,
        files={"file": ("a.wav", clip(1), "audio/wav")},
        data={"response_format": "verbose_json", "timestamp_granularities[]": "char"},
    )
    assert r.status_code == 400 and "not supported" in err(r)  # word and segment are served


def test_408_deadline(serve_env: ServeEnv) -> None:
    r = post(serve_env, headers=AUTH, files={"file": ("long.wav", clip(60), "audio/wav")})
    assert r.status_code == 408, r.text
    assert "did not finish within 1 s" in err(r)


def test_503_with_retry_after_when_the_queue_is_full(serve_env: ServeEnv) -> None:
    body = clip(60)

    def one(_: int) -> httpx.Response:
        return post(serve_env, headers=AUTH, files={"file": ("a.wav", body, "audio/wav")})

    with cf.ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(one, range(8)))
    statuses = sorted(r.status_code for r in codes)
    rejected = [r for r in codes if r.status_code == 503]
    assert len(rejected) >= 4, statuses  # 1 running + 1 queued; the rest are turned away
    assert all(r.headers.get("retry-after") == "3" for r in rejected)
    for r in rejected:  # OpenAI's JSON error, not Serve's plain text
        assert r.json()["error"]["code"] == 503 and "retry in 3 s" in r.json()["error"]["message"], r.text
    assert set(statuses) <= {408, 503}, statuses
