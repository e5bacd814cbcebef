"""Replica logic that needs no running Serve: health verdicts (Model) and API-key checks (Transcriber)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

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
