"""The local Ray of ``train`` and ``serve``, started the product's way: which sockets its
processes listen on (none off 127.0.0.1 beyond what ``localray.NON_LOOPBACK_ALLOWED`` allows a
process of that name, each documented in docs/training.md; those must refuse a call without
Ray's token), and that none of them outlives a SIGKILLed driver.

Ray 2.60 started plainly listens on every interface and its two agents live on for 60 s after
the driver is killed, so each assertion here fails without ``whisper_tune.localray``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest
from wt_train_testlib import job_dict

from whisper_tune.localray import NON_LOOPBACK_ALLOWED
from whisper_tune.net import free_loopback_port
from whisper_tune.train.config import JobConfig
from whisper_tune.train.launch import launch

pytestmark = pytest.mark.integration

GONE_WITHIN_S = 20.0  # Ray's own agents take 60 s
Listener = tuple[int, str, str, int]  # pid, process name, address, port


def _loopback(ip: str) -> bool:
    addr = ipaddress.ip_address(ip.split("%")[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_loopback


def _listeners(root: psutil.Process) -> set[Listener]:
    """Listening TCP and unconnected UDP sockets of ``root``'s descendants (the driver's own too)."""
    found: set[Listener] = set()
    for proc in [root, *root.children(recursive=True)]:
        try:
            name = proc.name()
            for c in proc.net_connections(kind="inet"):
                if c.status == psutil.CONN_LISTEN or (c.type == 2 and not c.raddr):  # 2: SOCK_DGRAM
                    found.add((proc.pid, name, c.laddr.ip, c.laddr.port))
        except psutil.Error:
            continue  # exited meanwhile
    return found


def _allowed(name: str) -> int:
    return next((n for prefix, n in NON_LOOPBACK_ALLOWED if name.startswith(prefix)), 0)


def _split(found: set[Listener]) -> tuple[list[Listener], list[Listener]]:
    """(allowed, refused) sockets off loopback: a process may keep its allowance, no more."""
    off: dict[int, list[Listener]] = {}
    for x in sorted(found):
        if not _loopback(x[2]):
            off.setdefault(x[0], []).append(x)
    allowed: list[Listener] = []
    refused: list[Listener] = []
    for socks in off.values():
        ports = sorted({x[3] for x in socks})  # one socket seen under two process titles is one
        keep = ports[: _allowed(socks[0][1])]
        allowed += [x for x in socks if x[3] in keep]
        refused += [x for x in socks if x[3] not in keep]
    return allowed, refused


def _off_loopback(found: set[Listener]) -> list[Listener]:
    return _split(found)[1]


def _unsigned_call_refused(port: int) -> bool:
    """A Serve replica's gRPC server answers a call without Ray's token with UNAUTHENTICATED."""
    import grpc

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary("/ray.serve.ASGIService/HandleRequest")
        try:
            call(b"", timeout=30)
        except grpc.RpcError as e:
            return e.code() == grpc.StatusCode.UNAUTHENTICATED
    return False


def _wait_gone(procs: list[psutil.Process]) -> list[str]:
    """Those of ``procs`` still running after GONE_WITHIN_S (zombies count as gone)."""
    deadline = time.monotonic() + GONE_WITHIN_S
    while True:
        alive = [p for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        if not alive or time.monotonic() > deadline:
            return [f"{p.pid} {p.name()}" for p in alive]
        time.sleep(0.5)


def _kill(procs: list[psutil.Process]) -> None:
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.kill()


def test_train_listens_on_loopback_only(
    tmp_path: Path, tiny_model_dir: Path, tiny_corpus: dict[str, Path]
) -> None:
    """A 2-worker run through ``launch`` (its own Ray): every socket seen while it runs."""
    import ray

    assert not ray.is_initialized()  # launch must start the Ray, the product's way
    seen: set[Listener] = set()
    stop = threading.Event()

    def sample() -> None:
        me = psutil.Process()
        while not stop.wait(0.5):
            seen.update(_listeners(me))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        data = job_dict(tiny_model_dir, tiny_corpus, tmp_path / "runs", scaling={"num_workers": 2})
        out = launch(JobConfig.from_mapping(data))
    finally:
        stop.set()
        sampler.join()
    assert out.global_step == 4
    names = {n for _, n, _, _ in seen}
    assert {"gcs_server", "raylet"} <= names and any("RayTrainWorker" in n for n in names), names
    assert _off_loopback(seen) == [], _off_loopback(seen)


_TRAIN_DRIVER = textwrap.dedent(
    """
    import os, ray
    from whisper_tune.train.config import JobConfig
    from whisper_tune.train.launch import _init_ray
    _init_ray(JobConfig.from_mapping({"data": {"train": "t.jsonl", "eval": "e.jsonl"}}))

    @ray.remote
    class Holder:
        def pid(self):
            return os.getpid()

    h = Holder.remote()
    ray.get(h.pid.remote())
    print("READY", flush=True)
    import time
    time.sleep(600)
    """
)


def test_train_driver_sigkilled_leaves_no_ray_process() -> None:
    proc = subprocess.Popen([sys.executable, "-c", _TRAIN_DRIVER], stdout=subprocess.PIPE, text=True)
    tree: list[psutil.Process] = []
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "READY"
        time.sleep(1.0)
        tree = psutil.Process(proc.pid).children(recursive=True)
        names = {p.name() for p in tree}
        assert {"gcs_server", "raylet", "ray::DashboardAgent", "ray::RuntimeEnvAgent"} <= names, names
        assert _off_loopback(_listeners(psutil.Process(proc.pid))) == []
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert _wait_gone(tree) == []
    finally:
        if proc.poll() is None:
            proc.kill()
        _kill(tree)


def test_serve_listens_on_loopback_and_dies_with_its_driver(tiny_model_dir: Path, tmp_path: Path) -> None:
    """``whisper-tune serve``: its sockets while it answers, then SIGKILL: nothing left behind."""
    port = free_loopback_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("RAY_ADDRESS", None)
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
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    tree: list[psutil.Process] = []
    try:
        deadline = time.time() + 300
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.time() < deadline, log.read_text()[-3000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(2)
        driver = psutil.Process(proc.pid)
        found = _listeners(driver)
        tree = driver.children(recursive=True)
        assert ("127.0.0.1", port) in {(ip, p) for _, _, ip, p in found}
        assert {"gcs_server", "raylet"} <= {n for _, n, _, _ in found}
        allowed, refused = _split(found)
        assert refused == []
        assert allowed  # the replicas' gRPC servers: one per replica (docs/training.md)
        assert all(_unsigned_call_refused(p) for _, _, _, p in allowed)
        os.kill(proc.pid, signal.SIGKILL)  # the driver only: its Ray must follow by itself
        proc.wait()
        assert _wait_gone(tree) == []
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        _kill(tree)
