"""The cluster commands: ``submit``, ``job status|logs|stop|list``, ``cluster-info``, ``fetch``.

Why: the argparse tables and the small ``_cmd_*`` glue live here, apart from the logic they
call (``auth``, ``client``, ``submit``, ``info`` in this package; run files through
``whisper_tune.storage``), so that logic stays importable and testable without a parser.
``register`` is what the top-level ``whisper-tune`` entry point calls.

Exit codes: 0 succeeded, 1 failed, 3 stopped, 2 usage/user error (bad address, auth refused).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from whisper_tune.cluster.client import jobs_user_error, make_client
from whisper_tune.cluster.info import cluster_info
from whisper_tune.cluster.submit import (
    EXIT_FAILED,
    EXIT_SUCCEEDED,
    SubmitOptions,
    build_entrypoint,
    exit_code_for_status,
    follow_job,
    redact_runtime_env,
    submit_job,
)
from whisper_tune.errors import UserError

__all__ = ["register"]


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
    if not args.no_preflight:
        from whisper_tune.cluster.probe import require_cluster_env

        print("checking the cluster's Python (preflight job) ...", file=sys.stderr, flush=True)
        require_cluster_env(client, opts, require=list(args.require_module or []))
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
        raise jobs_user_error(f"job {args.job_id}", exc) from None
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
        raise jobs_user_error(f"job {args.job_id}", exc) from None
    return EXIT_SUCCEEDED


def _cmd_stop(args: argparse.Namespace) -> int:
    client = _client(args)
    try:
        stopped = client.stop_job(args.job_id)
    except Exception as exc:
        raise jobs_user_error(f"job {args.job_id}", exc) from None
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
        "--no-preflight",
        action="store_true",
        help="skip the up-front probe job that checks the cluster's Python for the dependencies",
    )
    p.add_argument(
        "--require-module",
        action="append",
        metavar="MODULE",
        help="the preflight also checks that this module is importable on the cluster (your own code)",
    )
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
