"""Slow tier: a 10-minute call through the endpoint, and the ``whisper-tune serve`` command itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from serve_testlib import SR, ServeEnv, speech, wav_bytes

from whisper_tune.net import free_loopback_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_ten_minute_call(serve_env: ServeEnv) -> None:
    turns = [
        speech("Thank you for calling, how can I help you today?"),
        speech("I need to report a stolen credit card.", voice="en-gb"),
        speech("I have blocked the card and ordered a replacement."),
    ]
    pause = np.zeros(2 * SR, dtype=np.float32)
    parts: list[np.ndarray] = []
    while sum(len(p) for p in parts) < 600 * SR:
        for t in turns:
            parts += [t, pause]
    audio = np.concatenate(parts)[: 600 * SR]
    body = wav_bytes(audio)
    assert len(body) < 25 * 1024 * 1024  # fits the default limit
    t0 = time.perf_counter()
    r = httpx.post(
        serve_env.url("ct2", "/v1/audio/transcriptions"),
        files={"file": ("call.wav", body, "audio/wav")},
        data={"response_format": "verbose_json"},
        timeout=900,
    )
    wall = time.perf_counter() - t0
    assert r.status_code == 200, r.text
    segs = r.json()["segments"]
    starts = [s["start"] for s in segs]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    assert segs[-1]["end"] <= 600.01 and segs[-1]["start"] > 570.0
    assert r.json()["text"].lower().count("credit card") >= 30
    print(f"10-minute call: {wall:.1f} s wall, {len(segs)} segments")


def test_cli_serves_and_stops(tiny_model_dir: Path, tmp_path: Path) -> None:
    port = free_loopback_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WT_KEY": "k"}
    cmd = [
        sys.executable,
        "-m",
        "whisper_tune.cli",
        "serve",
        "--model",
        str(tiny_model_dir),
        "--port",
        str(port),
    ]
    cmd += ["--api-key-env", "WT_KEY", "--name", "toy-cli"]
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 300
        while time.time() < deadline:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            try:
                h = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
                if h.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(2)
        assert h.json()["model"] == "toy-cli"
        r = httpx.get(f"http://127.0.0.1:{port}/v1/models", headers={"Authorization": "Bearer k"}, timeout=30)
        assert r.json()["data"][0]["id"] == "toy-cli"
        assert httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=30).status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(timeout=120) == 0
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
