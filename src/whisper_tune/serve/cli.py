"""``whisper-tune serve``: run the transcription service on this machine or a Ray cluster.

Why the host rule: the endpoint runs models on uploaded audio, so it binds 127.0.0.1
unless told otherwise, and binding any other address without an API key, or with one
shorter than 16 characters (guessable), is refused (the key is read from an environment
variable, never from the command line, so it does not show up in ``ps`` or shell history).
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import logging
import os
import signal
import threading
from typing import TYPE_CHECKING, Any

from whisper_tune.errors import UserError

if TYPE_CHECKING:
    from whisper_tune.serve.options import ServeOptions

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
    from whisper_tune.serve.options import MIN_API_KEY_CHARS

    if key and not is_loopback(host) and len(key) < MIN_API_KEY_CHARS:
        raise UserError(
            f"refusing to listen on {host} with a {len(key)}-character API key from {api_key_env}: "
            f"use at least {MIN_API_KEY_CHARS} characters (e.g. `openssl rand -hex 16`)"
        )
    return key


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "serve",
        help="serve a model over an OpenAI-compatible HTTP API with Ray Serve (+ a web page at /)",
        description="Serve a Whisper model: POST /v1/audio/transcriptions and /v1/audio/translations, "
        "GET /v1/models, GET /healthz, GET /.",
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
        "--upload-timeout-s",
        type=float,
        default=10.0,
        help="seconds an upload's body gets to start; a stalled upload gets 408 (see --upload-min-kbps)",
    )
    p.add_argument(
        "--upload-min-kbps",
        type=float,
        default=50.0,
        help="slowest accepted upload, KB/s: each KB received extends the upload deadline by 1/rate s",
    )
    p.add_argument("--upload-max-s", type=float, default=120.0, help="longest any upload may take (408)")
    p.add_argument(
        "--max-open-uploads", type=int, default=64, help="uploads arriving at once per replica (503 beyond)"
    )
    p.add_argument(
        "--max-audio-minutes",
        type=float,
        default=120.0,
        help="longest accepted audio, decoded (413 above; checked from the file header first)",
    )
    p.add_argument(
        "--max-decoded-mb",
        type=float,
        default=460.8,
        help="most decoded float32 samples per file, all channels at the file's rate "
        "(default: 2 h of 16 kHz mono; 413 above)",
    )
    p.add_argument(
        "--speech-gate",
        choices=("on", "off"),
        default="on",
        help="on: silent audio and clips under 0.1 s get empty text without reaching the model",
    )
    p.add_argument(
        "--vad",
        choices=("on", "off"),
        default="off",
        help="on: cut audio into windows on Silero VAD speech (long silences never reach the model)",
    )
    p.add_argument(
        "--speech-times",
        choices=("on", "off"),
        default="on",
        help="on: segment times (verbose_json, srt, vtt) moved onto the speech they cover (Silero VAD); "
        "off: Whisper's own timestamp tokens",
    )
    p.add_argument(
        "--split-pause",
        type=float,
        default=0.5,
        help="with --speech-times on and word timestamps: a pause of at least this many seconds between "
        "two words cuts a segment there (default 0.5)",
    )
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
    from whisper_tune.data.audio import DecodeLimits
    from whisper_tune.serve.options import ServeOptions, hash_api_key, serve_backend_options

    if args.replicas < 1:
        raise UserError(f"--replicas must be >= 1, got {args.replicas}")
    if args.batch_wait_ms < 0:
        raise UserError(f"--batch-wait-ms must be >= 0, got {args.batch_wait_ms}")
    for flag in (
        "max_body_mb",
        "upload_timeout_s",
        "upload_min_kbps",
        "upload_max_s",
        "max_audio_minutes",
        "max_decoded_mb",
    ):
        value = getattr(args, flag)
        if not value > 0 or value == float("inf"):
            raise UserError(f"--{flag.replace('_', '-')} must be a number > 0, got {value}")
    if args.max_open_uploads < 1:
        raise UserError(f"--max-open-uploads must be >= 1, got {args.max_open_uploads}")
    key = check_bind(args.host, args.api_key_env)
    # the server's decoding defaults (speech gate, no-speech rule, speech times), then the flags
    backend = serve_backend_options(
        device=args.device, dtype=args.dtype, compute_type=args.compute_type, batch_size=args.max_batch_size
    )
    backend.decode = dataclasses.replace(
        backend.decode,
        gate=backend.decode.gate if args.speech_gate == "on" else None,
        vad=args.vad == "on",
        speech_times=args.speech_times == "on",
        split_pause_s=args.split_pause,
    )
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
        upload_timeout_s=args.upload_timeout_s,
        upload_min_kb_s=args.upload_min_kbps,
        upload_max_s=args.upload_max_s,
        max_open_uploads=args.max_open_uploads,
        decode_limits=DecodeLimits(
            max_duration_s=args.max_audio_minutes * 60.0, max_decoded_mb=args.max_decoded_mb
        ),
        replicas=args.replicas,
        num_gpus=0.0 if args.device == "cpu" else None,  # None: one GPU a replica when present
        backend_options=backend,
    )


def run_serve(args: argparse.Namespace) -> int:
    from whisper_tune.serve.app import build_app

    opts = serve_options(args)
    from whisper_tune.models.hub import needs_hub

    if not needs_hub(args.model):  # local weights: replicas never wait on the network
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
