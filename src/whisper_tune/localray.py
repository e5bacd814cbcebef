"""The one start-up of the private local Ray that ``train`` and ``serve`` run on.

Why: a Ray started the plain way (``ray.init()``) listens on every interface of the machine
(GCS, raylet, object manager, every worker's and Serve replica's gRPC server, the dashboard
agent's metrics endpoint) and leaves its dashboard agent and runtime-env agent running for a
minute after its driver was SIGKILLed. This module starts it so that:

- every socket is on 127.0.0.1. Ray 2.60 rewrites ``_node_ip_address="127.0.0.1"`` to the
  machine's routable address unless its "no cluster" mode is on (the mode macOS and Windows get
  by default, ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``); with it on, the node's address stays
  127.0.0.1 and Ray binds each server to the node's address. The switch is set for the
  ``ray.init`` call only (the processes it spawns inherit it), so a later connection to a real
  cluster from the same process is unaffected. Measured with ``ss -ltnp``: one socket per Serve
  replica is left on every interface, its inter-deployment gRPC server, which Ray Serve 2.60
  binds to ``[::]:0`` in code (``ray/serve/_private/replica.py``) with no option; Ray's token
  authentication guards it (``NON_LOOPBACK_ALLOWED``; docs/training.md; the test in
  tests/integration/train/test_ray_loopback.py lists every socket and calls that one unsigned).
- nothing outlives the driver. Ray ties the GCS and the raylet to the driver
  (``PR_SET_PDEATHSIG``), but the two agents, children of the raylet, spend 60 s trying to tell
  the dead GCS before they exit. A small watchdog (this file run as a script, stdlib only) polls
  the session's process tree every second and, once the driver is gone, sends SIGTERM and then
  SIGKILL to whatever is left. It exits by itself when Ray shuts down normally.
- the training processes Ray Train starts stay on loopback too. PyTorch's rendezvous store
  (``TCPStore``, on rank 0) always listens on the wildcard address, whatever ``MASTER_ADDR``
  says; the worker set-up hook below makes torch create it on a socket bound to the
  (loopback) ``MASTER_ADDR`` instead (torch's own ``master_listen_fd`` option), patching
  ``torch.distributed.rendezvous`` only when a worker imports it, so Ray's helper actors do not
  pay for a torch import. Gloo and NCCL pick their interface from ``GLOO_SOCKET_IFNAME`` /
  ``NCCL_SOCKET_IFNAME`` (NCCL skips ``lo`` by default): set to ``lo`` unless already set.
- a Ray installed without the dashboard's packages (``ray`` rather than ``ray[default]``)
  starts without the dashboard, with one warning, instead of raising "Cannot include dashboard
  with missing packages". Without the dashboard Ray's State API is gone, and Train V2's
  placement-group cleaner would log "Failed to query Ray Train Controller actor state" every
  second: the same worker set-up hook filters exactly that line out of Ray's workers.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = [
    "LOOPBACK",
    "NON_LOOPBACK_ALLOWED",
    "TRAIN_STATE_API_LOGGER",
    "TRAIN_STATE_API_NOISE",
    "LocalRay",
    "LocalRayOptions",
    "dashboard_dependency_error",
    "bind_torch_store_to_loopback",
    "quiet_train_state_api",
    "start_local_ray",
    "start_reaper",
    "worker_setup",
]

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
# (process-name prefix, listening sockets off loopback allowed per such process), measured on Ray
# 2.60. Every entry is documented in docs/training.md with the reason and what protects it.
NON_LOOPBACK_ALLOWED: tuple[tuple[str, int], ...] = (("ray::ServeReplica:", 1),)
TRAIN_STATE_API_NOISE = "Failed to query Ray Train Controller actor state"
TRAIN_STATE_API_LOGGER = "ray.train.v2._internal.execution.controller.placement_group_cleaner"
_NO_CLUSTER_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": node address stays loopback
_DASHBOARD_MISSING = "Cannot include dashboard with missing packages"
_WORKER_HOOK = f"{__name__}.worker_setup"
_LOOPBACK_IFNAME = {"GLOO_SOCKET_IFNAME": "lo", "NCCL_SOCKET_IFNAME": "lo"}  # Linux's loopback
_RENDEZVOUS = "torch.distributed.rendezvous"
_STORE_FACTORY = "_create_c10d_store"
_REAPER_POLL_S = 1.0
_REAPER_GRACE_S = 2.0


@dataclass(frozen=True)
class LocalRayOptions:
    """How ``start_local_ray`` starts Ray (everything else is fixed: loopback, no orphans)."""

    dashboard: bool = False  # the dashboard also serves the State API Train V2's cleaner polls
    num_cpus: int | None = None  # None: Ray counts them
    log_to_driver: bool = True
    logging_level: int | None = None  # None: Ray's default
    runtime_env: dict[str, Any] | None = None


@dataclass(frozen=True)
class LocalRay:
    """What ``start_local_ray`` started."""

    session_dir: str
    dashboard_url: str | None  # http://127.0.0.1:PORT, or None without the dashboard
    reaper_pid: int | None  # the watchdog's pid (None where it cannot run: not Linux)


def dashboard_dependency_error() -> str | None:
    """Why Ray's dashboard cannot start here (its optional packages missing), or None.

    The same import Ray makes before it refuses ``include_dashboard=True``.
    """
    try:
        import ray.dashboard.optional_deps  # noqa: F401
    except ImportError as e:
        return str(e) or type(e).__name__
    return None


class _DropStateApiNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return TRAIN_STATE_API_NOISE not in record.getMessage()


def quiet_train_state_api() -> None:
    """Drop Train V2's once-a-second State-API warning (it comes only without the dashboard).

    By logger name, so a Serve replica does not import Ray Train for it; a unit test checks
    the name against Ray's module.
    """
    logger = logging.getLogger(TRAIN_STATE_API_LOGGER)
    if not any(isinstance(f, _DropStateApiNoise) for f in logger.filters):
        logger.addFilter(_DropStateApiNoise())


def _loopback_store(original: Callable[..., Any]) -> Callable[..., Any]:
    """``_create_c10d_store`` whose rank-0 server listens on the loopback host it was given."""

    def create(
        hostname: str, port: int, rank: int, world_size: int, timeout: Any, *args: Any, **kw: Any
    ) -> Any:
        use_libuv = bool(args[0]) if args else bool(kw.get("use_libuv", True))
        agent_store = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == str(True)
        if rank != 0 or agent_store or hostname not in ("127.0.0.1", "localhost", "::1"):
            return original(hostname, port, rank, world_size, timeout, *args, **kw)
        from torch.distributed import TCPStore

        family, kind, proto, _, address = socket.getaddrinfo(hostname, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(socket.SOMAXCONN)
        return TCPStore(
            host_name=hostname,
            port=port,
            world_size=world_size,
            is_master=True,
            timeout=timeout,
            multi_tenant=True,
            master_listen_fd=sock.detach(),  # the store owns the socket from here on
            use_libuv=use_libuv,
        )

    create.whisper_tune_loopback = True  # type: ignore[attr-defined]
    return create


def _patch_rendezvous(module: ModuleType) -> None:
    original = getattr(module, _STORE_FACTORY, None)
    if callable(original) and not getattr(original, "whisper_tune_loopback", False):
        setattr(module, _STORE_FACTORY, _loopback_store(original))


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Runs ``patch(module)`` right after ``name`` is first imported (and then steps aside)."""

    def __init__(self, name: str, patch: Callable[[ModuleType], None]) -> None:
        self.name, self.patch = name, patch

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)  # the real finders locate it
        spec = importlib.util.find_spec(fullname)
        loader = spec.loader if spec is not None else None
        if spec is None or loader is None or not hasattr(loader, "exec_module"):
            return spec
        run, patch = loader.exec_module, self.patch

        def exec_module(module: ModuleType) -> None:
            run(module)
            patch(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def bind_torch_store_to_loopback() -> None:
    """Make torch's rendezvous store listen on its loopback ``MASTER_ADDR`` (now or on import)."""
    module = sys.modules.get(_RENDEZVOUS)
    if module is not None:
        _patch_rendezvous(module)
    elif not any(isinstance(f, _PatchOnImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _PatchOnImport(_RENDEZVOUS, _patch_rendezvous))


def worker_setup() -> None:
    """Ray worker set-up hook of the local Ray: every worker process runs it once at start."""
    quiet_train_state_api()
    bind_torch_store_to_loopback()


@contextlib.contextmanager
def _loopback_node_address() -> Iterator[None]:
    """Ray's "no cluster" mode for one ``ray.init``: the node address stays 127.0.0.1."""
    from ray._private import ray_constants

    old_env = os.environ.get(_NO_CLUSTER_ENV)
    old_flag = ray_constants.ENABLE_RAY_CLUSTER  # read at import; services.py reads it per call
    os.environ[_NO_CLUSTER_ENV] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = old_flag
        if old_env is None:
            os.environ.pop(_NO_CLUSTER_ENV, None)
        else:
            os.environ[_NO_CLUSTER_ENV] = old_env


def _init_kwargs(opts: LocalRayOptions, dashboard: bool) -> dict[str, Any]:
    from whisper_tune.net import free_loopback_port

    kw: dict[str, Any] = {
        "address": "local",  # a private instance, never a cluster some `ray start` left running
        "_node_ip_address": LOOPBACK,
        "include_dashboard": dashboard,
        "dashboard_host": LOOPBACK,
        "log_to_driver": opts.log_to_driver,
    }
    if dashboard:
        kw["dashboard_port"] = free_loopback_port()
    if opts.num_cpus is not None:
        kw["num_cpus"] = opts.num_cpus
    if opts.logging_level is not None:
        kw["logging_level"] = opts.logging_level
    runtime_env = dict(opts.runtime_env or {})
    runtime_env.setdefault("worker_process_setup_hook", _WORKER_HOOK)
    env_vars = dict(runtime_env.get("env_vars") or {})
    if sys.platform.startswith("linux"):
        for name, value in _LOOPBACK_IFNAME.items():
            if name not in os.environ:  # a user's own choice wins
                env_vars.setdefault(name, value)
    if env_vars:
        runtime_env["env_vars"] = env_vars
    kw["runtime_env"] = runtime_env
    return kw


def _without_dashboard_warning(reason: str) -> None:
    log.warning(
        "Ray's dashboard cannot start (%s; `pip install 'ray[default]'` adds it): "
        "starting Ray without it (no State API, no dashboard URL)",
        reason,
    )


def start_local_ray(opts: LocalRayOptions | None = None) -> LocalRay:
    """Start a private Ray on this machine, every socket on 127.0.0.1, reaped with the driver."""
    import ray

    opts = opts or LocalRayOptions()
    dashboard = opts.dashboard
    if dashboard and (missing := dashboard_dependency_error()):
        _without_dashboard_warning(missing)
        dashboard = False
    ctx: Any  # a RayContext (address="local" never gives a Ray Client context)
    with _loopback_node_address():
        try:
            ctx = ray.init(**_init_kwargs(opts, dashboard))
        except Exception as e:  # the same check, made by Ray itself: fall back the same way
            if not dashboard or _DASHBOARD_MISSING not in str(e):
                raise
            _without_dashboard_warning(str(e))
            ray.shutdown()
            dashboard = False
            ctx = ray.init(**_init_kwargs(opts, dashboard))
    session_dir = str(ctx.address_info["session_dir"])
    url = f"http://{ctx.dashboard_url}" if dashboard and ctx.dashboard_url else None
    return LocalRay(session_dir=session_dir, dashboard_url=url, reaper_pid=start_reaper(session_dir))


def start_reaper(session_dir: str) -> int | None:
    """Start the watchdog that kills the session's processes once this process is gone.

    It is this file run as a script (``python -I``: stdlib only, no package import), in its
    own session so a Ctrl-C or hang-up meant for the driver does not stop it first.
    """
    if not sys.platform.startswith("linux"):
        return None  # elsewhere Ray uses its own process-group reaper
    proc = subprocess.Popen(
        [sys.executable, "-I", str(Path(__file__).resolve()), str(os.getpid()), session_dir],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    assert proc.stdout is not None
    with proc.stdout:  # one line once it has seen the session: from here on a kill is covered
        ready = proc.stdout.readline().strip()
    if ready != b"watching":
        log.warning("the Ray watchdog did not start (%r): Ray's agents may outlive a killed driver", ready)
        return None
    return proc.pid


# --- the watchdog (runs as ``python -I localray.py DRIVER_PID SESSION_DIR``) ---------------------


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, start time) of ``pid`` from /proc, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
        fields = raw[raw.rindex(b")") + 2 :].split()  # after "pid (comm) ": state, ppid, ...
        return fields[0].decode(), int(fields[1]), int(fields[19])
    except (OSError, ValueError, IndexError):  # gone, or caught half-way through exiting
        return None


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def session_tree(driver: int, session: bytes) -> dict[int, int]:
    """pid -> start time of a Ray session's processes: the driver's children whose command
    line names the session directory (GCS, raylet, dashboard, monitors) and all their
    descendants (agents, workers). Other children of the driver are not touched."""
    children: dict[int, list[int]] = {}
    started: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (st := _stat(int(name))) is not None:
            children.setdefault(st[1], []).append(int(name))
            started[int(name)] = st[2]
    stack = [p for p in children.get(driver, []) if session in _cmdline(p)]
    tree: dict[int, int] = {}
    while stack:
        pid = stack.pop()
        if pid not in tree and pid != os.getpid():
            tree[pid] = started[pid]
            stack.extend(children.get(pid, []))
    return tree


def _alive(pid: int, started: int) -> bool:
    st = _stat(pid)
    return st is not None and st[2] == started and st[0] not in ("Z", "X")


def reap(procs: dict[int, int], grace_s: float = _REAPER_GRACE_S) -> None:
    """SIGTERM the processes still alive (same pid and start time), then SIGKILL what is left."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid, started in procs.items():
            if _alive(pid, started):
                with contextlib.suppress(OSError):
                    os.kill(pid, sig)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and any(_alive(p, s) for p, s in procs.items()):
            time.sleep(0.1)


def _note(session_dir: str, line: str) -> None:
    """One line in the session's log folder (the watchdog has no terminal)."""
    with (
        contextlib.suppress(OSError),
        open(os.path.join(session_dir, "logs", "whisper_tune_reaper.log"), "a") as f,
    ):
        f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}\n")


def _reaper_main(argv: list[str]) -> int:
    driver, session_dir = int(argv[1]), argv[2]
    session = os.fsencode(session_dir)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    seen: dict[int, int] = {}
    empty_scans = 0
    while True:
        try:
            now = session_tree(driver, session)
        except Exception as exc:  # never die of one odd /proc entry: keep the last picture
            _note(session_dir, f"scan failed ({exc!r}); keeping the last one")
            now = dict(seen)
        if os.getppid() != driver:  # re-parented: the driver is gone
            _note(session_dir, f"driver {driver} gone: stopping {len({**seen, **now})} processes")
            reap({**seen, **now})
            left = [p for p, t in {**seen, **now}.items() if _alive(p, t)]
            _note(session_dir, f"done; still alive: {left}")
            return 0
        if not seen:
            print("watching" if now else "nothing to watch", flush=True)
            sys.stdout.close()
            _note(session_dir, f"watching driver {driver}: {len(now)} processes")
        empty_scans = 0 if now else empty_scans + 1
        if empty_scans >= (1 if not seen else 2):  # Ray shut down, the driver alive: nothing to guard
            _note(session_dir, "the session ended before its driver")
            return 0
        seen = now or seen
        time.sleep(_REAPER_POLL_S)


if __name__ == "__main__":
    sys.exit(_reaper_main(sys.argv))
