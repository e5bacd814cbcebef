"""``ServeOptions``: every knob of the Serve application, in one picklable dataclass.

Why its own module: the options travel to every replica (Ray pickles them), are built by the
CLI, the tests and the benchmarks, and the limits they set (body size, upload deadlines,
decoded audio, request pool, queue) are read by ``app`` and ``limits``; keeping them apart
from the deployments lets the CLI and unit tests import them without Ray or FastAPI.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import Any

from whisper_tune.data.audio import DecodeLimits
from whisper_tune.inference import BackendOptions, DecodeOptions, SpeechGate

__all__ = [
    "MIN_API_KEY_CHARS",
    "ServeOptions",
    "cpu_replica_env",
    "hash_api_key",
    "run_inline",
    "serve_backend_options",
]

MIN_API_KEY_CHARS = 16  # off loopback; `openssl rand -hex 16` gives 32


def run_inline(inline_model: bool | None, device: str) -> bool:
    """ServeOptions.inline_model resolved for a backend on ``device``."""
    return device.startswith("cuda") if inline_model is None else inline_model


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def serve_backend_options(**kw: Any) -> BackendOptions:
    """``BackendOptions`` with the server's decoding defaults: the speech gate on (silent windows
    and clips under 0.1 s get no text; ``whisper_tune.inference.gate``) and OpenAI's no-speech
    rule (a window with P(no speech) > 0.6 and mean log-probability < -1 gets no text), and
    segment times on the speech they cover (``inference.speech_times``)."""
    return BackendOptions(decode=DecodeOptions(gate=SpeechGate(), skip_silence=True, speech_times=True), **kw)


@dataclass
class ServeOptions:
    """Everything the deployment needs; picklable (it travels to every replica)."""

    model: str
    backend: str = "hf"  # hf | ct2
    model_name: str | None = None  # name reported by /v1/models and in responses (default: from the spec)
    # other ids the ``model`` form field may name (listed by /v1/models); any other id -> 404
    model_aliases: tuple[str, ...] = ("whisper-1",)
    api_key_sha256: str | None = None  # set -> every /v1/ call needs "Authorization: Bearer <key>"
    max_body_mb: float = 25.0
    max_batch_size: int = 8
    batch_wait_s: float = 0.01  # how long a batch waits to fill; a lone request pays it as latency
    # run the backend on the replica's event loop instead of a worker thread: requests that arrive
    # during a batch queue up and form the next, bigger batch, instead of trickling in while the
    # loop competes for the GIL with Python-heavy decoding; Model's other methods (health) wait
    # meanwhile. None: inline on a GPU (a batch takes well under a second), threaded on a CPU
    # (a 1-hour call takes minutes there and would outlast the health-check timeout).
    inline_model: bool | None = None
    # the transcription pool, per ingress replica: requests decoding or transcribing at once
    # (>= max_batch_size so batches can fill) and requests waiting for a place; beyond: 503 +
    # Retry-After (OpenAI's JSON error). Uploads still arriving are not in it.
    max_ongoing_requests: int = 16
    max_queued_requests: int = 32
    retry_after_s: int = 2
    request_timeout_s: float = 300.0  # end to end inside the replica -> 408
    # upload deadlines (``limits.UploadDeadline``): the body may take upload_timeout_s plus one
    # second per upload_min_kb_s KB received, never more than upload_max_s; then 408
    upload_timeout_s: float = 10.0
    upload_min_kb_s: float = 50.0
    upload_max_s: float = 120.0
    max_open_uploads: int = 64  # uploads arriving at once per ingress replica; beyond: 503
    decode_limits: DecodeLimits = field(default_factory=DecodeLimits)  # decoded audio -> 413
    replicas: int = 1
    # Serve autoscaling of the Model deployment (replaces ``replicas`` for it): Ray Serve's
    # ``autoscaling_config`` dict (min_replicas, max_replicas, target_ongoing_requests, ...), or
    # {} for Serve's defaults (``num_replicas="auto"``); the ingress keeps ``replicas``
    autoscaling_config: dict[str, Any] | None = None
    num_gpus: float | None = None  # per replica; None: 1 when the cluster has GPUs, else 0
    num_cpus: float | None = None  # per replica; None: Serve's default
    health_failures: int = 3  # consecutive failed batches before check_health fails
    backend_options: BackendOptions = field(default_factory=serve_backend_options)


def cpu_replica_env(opts: ServeOptions) -> dict[str, Any]:
    """The runtime_env of a CPU model replica: its math libraries' thread count.

    Ray sets ``OMP_NUM_THREADS`` to an actor's ``num_cpus`` (1 for a Serve replica), and
    CTranslate2 and torch size their thread pools from it: measured on the 2-core machine,
    a replica decoded tiny.en int8 at 5.05 audio s/s against 8.1 in-process with both cores.
    So a CPU replica gets ``backend_options.cpu_threads`` threads, or the driver's cores shared
    by the replicas (``--replicas``); Ray merges these env_vars into a job's own runtime_env.
    """
    threads = opts.backend_options.cpu_threads or max(1, (os.cpu_count() or 1) // max(1, opts.replicas))
    return {"env_vars": {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}}
