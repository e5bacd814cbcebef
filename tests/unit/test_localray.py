"""``whisper_tune.localray`` without starting Ray: the dashboard fallback, the loopback switch,
the Train V2 noise filter, and the watchdog on real (Ray-free) processes."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path
from typing import Any

import pytest

from whisper_tune import localray


class _FakeRay:
    """Stands in for the ``ray`` module: records ``init`` calls, optionally fails the first."""

    def __init__(self, first_error: Exception | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.shutdowns = 0
        self.first_error = first_error
        self.flag_seen: list[bool] = []

    def init(self, **kw: Any) -> Any:
        from ray._private import ray_constants

        self.calls.append(kw)
        self.flag_seen.append(ray_constants.ENABLE_RAY_CLUSTER)
        if self.first_error is not None and len(self.calls) == 1:
            raise self.first_error
        dash = "127.0.0.1:1234" if kw["include_dashboard"] else None
        return types.SimpleNamespace(address_info={"session_dir": "/tmp/ray/session_x"}, dashboard_url=dash)

    def shutdown(self) -> None:
        self.shutdowns += 1


@pytest.fixture
def fake_ray(monkeypatch: pytest.MonkeyPatch) -> _FakeRay:
    import ray

    fake = _FakeRay()
    monkeypatch.setattr(ray, "init", fake.init)
    monkeypatch.setattr(ray, "shutdown", fake.shutdown)
    monkeypatch.setattr(localray, "start_reaper", lambda session_dir: None)
    return fake


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name == localray.__name__
    ]


def test_every_address_is_loopback(fake_ray: _FakeRay) -> None:
    out = localray.start_local_ray(localray.LocalRayOptions(dashboard=True, num_cpus=3))
    (kw,) = fake_ray.calls
    assert kw["address"] == "local" and kw["_node_ip_address"] == "127.0.0.1" == kw["dashboard_host"]
    assert kw["include_dashboard"] is True and kw["num_cpus"] == 3 and kw["dashboard_port"] > 0
    assert fake_ray.flag_seen == [False]  # Ray's "no cluster" mode on during ray.init
    assert out.dashboard_url == "http://127.0.0.1:1234" and out.session_dir == "/tmp/ray/session_x"


def test_loopback_switch_is_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    from ray._private import ray_constants

    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "1")
    before = ray_constants.ENABLE_RAY_CLUSTER
    with localray._loopback_node_address():
        assert os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0"
        assert ray_constants.ENABLE_RAY_CLUSTER is False
    assert os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "1"
    assert before is ray_constants.ENABLE_RAY_CLUSTER


def test_missing_dashboard_packages_fall_back_with_one_warning(
    fake_ray: _FakeRay, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(localray, "dashboard_dependency_error", lambda: "No module named 'aiohttp_cors'")
    caplog.set_level(logging.WARNING)
    out = localray.start_local_ray(localray.LocalRayOptions(dashboard=True))
    (kw,) = fake_ray.calls
    assert kw["include_dashboard"] is False and "dashboard_port" not in kw
    assert kw["runtime_env"]["worker_process_setup_hook"] == "whisper_tune.localray.worker_setup"
    assert out.dashboard_url is None
    (warning,) = _warnings(caplog)
    assert "aiohttp_cors" in warning and "without it" in warning


def test_rays_own_dashboard_error_falls_back_too(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import ray

    fake = _FakeRay(first_error=Exception("Cannot include dashboard with missing packages."))
    monkeypatch.setattr(ray, "init", fake.init)
    monkeypatch.setattr(ray, "shutdown", fake.shutdown)
    monkeypatch.setattr(localray, "start_reaper", lambda session_dir: None)
    monkeypatch.setattr(localray, "dashboard_dependency_error", lambda: None)  # the pre-check saw nothing
    caplog.set_level(logging.WARNING)
    out = localray.start_local_ray(localray.LocalRayOptions(dashboard=True))
    assert [c["include_dashboard"] for c in fake.calls] == [True, False] and fake.shutdowns == 1
    assert out.dashboard_url is None and len(_warnings(caplog)) == 1


def test_other_start_errors_are_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    import ray

    fake = _FakeRay(first_error=RuntimeError("port in use"))
    monkeypatch.setattr(ray, "init", fake.init)
    monkeypatch.setattr(localray, "dashboard_dependency_error", lambda: None)
    with pytest.raises(RuntimeError, match="port in use"):
        localray.start_local_ray(localray.LocalRayOptions(dashboard=True))
    assert len(fake.calls) == 1


def test_runtime_env_adds_the_hook_and_loopback_interfaces(
    fake_ray: _FakeRay, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GLOO_SOCKET_IFNAME", raising=False)
    monkeypatch.setenv("NCCL_SOCKET_IFNAME", "eth1")  # the user's choice wins
    localray.start_local_ray(localray.LocalRayOptions(runtime_env={"env_vars": {"A": "1"}}))
    (kw,) = fake_ray.calls
    assert kw["runtime_env"]["worker_process_setup_hook"] == "whisper_tune.localray.worker_setup"
    assert kw["runtime_env"]["env_vars"] == {"A": "1", "GLOO_SOCKET_IFNAME": "lo"}


_STORE_PROBE = textwrap.dedent(
    """
    import sys
    from datetime import timedelta
    import psutil
    from whisper_tune.localray import worker_setup
    from whisper_tune.net import free_loopback_port
    worker_setup()
    assert "torch" not in sys.modules  # nothing imported until a worker needs it
    import torch.distributed  # imports the rendezvous module, and the hook patches it
    rendezvous = sys.modules["torch.distributed.rendezvous"]
    assert rendezvous._create_c10d_store.whisper_tune_loopback
    port = free_loopback_port()
    store = rendezvous._create_c10d_store("127.0.0.1", port, 0, 1, timedelta(seconds=30))
    store.set("k", "v")
    assert store.get("k") == b"v"
    print(sorted({c.laddr.ip for c in psutil.Process().net_connections("tcp")
                  if c.status == psutil.CONN_LISTEN and c.laddr.port == port}))
    """
)


def test_torch_rendezvous_store_listens_on_loopback_only() -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(localray.__file__).parents[1])}
    out = subprocess.run(
        [sys.executable, "-c", _STORE_PROBE], capture_output=True, text=True, env=env, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "['127.0.0.1']"  # torch alone listens on '::'


def test_train_state_api_noise_is_filtered_by_the_right_logger() -> None:
    from ray.train.v2._internal.execution.controller import placement_group_cleaner

    assert placement_group_cleaner.logger.name == localray.TRAIN_STATE_API_LOGGER
    logger = logging.getLogger(localray.TRAIN_STATE_API_LOGGER)
    try:
        localray.quiet_train_state_api()
        localray.quiet_train_state_api()  # idempotent: one filter
        assert len(logger.filters) == 1
        noise = logger.makeRecord(
            logger.name, logging.WARNING, "f", 1, localray.TRAIN_STATE_API_NOISE + ". x", (), None
        )
        other = logger.makeRecord(
            logger.name, logging.WARNING, "f", 1, "Cleaning up placement group", (), None
        )
        assert not logger.filter(noise) and logger.filter(other)
    finally:
        logger.filters.clear()


# --- the watchdog, on plain processes -----------------------------------------------------------

_DRIVER = textwrap.dedent(
    """
    import subprocess, sys, time
    from whisper_tune.localray import start_reaper
    session = sys.argv[1]
    hold = "import subprocess, time; subprocess.Popen(['sleep', '600']); time.sleep(600)"
    ray_like = subprocess.Popen([sys.executable, "-c", hold, session])  # names the session
    other = subprocess.Popen(["sleep", "601"])  # a child of the driver that is not Ray's
    time.sleep(1.0)
    print(start_reaper(session), ray_like.pid, other.pid, flush=True)
    if sys.argv[2] == "stop-session":
        time.sleep(1.5)
        ray_like.kill()
    time.sleep(600)
    """
)


def _driver(tmp_path: Path, mode: str) -> tuple[subprocess.Popen[str], int, int, int, str]:
    session = str(tmp_path / "session_2026-01-01_00-00-00_000000_1")
    env = {**os.environ, "PYTHONPATH": str(Path(localray.__file__).parents[1])}
    proc = subprocess.Popen(
        [sys.executable, "-c", _DRIVER, session, mode], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None
    reaper, ray_like, other = (int(x) for x in proc.stdout.readline().split())
    return proc, reaper, ray_like, other, session


def _started(*pids: int) -> dict[int, int]:
    return {p: st[2] for p in pids if (st := localray._stat(p)) is not None}


def _gone(pid: int, started: int) -> bool:
    return not localray._alive(pid, started)


def _wait(cond: Any, timeout: float) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if cond():
            return time.monotonic() - t0
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout} s")


def _kill_all(procs: dict[int, int]) -> None:
    for pid, started in procs.items():
        if localray._alive(pid, started):
            os.kill(pid, signal.SIGKILL)


def test_reaper_kills_the_session_tree_when_the_driver_is_sigkilled(tmp_path: Path) -> None:
    proc, reaper, ray_like, other, session = _driver(tmp_path, "hold")
    tree = localray.session_tree(proc.pid, session.encode())
    mine = _started(reaper, other)
    try:
        tree.pop(reaper)  # its command line names the session too (it skips itself)
        assert ray_like in tree and len(tree) == 2  # the session process and its `sleep`
        assert other not in tree
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        took = _wait(lambda: all(_gone(p, s) for p, s in tree.items()), 20)
        assert took < 10  # Ray's agents alone take 60 s
        _wait(lambda: _gone(reaper, mine[reaper]), 10)
        assert localray._alive(other, mine[other])  # not the session's: left alone
    finally:
        _kill_all({**tree, **mine})


def test_reaper_exits_when_the_session_ends_first(tmp_path: Path) -> None:
    proc, reaper, ray_like, other, session = _driver(tmp_path, "stop-session")
    started = {**_started(reaper, other), **localray.session_tree(proc.pid, session.encode())}
    try:
        assert ray_like in started
        _wait(lambda: _gone(reaper, started[reaper]), 15)  # the session ended: nothing to guard
        assert proc.poll() is None and localray._alive(other, started[other])  # left alone
    finally:
        proc.kill()
        proc.wait()
        _kill_all(started)
