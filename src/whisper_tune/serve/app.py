"""The Ray Serve application: an OpenAI-compatible transcription endpoint and a web page.

Why this shape:
- Two deployments: ``Transcriber``, the FastAPI ingress (auth, limits, multipart parsing,
  audio decoding, response formats; CPU only), and ``Model``, which owns the backend and
  gathers concurrent requests into one forward pass with ``@serve.batch``. With a single
  deployment, Transformers' Python-heavy ``generate`` loop and the HTTP work shared one
  process and its GIL: on an H100 the Transformers backend fell to ~1.8 windows a batch and
  ~30 audio-s/s at concurrency 32 although it runs ~600 audio-s/s in-process at batch 32
  (bench/serve_profile.py). Replicas of both scale with ``--replicas``; a ``Model`` replica
  takes a GPU when the cluster has one.
- Limits are enforced before any expensive work: the body size from Content-Length and
  then by counting streamed bytes (413, before parsing or decoding), the content checked
  by decoding (415 not audio, 400 empty), a bounded queue in Serve
  (``max_ongoing_requests`` + ``max_queued_requests``, rejected with 503 and
  ``Retry-After``), an end-to-end deadline per request (408), and ``check_health`` so
  Serve replaces a replica whose backend keeps failing.
- Errors use OpenAI's ``{"error": {"message", "type", "param", "code"}}`` body, so the
  official clients raise their usual exception classes.
- The API key never travels in clear through Ray: replicas get its SHA-256 and compare
  digests with ``hmac.compare_digest`` (constant time).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from ray import serve
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from whisper_tune.inference import (
    Backend,
    BackendOptions,
    DeadlineExceeded,
    Transcript,
    UnsupportedLanguageError,
    load_backend,
    normalize_language,
)
from whisper_tune.serve.audio import EmptyAudioError, NotAudioError, decode_audio_bytes
from whisper_tune.serve.formats import MEDIA_TYPES, RESPONSE_FORMATS, render

__all__ = ["Model", "ServeOptions", "Transcriber", "build_app", "hash_api_key", "load_serve_backend"]

log = logging.getLogger(__name__)


def run_inline(inline_model: bool | None, device: str) -> bool:
    """ServeOptions.inline_model resolved for a backend on ``device``."""
    return device.startswith("cuda") if inline_model is None else inline_model


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass
class ServeOptions:
    """Everything the deployment needs; picklable (it travels to every replica)."""

    model: str
    backend: str = "hf"  # hf | ct2
    model_name: str | None = None  # name reported by /v1/models and in responses (default: from the spec)
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
    max_ongoing_requests: int = 16  # per replica; >= max_batch_size so batches can fill
    max_queued_requests: int = 32  # beyond this Serve answers 503 + Retry-After
    retry_after_s: int = 2
    request_timeout_s: float = 300.0  # end to end inside the replica -> 408
    replicas: int = 1
    num_gpus: float | None = None  # per replica; None: 1 when the cluster has GPUs, else 0
    num_cpus: float | None = None  # per replica; None: Serve's default
    health_failures: int = 3  # consecutive failed batches before check_health fails
    backend_options: BackendOptions = field(default_factory=BackendOptions)


@dataclass
class _Job:
    audio: Any
    language: str | None
    prompt: str | None
    timestamps: bool
    deadline: float  # time.monotonic() after which nobody waits for the result


@dataclass
class _Failure:
    """A request the model could not serve: ``deadline`` (-> 408) or ``server`` (-> 500)."""

    kind: str
    message: str


def _error(
    status: int,
    message: str,
    *,
    type_: str = "invalid_request_error",
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"message": message, "type": type_, "param": param, "code": status}}
    return JSONResponse(body, status_code=status, headers=headers)


def _page() -> str:
    return (resources.files("whisper_tune.serve") / "web" / "index.html").read_text(encoding="utf-8")


api = FastAPI(title="whisper-tune", description="OpenAI-compatible Whisper transcription", docs_url="/docs")


def load_serve_backend(opts: ServeOptions) -> Backend:
    """The backend a ``Model`` replica runs, loaded and warmed up.

    The same ``whisper_tune.inference`` object evaluation uses (``evaluate --backend``), so
    a test can compare the two entry points without starting Serve.
    """
    backend = load_backend(opts.model, opts.backend, opts.backend_options, opts.model_name)
    backend.warmup()
    return backend


@serve.deployment(name="Model", health_check_period_s=10, health_check_timeout_s=60)
class Model:
    """One loaded backend and its request batcher; the GPU side of the service."""

    def __init__(self, opts: ServeOptions) -> None:
        self.opts = opts
        self.backend: Backend = load_serve_backend(opts)
        self._inline = run_inline(opts.inline_model, self.backend.device)
        self._failures = 0
        self._broken: str | None = None
        self._batched.set_max_batch_size(opts.max_batch_size)  # type: ignore[attr-defined]
        self._batched.set_batch_wait_timeout_s(opts.batch_wait_s)  # type: ignore[attr-defined]
        log.info(
            "model ready: %s (%s on %s)", self.backend.model_name, self.backend.kind, self.backend.device
        )

    # -- health ---------------------------------------------------------------------------------------
    def check_health(self) -> None:
        """Called by Serve; raising makes Serve replace this replica."""
        if self._broken:
            raise RuntimeError(f"backend unhealthy: {self._broken}")

    def _note_failure(self, exc: BaseException) -> None:
        self._failures += 1
        text = f"{type(exc).__name__}: {exc}"
        log.error("batch failed (%d in a row): %s", self._failures, text)
        if "CUDA" in text or "out of memory" in text or self._failures >= self.opts.health_failures:
            self._broken = text

    async def info(self) -> dict[str, Any]:
        """What the ingress reports and needs to validate requests (never raises)."""
        b = self.backend
        return {
            "status": "unhealthy" if self._broken else "ok",
            "reason": self._broken,
            "model": b.model_name,
            "backend": b.kind,
            "device": b.device,
            "precision": b.precision,
            "multilingual": b.multilingual,
            "stats": {k: round(v, 3) for k, v in b.stats.items()},
        }

    async def transcribe(self, job: _Job) -> Transcript | _Failure:
        return await self._batched(job)

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.01)
    async def _batched(self, jobs: list[_Job]) -> list[Transcript | _Failure]:
        """Requests of one batch that share options go through the model together."""
        groups: dict[tuple[str | None, str | None, bool], list[int]] = defaultdict(list)
        for i, j in enumerate(jobs):
            groups[(j.language, j.prompt, j.timestamps)].append(i)
        results: list[Transcript | _Failure] = [_Failure("server", "not run")] * len(jobs)
        for (language, prompt, ts), idxs in groups.items():
            deadline = max(jobs[i].deadline for i in idxs)  # work on while anyone still waits
            args = ([jobs[i].audio for i in idxs], language, prompt, ts, deadline)
            try:
                if self._inline:
                    outs = self.backend.transcribe_batch(*args)
                else:
                    outs = await asyncio.to_thread(self.backend.transcribe_batch, *args)
            except DeadlineExceeded as exc:  # the callers already got 408; not a backend fault
                for i in idxs:
                    results[i] = _Failure("deadline", str(exc))
                continue
            except Exception as exc:  # reported per request as 500; repeated failures fail check_health
                self._note_failure(exc)
                for i in idxs:
                    results[i] = _Failure("server", f"{type(exc).__name__}: {exc}")
                continue
            self._failures = 0
            for i, out in zip(idxs, outs, strict=True):
                results[i] = out
        return results


@serve.deployment(name="Transcriber")
@serve.ingress(api)
class Transcriber:
    """The HTTP side: routes, API key, limits, decoding; hands audio to ``Model``."""

    def __init__(self, opts: ServeOptions, model: Any) -> None:
        self.opts = opts
        self.model = model  # DeploymentHandle of Model
        self.created = int(time.time())
        self._info: dict[str, Any] | None = None

    async def _model_info(self) -> dict[str, Any]:
        if self._info is None:
            self._info = await self.model.info.remote()
        return self._info

    # -- auth -----------------------------------------------------------------------------------------
    def _auth(self, request: Request) -> Response | None:
        want = self.opts.api_key_sha256
        if not want:
            return None
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        got = hash_api_key(token.strip()) if scheme.lower() == "bearer" and token.strip() else ""
        if got and hmac.compare_digest(got.encode(), want.encode()):
            return None
        return _error(
            401,
            "missing or wrong API key: send 'Authorization: Bearer <key>'",
            type_="authentication_error",
            headers={"WWW-Authenticate": "Bearer"},
        )

    # -- routes ---------------------------------------------------------------------------------------
    @api.get("/", response_class=HTMLResponse)
    async def index(self) -> HTMLResponse:
        return HTMLResponse(_page())

    @api.get("/healthz")
    async def healthz(self, request: Request) -> JSONResponse:
        """Liveness for load balancers; ``?stats=1`` adds a Model replica's time split (features/model)."""
        try:
            info = await asyncio.wait_for(self.model.info.remote(), timeout=30)
        except Exception as exc:  # the model replica is down or restarting
            return JSONResponse({"status": "unavailable", "reason": f"{type(exc).__name__}: {exc}"}, 503)
        body = {k: info[k] for k in ("status", "model", "backend", "device", "precision")}
        if info["reason"]:
            body["reason"] = info["reason"]
        if request.query_params.get("stats"):
            body["stats"] = info["stats"]
        return JSONResponse(body, status_code=503 if info["reason"] else 200)

    @api.get("/v1/models")
    async def models(self, request: Request) -> Response:
        if (denied := self._auth(request)) is not None:
            return denied
        entry = {
            "id": (await self._model_info())["model"],
            "object": "model",
            "created": self.created,
            "owned_by": "whisper-tune",
        }
        return JSONResponse({"object": "list", "data": [entry]})

    @api.post("/v1/audio/transcriptions")
    async def transcriptions(self, request: Request) -> Response:
        if (denied := self._auth(request)) is not None:
            return denied
        deadline = time.monotonic() + self.opts.request_timeout_s
        try:
            return await asyncio.wait_for(
                self._transcribe_request(request, deadline), timeout=self.opts.request_timeout_s
            )
        except asyncio.TimeoutError:
            return _error(
                408,
                f"the request did not finish within {self.opts.request_timeout_s:g} s",
                type_="timeout_error",
            )

    # -- request handling -----------------------------------------------------------------------------
    async def _read_body(self, request: Request) -> bytes | Response:
        limit = int(self.opts.max_body_mb * 1024 * 1024)
        too_big = _error(413, f"request body exceeds {self.opts.max_body_mb:g} MB", type_="request_too_large")
        declared = request.headers.get("content-length")
        if declared is not None:
            try:
                if int(declared) > limit:
                    return too_big
            except ValueError:
                return _error(400, f"bad Content-Length header {declared!r}")
        body = bytearray()
        async for chunk in request.stream():  # also bounds chunked uploads without Content-Length
            body += chunk
            if len(body) > limit:
                return too_big
        return bytes(body)

    async def _parse_form(self, request: Request, body: bytes) -> Any:
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        return await Request(request.scope, replay).form(max_files=1, max_fields=32)

    async def _transcribe_request(self, request: Request, deadline: float) -> Response:
        ctype = request.headers.get("content-type", "")
        if not ctype.lower().startswith("multipart/form-data"):
            return _error(400, "send multipart/form-data with a 'file' field", param="file")
        body = await self._read_body(request)
        if isinstance(body, Response):
            return body
        try:
            form = await self._parse_form(request, body)
        except (StarletteHTTPException, ValueError, KeyError) as exc:
            return _error(400, f"malformed multipart body: {getattr(exc, 'detail', exc)}")
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            return _error(400, "missing required field 'file' (an audio file)", param="file")
        fmt = str(form.get("response_format") or "json")
        if fmt not in RESPONSE_FORMATS:
            return _error(
                400, f"response_format must be one of {', '.join(RESPONSE_FORMATS)}", param="response_format"
            )
        grans = [
            str(g)
            for g in form.getlist("timestamp_granularities[]") + form.getlist("timestamp_granularities")
        ]
        bad = [g for g in grans if g != "segment"]
        if bad:
            return _error(
                400,
                f"timestamp_granularities {bad} not supported; use 'segment'",
                param="timestamp_granularities",
            )
        if grans and fmt != "verbose_json":
            return _error(
                400,
                "timestamp_granularities needs response_format=verbose_json",
                param="timestamp_granularities",
            )
        language = str(form.get("language") or "") or None
        prompt = str(form.get("prompt") or "") or None
        info = await self._model_info()
        try:
            language = normalize_language(
                language, multilingual=info["multilingual"], model_name=info["model"]
            )
        except UnsupportedLanguageError as exc:
            return _error(400, str(exc), param="language")
        data = await upload.read()
        name = upload.filename or "file"
        await form.close()
        if not data:
            return _error(400, f"{name}: the file is empty", param="file")
        try:
            audio = await asyncio.to_thread(decode_audio_bytes, data, name=name)
        except NotAudioError as exc:
            return _error(415, str(exc), type_="unsupported_media_type", param="file")
        except EmptyAudioError as exc:
            return _error(400, str(exc), param="file")
        result = await self.model.transcribe.remote(
            _Job(audio, language, prompt, fmt in ("verbose_json", "srt", "vtt"), deadline)
        )
        if isinstance(result, _Failure):
            if result.kind == "deadline":
                return _error(
                    408, f"the request did not finish in time: {result.message}", type_="timeout_error"
                )
            return _error(500, f"transcription failed: {result.message}", type_="server_error")
        rendered = render(result, fmt)
        headers = {"X-Whisper-Tune-Model": info["model"]}
        if isinstance(rendered, dict):
            if fmt == "verbose_json":
                rendered["model"] = info["model"]
            return JSONResponse(rendered, headers=headers)
        return PlainTextResponse(rendered, media_type=MEDIA_TYPES[fmt], headers=headers)


def _cluster_gpus() -> float:
    import ray

    if ray.is_initialized():
        return float(ray.cluster_resources().get("GPU", 0))
    try:
        import torch

        return float(torch.cuda.device_count())
    except Exception:  # pragma: no cover
        return 0.0


def build_app(opts: ServeOptions) -> Any:
    """The bound Serve application for ``serve.run``: ``opts.replicas`` of the ingress and of the model."""
    num_gpus = opts.num_gpus if opts.num_gpus is not None else (1.0 if _cluster_gpus() > 0 else 0.0)
    model_actor: dict[str, Any] = {}
    ingress_actor: dict[str, Any] = {}
    if num_gpus:
        model_actor["num_gpus"] = num_gpus
    if opts.num_cpus is not None:
        model_actor["num_cpus"] = opts.num_cpus
        ingress_actor["num_cpus"] = opts.num_cpus
    model = Model.options(  # type: ignore[attr-defined]
        num_replicas=opts.replicas,
        # every request the ingress admits may wait here, so batches can fill
        max_ongoing_requests=max(opts.max_ongoing_requests, 2 * opts.max_batch_size, 1),
        ray_actor_options=model_actor,
    ).bind(opts)
    ingress = Transcriber.options(  # type: ignore[attr-defined]
        num_replicas=opts.replicas,
        max_ongoing_requests=max(opts.max_ongoing_requests, 1),
        max_queued_requests=opts.max_queued_requests,
        backpressure_config={"status_code": 503, "retry_after_s": opts.retry_after_s},
        ray_actor_options=ingress_actor,
    )
    return ingress.bind(opts, model)
