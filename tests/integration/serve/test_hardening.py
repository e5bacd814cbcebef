"""Issue 18's probes against the real Serve app: a stalled-upload flood, FLAC bombs, silence and
crumbs of audio, bad temperatures, and the error bodies.

The flood: twice ``max_ongoing_requests`` (2 x 16) raw sockets on ``/hf`` that send headers and
part of a body (or nothing, or a Content-Length larger than what they send, or half the
headers) and then stall. Before the fix they held every place of the ingress for the 300 s
request timeout and ``/healthz`` timed out; now a normal request and ``/healthz`` are answered
while they stall, and every stalled body gets 408 after ``/hf``'s 3 s upload timeout.
"""

from __future__ import annotations

import socket
import time
from urllib.parse import urlparse

import httpx
import numpy as np
import pytest
from serve_testlib import API_KEY, SR, ServeEnv, wav_bytes

from wt_audio_testutil import silent_flac

pytestmark = pytest.mark.integration

AUTH = {"Authorization": f"Bearer {API_KEY}"}
MAX_ONGOING = 16  # /hf uses ServeOptions' default
UPLOAD_TIMEOUT_S = 3.0  # /hf's (conftest)


def _stalled(env: ServeEnv, kind: str) -> socket.socket:
    url = urlparse(env.base)
    s = socket.create_connection((url.hostname, url.port), timeout=30)
    head = (
        "POST /hf/v1/audio/transcriptions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: multipart/form-data; boundary=xyz\r\n"
    )
    part = b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\nRIFF\x00\x00'
    if kind == "half_headers":
        s.sendall(head.encode()[:60])
    elif kind == "headers_only":
        s.sendall(f"{head}Content-Length: 100000\r\n\r\n".encode())
    elif kind == "partial_body":
        s.sendall(f"{head}Content-Length: 100000\r\n\r\n".encode() + part)
    elif kind == "lying_length":  # a complete small multipart body, declared as 5000 bytes
        whole = part + b"\r\n--xyz--\r\n"
        s.sendall(f"{head}Content-Length: {len(whole) + 5000}\r\n\r\n".encode() + whole)
    else:
        raise ValueError(kind)
    return s


def _response(s: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_stalled_uploads_do_not_lock_up_the_server(serve_env: ServeEnv, speech_clip: bytes) -> None:
    kinds = ["half_headers", "headers_only", "partial_body", "lying_length"]
    t_flood = time.monotonic()
    socks = [(kinds[i % 4], _stalled(serve_env, kinds[i % 4])) for i in range(2 * MAX_ONGOING)]
    try:
        time.sleep(0.5)  # all of them are in (the body ones hold an ingress request now)
        t0 = time.monotonic()
        health = httpx.get(serve_env.url("hf", "/healthz"), timeout=60)
        t_health = time.monotonic() - t0
        t0 = time.monotonic()
        r = httpx.post(
            serve_env.url("hf", "/v1/audio/transcriptions"),
            files={"file": ("clip.wav", speech_clip, "audio/wav")},
            timeout=120,
        )
        t_request = time.monotonic() - t0
        print(
            f"\nwith {len(socks)} stalled clients: /healthz {t_health:.2f} s, a transcription {t_request:.2f} s"
        )
        assert health.status_code == 200 and health.json()["status"] == "ok", (health.text, r.text)
        assert t_health < 2.0, t_health
        assert r.status_code == 200 and "account" in r.json()["text"].lower(), r.text
        assert t_request < 30.0, t_request
        # every stalled body is answered 408 once its upload deadline passed; its place is free
        answered = []
        for kind, s in socks:
            if kind == "half_headers":
                continue
            s.settimeout(UPLOAD_TIMEOUT_S + 20)
            raw = _response(s)
            answered.append(time.monotonic() - t_flood)
            assert raw.startswith(b"HTTP/1.1 408"), (kind, raw[:200])
            assert b'"error"' in raw and b"upload too slow" in raw, raw[-300:]
        print(f"408s for {len(answered)} stalled bodies after {min(answered):.1f}-{max(answered):.1f} s")
        assert min(answered) >= UPLOAD_TIMEOUT_S - 0.5
        assert max(answered) < UPLOAD_TIMEOUT_S + 15
    finally:
        for _, s in socks:
            s.close()


def test_flac_bombs_get_413_naming_the_limit(serve_env: ServeEnv) -> None:
    url = serve_env.url("limits", "/v1/audio/transcriptions")
    for name, data, limit in (
        ("bomb8.flac", silent_flac(20 * 60, 48000, 8), "over the limit of 460.8 MB of decoded audio"),
        ("long.flac", silent_flac(3 * 3600, 16000, 1), "over the limit of 7200 s of decoded audio"),
    ):
        assert len(data) < 1_000_000
        t0 = time.monotonic()
        r = httpx.post(url, headers=AUTH, files={"file": (name, data, "audio/flac")}, timeout=60)
        took = time.monotonic() - t0
        assert r.status_code == 413, r.text
        err = r.json()["error"]
        assert limit in err["message"] and name in err["message"] and err["param"] == "file"
        assert took < 5.0, took  # refused from the header, nothing decoded


def test_silence_and_crumbs_get_empty_text(serve_env: ServeEnv) -> None:
    url = serve_env.url("hf", "/v1/audio/transcriptions")
    t = np.arange(int(0.05 * SR)) / SR
    crumb = (0.5 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    ten_min = silent_flac(600, SR, 1)
    for name, data in (("silence.flac", ten_min), ("crumb.wav", wav_bytes(crumb))):
        t0 = time.monotonic()
        r = httpx.post(
            url, files={"file": (name, data)}, data={"response_format": "verbose_json"}, timeout=120
        )
        took = time.monotonic() - t0
        assert r.status_code == 200, r.text
        assert r.json()["text"] == "" and r.json()["segments"] == [], (name, r.text)
        assert took < 20.0, (name, took)  # no window reached the model


def test_field_checks_and_error_shapes(serve_env: ServeEnv) -> None:
    url = serve_env.url("limits", "/v1/audio/transcriptions")
    clip = wav_bytes((0.05 * np.random.default_rng(0).standard_normal(SR)).astype(np.float32))
    for bad in ("abc", "5", "-1", "nan"):
        r = httpx.post(
            url, headers=AUTH, files={"file": ("a.wav", clip)}, data={"temperature": bad}, timeout=60
        )
        assert r.status_code == 400 and r.json()["error"]["param"] == "temperature", (bad, r.text)
    for path, code in (("/nowhere", 404), ("/docs", 404), ("/v1/audio/transcriptions", 405)):
        r = httpx.get(serve_env.url("limits", path), timeout=30)
        assert r.status_code == code, (path, r.text)
        assert set(r.json()["error"]) == {"message", "type", "param", "code"}
