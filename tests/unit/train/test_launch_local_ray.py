"""``launch._init_ray``: a local run starts Ray through ``whisper_tune.localray`` (loopback,
reaped, dashboard when it can); ``run.ray_address`` connects as before. Ray is not started."""

from __future__ import annotations

import logging
import os
from typing import Any

import pytest

import whisper_tune.train.launch as launch
from whisper_tune.localray import LocalRay, LocalRayOptions
from whisper_tune.train.config import JobConfig


@pytest.fixture
def fake_ray(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    import ray

    inits: list[dict[str, Any]] = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kw: inits.append(kw))
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 2.0})
    return inits


def _cfg(**run: Any) -> JobConfig:
    return JobConfig.from_mapping({"data": {"train": "t.jsonl", "eval": "e.jsonl"}, "run": run})


def test_local_run_uses_the_loopback_start_up(
    fake_ray: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[LocalRayOptions] = []

    def start(opts: LocalRayOptions) -> LocalRay:
        seen.append(opts)
        return LocalRay(session_dir="/tmp/ray/s", dashboard_url="http://127.0.0.1:9", reaper_pid=None)

    monkeypatch.setattr(launch, "start_local_ray", start)
    caplog.set_level(logging.INFO, logger=launch.__name__)
    assert launch._init_ray(_cfg()) == (True, {"CPU": 2.0})
    assert fake_ray == []  # never a plain ray.init for a local run
    (opts,) = seen
    assert opts.dashboard and opts.num_cpus == (os.cpu_count() or 1) and opts.logging_level == logging.WARNING
    assert "Ray dashboard: http://127.0.0.1:9" in caplog.text


def test_no_dashboard_url_is_not_logged(
    fake_ray: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(
        launch, "start_local_ray", lambda opts: LocalRay(session_dir="s", dashboard_url=None, reaper_pid=None)
    )
    caplog.set_level(logging.INFO, logger=launch.__name__)
    assert launch._init_ray(_cfg())[0] is True
    assert "Ray dashboard" not in caplog.text


def test_ray_address_connects_without_the_local_start_up(
    fake_ray: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(launch, "start_local_ray", lambda opts: pytest.fail("local start for a cluster run"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert launch._init_ray(_cfg(ray_address="ray://10.0.0.1:10001"))[0] is True
    (kw,) = fake_ray
    assert kw["address"] == "ray://10.0.0.1:10001" and kw["runtime_env"]["env_vars"]["HF_HUB_OFFLINE"] == "1"
