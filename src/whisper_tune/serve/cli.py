"""``whisper-tune serve``: run the transcription service on this machine or a Ray cluster.

Why the host rule: the endpoint runs models on uploaded audio, so it binds 127.0.0.1
unless told otherwise, and binding any other address without an API key is refused
(the key is read from an environment variable, never from the command line, so it does
not show up in ``ps`` or shell history).
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import signal
import threading
from typing import TYPE_CHECKING, Any

from whisper_tune.errors import UserError

if TYPE_CHECKING:
    from whisper_tune.serve.app import ServeOptions

__all__ = ["INLINE_MODEL_FLAGS", "register", "run_serve", "serve_options", "check_bind", "is_loopback"]

log = logging.getLogger(__name__)

# --inline-model -> ServeOptions.inline_model (None: decided per replica by its device)
INLINE_MODEL_FLAGS: dict[str, bool | None] = {"auto": None, "on": True, "off": False}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, api_key_env: str | None) -> str | None:
    """The API key to require, or None; raises UserError for an unsafe combination."""
    key: str | None = None
    if api_key_env:
        key = os.environ.get(api_key_env, "").strip()
        if not key:
            raise UserError(f"--api-key-env {api_key_env}: that environment variable is unset or empty")
    if not is_loopback(host) and not key:
        raise UserError(
            f"refusing to listen on {host} without an API key: set one in an environment variable and pass "
            "--api-key-env VAR (clients then send 'Authorization: Bearer <key>'), or keep --host 127.0.0.1"
        )
    return key


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "serve",
        help="serve a model over an OpenAI-compatible HTTP API with Ray Serve (+ a web page at /)",
        description="Serve a Whisper model: POST /v1/audio/transcriptions, GET /v1/models, GET /healthz, GET /.",
    )
    p.add_argument(
        "--model",
        required=True,
        help="bundled name (tiny.en, base, small), HF dir, run dir (uses best/) or CTranslate2 dir",
    )
    p.add_argument(
        "--backend", choices=("hf", "ct2"), default="hf", help="Transformers (hf) or CTranslate2 (ct2)"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (non-loopback needs --api-key-env)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--replicas", type=int, default=1, help="model replicas (one GPU each when GPUs exist)")
    p.add_argument(
        "--api-key-env", default=None, metavar="VAR", help="environment variable holding the API key"
    )
    p.add_argument(
        "--max-body-mb", type=float, default=25.0, help="largest accepted request body (413 above)"
    )
    p.add_argument("--max-batch-size", type=int, default=8)
    p.add_argument(
        "--batch-wait-ms",
        type=float,
        default=10.0,
        help="how long a batch waits for more requests (a lone request pays it as latency)",
    )
    p.add_argument("--max-queued", type=int, default=32, help="queued requests before 503 + Retry-After")
    p.add_argument("--timeout-s", type=float, default=300.0, help="per-request deadline (408 after it)")
    p.add_argument(
        "--inline-model",
        choices=tuple(INLINE_MODEL_FLAGS),
        default="auto",
        help="run the model on the replica's event loop (bigger batches) instead of a thread; "
        "auto: on for GPUs, off for CPUs (long files would outlast health checks)",
    )
    p.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="where replicas run the model: auto (a GPU each when the cluster has GPUs), cpu, cuda",
    )
    p.add_argument(
        "--compute-type", default="auto", help="CT2: auto (int8 CPU / float16 GPU), int8, float16, ..."
    )
    p.add_argument(
        "--dtype", default="auto", help="HF: auto (bf16/fp16 GPU, fp32 CPU), float32, float16, bfloat16"
    )
    p.add_argument("--name", default=None, help="model name reported to clients (default: from --model)")
    p.set_defaults(func=run_serve)


def serve_options(args: argparse.Namespace) -> ServeOptions:
    """Check the arguments (bind rule included) and turn them into the deployment's options."""
    from whisper_tune.inference import BackendOptions
    from whisper_tune.serve.app import ServeOptions, hash_api_key

    if args.replicas < 1:
        raise UserError(f"--replicas must be >= 1, got {args.replicas}")
    if args.batch_wait_ms < 0:
        raise UserError(f"--batch-wait-ms must be >= 0, got {args.batch_wait_ms}")
    if args.max_body_mb <= 0:
        raise UserError(f"--max-body-mb must be > 0, got {args.max_body_mb}")
    key = check_bind(args.host, args.api_key_env)
    return ServeOptions(
        model=args.model,
        backend=args.backend,
        model_name=args.name,
        api_key_sha256=hash_api_key(key) if key else None,
        max_body_mb=args.max_body_mb,
        max_batch_size=args.max_batch_size,
        batch_wait_s=args.batch_wait_ms / 1000.0,
        inline_model=INLINE_MODEL_FLAGS[args.inline_model],
        max_ongoing_requests=max(16, 2 * args.max_batch_size),
        max_queued_requests=args.max_queued,
        request_timeout_s=args.timeout_s,
        replicas=args.replicas,
        num_gpus=0.0 if args.device == "cpu" else None,  # None: one GPU a replica when present
        backend_options=BackendOptions(
            device=args.device,
            dtype=args.dtype,
            compute_type=args.compute_type,
            batch_size=args.max_batch_size,
        ),
    )


def run_serve(args: argparse.Namespace) -> int:
    from whisper_tune.serve.app import build_app

    opts = serve_options(args)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import ray
    from ray import serve

    from whisper_tune.localray import LocalRayOptions, start_local_ray

    if not ray.is_initialized():
        if os.environ.get("RAY_ADDRESS"):  # a cluster the user named: connect as before
            ray.init(include_dashboard=False, log_to_driver=True)
        else:  # a private Ray, every socket on 127.0.0.1, gone with this process
            start_local_ray(LocalRayOptions(dashboard=False, log_to_driver=True))
    serve.start(http_options={"host": args.host, "port": args.port})
    serve.run(build_app(opts), name="whisper-tune", route_prefix="/")
    shown = "localhost" if args.host in ("127.0.0.1", "::1") else args.host
    print(
        f"serving {args.model} ({args.backend}) at http://{shown}:{args.port}/  (Ctrl-C to stop)", flush=True
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        serve.shutdown()
    return 0
