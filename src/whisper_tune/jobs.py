"""Ray Jobs: submit a whisper-tune command to a running Ray cluster, follow it, manage it.

Why: once one machine is not enough, the tuning run has to go to a Ray cluster (KubeRay,
``ray up``, a managed Ray). The Ray Jobs API is the supported way to do that from a laptop or
CI: the driver runs *on* the cluster, so the run survives the client disconnecting, and Ray
restarts failed training workers from the last checkpoint. This module wraps
``ray.job_submission.JobSubmissionClient`` so that

- the project's code travels with the job (``py_modules`` = the ``whisper_tune`` package the
  client runs, plus a ``working_dir`` with the configs), so the cluster needs only the
  dependencies (its image, or ``--pip``), not a release of whisper-tune;
- environment variables are passed *by name* (``--env-var HF_TOKEN``): the value is read from the
  client's environment and never printed or logged;
- token authentication works the way Ray's own CLI does it (Ray 2.60 enables
  ``RAY_AUTH_MODE=token`` by default): ``RAY_AUTH_TOKEN``, then ``RAY_AUTH_TOKEN_PATH``, then
  ``~/.ray/auth_token``, or ``--auth-token-file``; the token is sent as a bearer header and
  never echoed;
- ``submit`` follows the logs and exits with the job's status, so it composes in scripts/CI.

Exit codes: 0 succeeded, 1 failed, 3 stopped, 2 usage/user error (bad address, auth refused).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import logging
import os
import shlex
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlparse

from whisper_tune.errors import UserError

__all__ = [
    "AuthToken",
    "SubmitOptions",
    "find_auth_token",
    "resolve_address",
    "build_entrypoint",
    "build_runtime_env",
    "make_client",
    "submit_job",
    "follow_job",
    "redact_runtime_env",
    "exit_code_for_status",
    "cluster_info",
    "register",
]

log = logging.getLogger(__name__)

DEFAULT_EXCLUDES: tuple[str, ...] = (
    ".git",
    ".venv",
    "**/__pycache__",
    "*.safetensors",
    "*.bin",
    "runs/",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
)
"""Never uploaded with ``working_dir`` (Ray also honours ``.gitignore`` / ``.rayignore``)."""

EXIT_SUCCEEDED, EXIT_FAILED, EXIT_USAGE, EXIT_STOPPED = 0, 1, 2, 3


@dataclass(frozen=True)
class AuthToken:
    """A Ray auth token and where it came from. ``value`` is kept out of ``repr``."""

    value: str = field(repr=False)
    source: str

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.value}"}


def find_auth_token(
    token_file: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> AuthToken | None:
    """Find a Ray token the way Ray does: explicit file, ``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH``, ``~/.ray/auth_token``.

    ``RAY_AUTH_MODE=disabled`` means "send no token" (unless a file is passed explicitly).
    Raises UserError when an explicitly named file is missing or empty.
    """
    env = os.environ if env is None else env

    def _read(path: Path, what: str) -> AuthToken:
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UserError(f"{what}: cannot read Ray auth token file {path}: {exc.strerror}") from None
        if not text:
            raise UserError(f"{what}: Ray auth token file {path} is empty")
        return AuthToken(text, f"{what} ({path})")

    if token_file is not None:
        return _read(Path(token_file).expanduser(), "--auth-token-file")
    if env.get("RAY_AUTH_MODE", "").lower() == "disabled":
        return None
    if env.get("RAY_AUTH_TOKEN", "").strip():
        return AuthToken(env["RAY_AUTH_TOKEN"].strip(), "RAY_AUTH_TOKEN")
    if env.get("RAY_AUTH_TOKEN_PATH"):
        return _read(Path(env["RAY_AUTH_TOKEN_PATH"]).expanduser(), "RAY_AUTH_TOKEN_PATH")
    default = Path(env.get("HOME", str(Path.home()))) / ".ray" / "auth_token"
    if default.is_file() and default.read_text(encoding="utf-8").strip():
        return AuthToken(default.read_text(encoding="utf-8").strip(), f"default token file ({default})")
    return None


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_address(address: str | None, env: Mapping[str, str] | None = None) -> str:
    """The dashboard/Jobs URL: ``--address``, else ``RAY_API_SERVER_ADDRESS``, else ``RAY_ADDRESS``.

    ``host:port`` gets ``http://``. ``ray://`` (Ray Client) is refused: Jobs talk HTTP.
    """
    env = os.environ if env is None else env
    addr = address or env.get("RAY_API_SERVER_ADDRESS") or env.get("RAY_ADDRESS")
    if not addr:
        raise UserError(
            "no Ray cluster address: pass --address http://HOST:8265 (the dashboard/Jobs port) "
            "or set RAY_API_SERVER_ADDRESS"
        )
    if addr.startswith("ray://"):
        raise UserError(
            f"--address {addr}: use the dashboard URL (http://HOST:8265), not a Ray Client address"
        )
    if "://" not in addr:
        addr = "http://" + addr
    parsed = urlparse(addr)
    scheme = addr.split("://", 1)[0].lower()  # urlparse drops schemes with "_" (vertex_ray)
    if scheme not in ("http", "https"):
        if scheme.replace("_", "").isalnum() and scheme not in ("ftp", "file", "s3", "gs"):
            # an external module address, e.g. vertex_ray://... (Ray on Vertex AI): Ray imports the
            # module named by the scheme to find the Jobs endpoint and its credentials
            return addr
        raise UserError(f"--address {addr}: expected http(s)://HOST:PORT")
    if not parsed.hostname:
        raise UserError(f"--address {addr}: expected http(s)://HOST:PORT")
    return addr.rstrip("/")


def build_entrypoint(command: Sequence[str]) -> str:
    """``train --config x.yaml`` -> ``python -m whisper_tune.cli train --config x.yaml`` (shell-quoted)."""
    cmd = list(command)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if cmd and cmd[0] == "whisper-tune":
        cmd = cmd[1:]
    if not cmd:
        raise UserError(
            "submit: nothing to run; usage: whisper-tune submit --address URL -- train --config X.yaml"
        )
    if cmd[0] in ("submit", "job"):
        raise UserError(f"submit: '{cmd[0]}' cannot run inside a job")
    if cmd[0] == "train" and not any(a.startswith("run.ray_address=") for a in cmd):
        # inside a job RAY_ADDRESS names the cluster; "auto" makes train join it instead of
        # starting a private local Ray on the head node
        cmd.append("run.ray_address=auto")
    return shlex.join(["python", "-m", "whisper_tune.cli", *cmd])


@dataclass
class SubmitOptions:
    """What ``whisper-tune submit`` sends. ``env_vars`` are names; values come from ``environ``."""

    command: list[str]
    working_dir: str | None = "."
    env_vars: list[str] = field(default_factory=list)
    pip: list[str] = field(default_factory=list)
    include_package: bool = True
    excludes: list[str] = field(default_factory=list)
    extra_runtime_env: dict[str, Any] = field(default_factory=dict)
    submission_id: str | None = None
    entrypoint_num_cpus: float | None = None
    entrypoint_num_gpus: float | None = None


def _package_dir() -> str:
    import whisper_tune

    return str(Path(whisper_tune.__file__).resolve().parent)


def _pip_list(values: Sequence[str]) -> list[str]:
    out: list[str] = []
    for v in values:
        p = Path(v)
        if p.is_file() and (p.suffix == ".txt" or p.name.startswith("requirements")):
            for lineno, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
                line = line.split("#", 1)[0].strip()
                if line.startswith("-"):
                    raise UserError(f"{p}:{lineno}: pip options ({line!r}) are not supported in --pip files")
                if line:
                    out.append(line)
        else:
            out.append(v)
    return out


def build_runtime_env(opts: SubmitOptions, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The job's runtime_env: user extras, then working_dir/py_modules/env_vars/pip on top.

    Env var *names* that are missing from ``environ`` raise UserError (naming the variable, not
    showing any value). Names with ``=`` are refused: a value on a command line leaks into
    shell history and ``ps``.
    """
    environ = os.environ if environ is None else environ
    rt: dict[str, Any] = dict(opts.extra_runtime_env)
    if opts.working_dir is not None:
        wd = Path(opts.working_dir).expanduser().resolve()
        if not wd.is_dir():
            raise UserError(f"--working-dir {opts.working_dir}: not a directory")
        rt["working_dir"] = str(wd)
        rt["excludes"] = sorted(set(rt.get("excludes", [])) | set(DEFAULT_EXCLUDES) | set(opts.excludes))
    if opts.include_package:
        mods = list(rt.get("py_modules", []))
        pkg = _package_dir()
        if pkg not in mods:
            mods.append(pkg)
        rt["py_modules"] = mods
    if opts.env_vars:
        env_vars = dict(rt.get("env_vars", {}))
        for name in opts.env_vars:
            if "=" in name:
                raise UserError(
                    f"--env-var {name.split('=', 1)[0]}=...: pass only the NAME; export the value in "
                    "your shell (values on a command line leak into history and ps)"
                )
            if name not in environ:
                raise UserError(f"--env-var {name}: not set in this environment")
            env_vars[name] = environ[name]
        rt["env_vars"] = env_vars
    if opts.pip:
        rt["pip"] = _pip_list(opts.pip)
    # `train` calls ray.init(runtime_env={"env_vars": {HF_HUB_OFFLINE...}}) to reach its workers;
    # inside a job Ray refuses that as a conflict with the job's runtime_env unless told to merge
    env_vars = dict(rt.get("env_vars", {}))
    env_vars.setdefault("RAY_OVERRIDE_JOB_RUNTIME_ENV", "1")
    rt["env_vars"] = env_vars
    return rt


def redact_runtime_env(rt: Mapping[str, Any] | None) -> dict[str, Any]:
    """A copy safe to print: env var values replaced by ``***``."""
    out = dict(rt or {})
    if isinstance(out.get("env_vars"), Mapping):
        out["env_vars"] = dict.fromkeys(out["env_vars"], "***")
    return out


def make_client(address: str | None, *, token_file: str | None = None, verify: bool | str = True) -> Any:
    """A connected ``JobSubmissionClient``; auth/connection problems become UserError (no secrets)."""
    from ray.job_submission import JobSubmissionClient

    url = resolve_address(address)
    token = find_auth_token(token_file)
    headers: dict[str, str] = {}
    if token is not None and not url.startswith(("http://", "https://")):
        token = None  # external module addresses bring their own auth
    if token is not None:
        host = urlparse(url).hostname
        if urlparse(url).scheme == "http" and not _is_loopback(host):
            log.warning(
                "sending the Ray auth token to %s over plain http; use https or a port-forward/SSH tunnel",
                host,
            )
        log.info("using Ray auth token from %s", token.source)
        headers = token.headers()
    try:
        return JobSubmissionClient(url, headers=headers, verify=verify)
    except Exception as exc:  # ConnectionError, RuntimeError, ray.exceptions.AuthenticationError
        raise _user_error(f"cannot use Ray Jobs at {url}", exc, token) from None


def _user_error(what: str, exc: BaseException, token: AuthToken | None = None) -> UserError:
    """A UserError for a failed Jobs call: first lines of Ray's message, token redacted, auth hint."""
    msg = str(exc).strip()
    if token is not None:
        msg = msg.replace(token.value, "***")
    first = "\n".join(msg.splitlines()[:2])
    hint = ""
    if any(w in msg for w in ("uthenticat", "Unauthorized", "Forbidden")):
        hint = (
            "\nhint: the cluster uses Ray token auth; make its token available here via RAY_AUTH_TOKEN, "
            "RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token or --auth-token-file (never on the command line)"
        )
    return UserError(f"{what}: {first}{hint}")


def submit_job(client: Any, opts: SubmitOptions, environ: Mapping[str, str] | None = None) -> str:
    """Submit; returns the submission id. Logs the runtime_env with env var values redacted."""
    entrypoint = build_entrypoint(opts.command)
    rt = build_runtime_env(opts, environ)
    log.info("entrypoint: %s", entrypoint)
    log.info("runtime_env: %s", json.dumps(redact_runtime_env(rt), sort_keys=True))
    kwargs: dict[str, Any] = {"entrypoint": entrypoint, "runtime_env": rt}
    if opts.submission_id:
        kwargs["submission_id"] = opts.submission_id
    if opts.entrypoint_num_cpus is not None:
        kwargs["entrypoint_num_cpus"] = opts.entrypoint_num_cpus
    if opts.entrypoint_num_gpus is not None:
        kwargs["entrypoint_num_gpus"] = opts.entrypoint_num_gpus
    try:
        return str(client.submit_job(**kwargs))
    except Exception as exc:
        raise _user_error("job submission refused", exc) from None


def exit_code_for_status(status: Any) -> int:
    s = str(status)
    return {"SUCCEEDED": EXIT_SUCCEEDED, "STOPPED": EXIT_STOPPED}.get(s, EXIT_FAILED)


def follow_job(client: Any, job_id: str, out: TextIO | None = None, *, settle_s: float = 120.0) -> str:
    """Stream the job's logs to ``out`` until it ends; return its terminal status string."""
    out = sys.stdout if out is None else out

    async def _tail() -> None:
        async for chunk in client.tail_job_logs(job_id):
            out.write(chunk)
            out.flush()

    try:
        asyncio.run(_tail())
    except Exception as exc:  # websocket dropped (RuntimeError/aiohttp errors): fall back to polling
        log.warning("log stream for %s ended early (%s); polling status", job_id, exc)
    deadline = time.monotonic() + settle_s
    while True:
        status = client.get_job_status(job_id)
        if status.is_terminal() or time.monotonic() > deadline:
            return str(status)
        time.sleep(1.0)


def cluster_info(
    address: str | None = None, require_env: Sequence[str] = (), *, min_nodes: int = 0, wait_s: float = 0.0
) -> dict[str, Any]:
    """What a job sees: nodes, and on every node where ``whisper_tune`` is imported from.

    Runs one tiny task pinned to each alive node, so a runtime_env that does not reach the
    workers (or a node that cannot import the package) shows up before a long training run.
    Env vars are reported as set/missing, never by value. With ``min_nodes`` it first waits up
    to ``wait_s`` seconds for that many alive nodes (an autoscaler bringing workers up) and
    raises UserError if they do not come. Needs ``address`` or ``RAY_ADDRESS``
    (never "auto": that could attach to an unrelated local Ray).
    """
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    addr = address or os.environ.get("RAY_ADDRESS")
    if not addr:
        raise UserError("cluster-info: pass --address HOST:PORT (the GCS address) or set RAY_ADDRESS")

    def _probe(names: Sequence[str]) -> dict[str, Any]:
        import socket as _socket

        import ray as _ray

        import whisper_tune as _wt

        return {
            "node_id": _ray.get_runtime_context().get_node_id(),
            "hostname": _socket.gethostname(),
            "pid": os.getpid(),
            "whisper_tune": str(Path(_wt.__file__).resolve().parent),
            "env": {n: ("set" if n in os.environ else "missing") for n in names},
        }

    probe = ray.remote(num_cpus=0)(_probe)
    ray.init(address=addr, logging_level=logging.WARNING)
    try:
        deadline = time.monotonic() + wait_s
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        while len(nodes) < min_nodes:
            if time.monotonic() > deadline:
                raise UserError(
                    f"cluster-info: {len(nodes)} node(s) alive, wanted {min_nodes} within {wait_s:g}s"
                )
            time.sleep(2.0)
            nodes = [n for n in ray.nodes() if n.get("Alive")]
        refs = [
            probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(
                list(require_env)
            )
            for n in nodes
        ]
        probes = ray.get(refs, timeout=300)
    finally:
        ray.shutdown()
    return {
        "ray_version": ray.__version__,
        "nodes": [
            {
                "node_id": n["NodeID"],
                "ip": n.get("NodeManagerAddress"),
                "cpus": n.get("Resources", {}).get("CPU", 0),
                "gpus": n.get("Resources", {}).get("GPU", 0),
            }
            for n in nodes
        ],
        "probes": probes,
        "driver_env": {n: ("set" if n in os.environ else "missing") for n in require_env},
    }


# ----------------------------------------------------------------------------- CLI


def _add_conn_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--address",
        help="Ray dashboard/Jobs URL, e.g. http://127.0.0.1:8265 (default: $RAY_API_SERVER_ADDRESS, $RAY_ADDRESS)",
    )
    p.add_argument(
        "--auth-token-file",
        help="file holding the cluster's Ray auth token (default: $RAY_AUTH_TOKEN, $RAY_AUTH_TOKEN_PATH, "
        "~/.ray/auth_token); never pass a token on the command line",
    )
    p.add_argument("--no-verify-tls", action="store_true", help="do not verify the https certificate")


def _client(args: argparse.Namespace) -> Any:
    return make_client(args.address, token_file=args.auth_token_file, verify=not args.no_verify_tls)


def _cmd_submit(args: argparse.Namespace) -> int:
    extra_rt: dict[str, Any] = {}
    if args.runtime_env:
        from whisper_tune.config import load_yaml

        loaded = load_yaml(args.runtime_env)
        if not isinstance(loaded, dict):
            raise UserError(f"--runtime-env {args.runtime_env}: expected a mapping")
        extra_rt = loaded
    opts = SubmitOptions(
        command=list(args.cmd),
        working_dir=None if args.no_working_dir else args.working_dir,
        env_vars=list(args.env_var or []),
        pip=list(args.pip or []),
        include_package=not args.no_package,
        excludes=list(args.exclude or []),
        extra_runtime_env=extra_rt,
        submission_id=args.submission_id,
        entrypoint_num_cpus=args.entrypoint_num_cpus,
        entrypoint_num_gpus=args.entrypoint_num_gpus,
    )
    build_entrypoint(opts.command)  # validate before connecting
    client = _client(args)
    job_id = submit_job(client, opts)
    print(f"submitted job {job_id}", file=sys.stderr, flush=True)
    if args.no_follow:
        print(job_id)
        return EXIT_SUCCEEDED
    try:
        status = follow_job(client, job_id)
    except KeyboardInterrupt:
        print(
            f"\nstopped following; job {job_id} keeps running (whisper-tune job stop {job_id} to stop it)",
            file=sys.stderr,
        )
        return 130
    print(f"job {job_id} {status}", file=sys.stderr)
    return exit_code_for_status(status)


def _cmd_status(args: argparse.Namespace) -> int:
    client = _client(args)
    try:
        info = client.get_job_info(args.job_id)
    except Exception as exc:
        raise _user_error(f"job {args.job_id}", exc) from None
    data = {
        "submission_id": info.submission_id,
        "status": str(info.status),
        "message": info.message,
        "entrypoint": info.entrypoint,
        "start_time": info.start_time,
        "end_time": info.end_time,
        "runtime_env": redact_runtime_env(info.runtime_env),
        "driver_exit_code": getattr(info, "driver_exit_code", None),
    }
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=True, default=str))
    else:
        print(
            f"{data['submission_id']}: {data['status']}"
            + (f" ({data['message']})" if data["message"] else "")
        )
    return EXIT_SUCCEEDED


def _cmd_logs(args: argparse.Namespace) -> int:
    client = _client(args)
    try:
        if args.follow:
            return exit_code_for_status(follow_job(client, args.job_id))
        sys.stdout.write(client.get_job_logs(args.job_id))
    except Exception as exc:
        raise _user_error(f"job {args.job_id}", exc) from None
    return EXIT_SUCCEEDED


def _cmd_stop(args: argparse.Namespace) -> int:
    client = _client(args)
    try:
        stopped = client.stop_job(args.job_id)
    except Exception as exc:
        raise _user_error(f"job {args.job_id}", exc) from None
    if not stopped:
        print(f"job {args.job_id} was not running ({client.get_job_status(args.job_id)})")
        return EXIT_SUCCEEDED
    if args.wait:
        deadline = time.monotonic() + args.wait
        while time.monotonic() < deadline:
            status = client.get_job_status(args.job_id)
            if status.is_terminal():
                print(f"job {args.job_id} {status}")
                return EXIT_SUCCEEDED
            time.sleep(1.0)
        print(f"job {args.job_id} still stopping after {args.wait:.0f}s", file=sys.stderr)
        return EXIT_FAILED
    print(f"stop requested for job {args.job_id}")
    return EXIT_SUCCEEDED


def _cmd_list(args: argparse.Namespace) -> int:
    client = _client(args)
    for info in sorted(client.list_jobs(), key=lambda i: i.start_time or 0):
        print(f"{info.submission_id}\t{info.status}\t{info.entrypoint}")
    return EXIT_SUCCEEDED


def _cmd_cluster_info(args: argparse.Namespace) -> int:
    info = cluster_info(args.address, args.require_env or [], min_nodes=args.min_nodes, wait_s=args.wait)
    if args.json:
        print(json.dumps(info, indent=2, sort_keys=True))
    else:
        print(f"ray {info['ray_version']}, {len(info['nodes'])} node(s)")
        for n, p in zip(info["nodes"], info["probes"], strict=False):
            print(
                f"  node {n['node_id'][:12]} {n['ip']} cpus={n['cpus']:g} gpus={n['gpus']:g} whisper_tune={p['whisper_tune']}"
            )
        for name, state in info["driver_env"].items():
            print(f"  env {name}: {state}")
    missing = {n for n, s in info["driver_env"].items() if s != "set"}
    missing |= {n for p in info["probes"] for n, s in p["env"].items() if s != "set"}
    if missing:
        print(f"error: not set on the cluster: {', '.join(sorted(missing))}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_SUCCEEDED


def _cmd_fetch(args: argparse.Namespace) -> int:
    from whisper_tune import storage

    try:
        local = storage.materialize(args.uri, cache_dir=args.cache_dir, refresh=args.refresh)
    except FileNotFoundError as exc:
        raise UserError(str(exc)) from None
    print(local)
    return EXIT_SUCCEEDED


def register(subparsers: Any) -> None:
    """Add ``submit`` and ``job {status,logs,stop,list}`` to the whisper-tune CLI."""
    p = subparsers.add_parser(
        "submit",
        help="run a whisper-tune command on a Ray cluster via the Jobs API",
        description="Submit `whisper-tune <command>` as a Ray job, follow its logs and exit with its "
        "status (0 succeeded, 1 failed, 3 stopped). Example: whisper-tune submit --address "
        "http://127.0.0.1:8265 --env-var HF_HUB_OFFLINE -- train --config configs/x.yaml",
    )
    _add_conn_args(p)
    p.add_argument("--working-dir", default=".", help="uploaded as the job's working dir (default: .)")
    p.add_argument("--no-working-dir", action="store_true", help="upload no working dir")
    p.add_argument(
        "--exclude", action="append", metavar="PATTERN", help="gitignore-style pattern not to upload"
    )
    p.add_argument(
        "--env-var",
        action="append",
        metavar="NAME",
        help="pass this environment variable (by name; its value is read here and never printed)",
    )
    p.add_argument(
        "--pip", action="append", metavar="REQ", help="pip requirement or requirements file for the job"
    )
    p.add_argument(
        "--no-package",
        action="store_true",
        help="do not upload the whisper_tune package (the cluster image already has it installed)",
    )
    p.add_argument("--runtime-env", metavar="YAML", help="extra runtime_env fields (merged under ours)")
    p.add_argument("--submission-id", help="choose the job id (default: generated)")
    p.add_argument("--entrypoint-num-cpus", type=float, help="CPUs reserved for the driver")
    p.add_argument("--entrypoint-num-gpus", type=float, help="GPUs reserved for the driver")
    p.add_argument("--no-follow", action="store_true", help="print the job id and return at once")
    p.add_argument(
        "cmd", nargs=argparse.REMAINDER, help="-- then the whisper-tune command, e.g. -- train --config X"
    )
    p.set_defaults(func=_cmd_submit)

    j = subparsers.add_parser("job", help="status, logs, stop or list Ray jobs")
    jsub = j.add_subparsers(dest="job_command", metavar="ACTION", required=True)
    s = jsub.add_parser("status", help="a job's status")
    _add_conn_args(s)
    s.add_argument("job_id")
    s.add_argument("--json", action="store_true", help="full job info as JSON (env var values redacted)")
    s.set_defaults(func=_cmd_status)
    lg = jsub.add_parser("logs", help="a job's logs")
    _add_conn_args(lg)
    lg.add_argument("job_id")
    lg.add_argument(
        "-f", "--follow", action="store_true", help="follow until the job ends; exit with its status"
    )
    lg.set_defaults(func=_cmd_logs)
    st = jsub.add_parser("stop", help="stop a job")
    _add_conn_args(st)
    st.add_argument("job_id")
    st.add_argument(
        "--wait", type=float, default=0.0, metavar="S", help="wait up to S seconds for it to stop"
    )
    st.set_defaults(func=_cmd_stop)
    ls = jsub.add_parser("list", help="all jobs on the cluster")
    _add_conn_args(ls)
    ls.set_defaults(func=_cmd_list)

    ci = subparsers.add_parser(
        "cluster-info",
        help="check a cluster: nodes, and where each node imports whisper_tune from (run it via submit)",
    )
    ci.add_argument("--address", help="GCS address HOST:PORT (default: $RAY_ADDRESS, set inside a Ray job)")
    ci.add_argument(
        "--require-env", action="append", metavar="NAME", help="fail unless NAME is set (value never shown)"
    )
    ci.add_argument("--min-nodes", type=int, default=0, help="wait for at least this many alive nodes")
    ci.add_argument(
        "--wait", type=float, default=300.0, metavar="S", help="how long --min-nodes waits (default 300)"
    )
    ci.add_argument("--json", action="store_true")
    ci.set_defaults(func=_cmd_cluster_info)

    fe = subparsers.add_parser(
        "fetch",
        help="copy a remote run dir (e.g. s3://b/runs/x/best) to the local cache and print its path",
        description="For commands that need a local model dir: whisper-tune evaluate --model "
        "$(whisper-tune fetch s3://bucket/runs/NAME/best) ...",
    )
    fe.add_argument("uri", help="s3://, gs://, any fsspec URI, or a local path (printed as is)")
    fe.add_argument("--cache-dir", help="where copies go (default: $WHISPER_TUNE_CACHE/remote)")
    fe.add_argument("--refresh", action="store_true", help="copy again even if cached")
    fe.set_defaults(func=_cmd_fetch)
