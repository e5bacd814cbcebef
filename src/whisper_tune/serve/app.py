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
- Limits are enforced before any expensive work (``serve.limits`` says why each exists):
  the body size (413) and upload deadlines (408) while the body arrives, outside the
  transcription pool; the form fields (400); then a place in the pool (``max_ongoing_requests``
  at work, ``max_queued_requests`` waiting, 503 + ``Retry-After`` beyond); the audio's decoded
  length and size (413, ``DecodeLimits``), whether it is audio at all (415) and not empty (400);
  an end-to-end deadline per request (408); and ``check_health``, so Serve replaces a replica
  whose backend keeps failing. ``/healthz`` waits for no pool and ``Model`` keeps room for
  its ``info`` calls, so health checks are answered while every place is taken.
- Errors use OpenAI's ``{"error": {"message", "type", "param", "code"}}`` body, FastAPI's own
  included; ``/docs`` is off (FastAPI's page loads Swagger from a CDN), ``/openapi.json`` stays.
- The API key never travels in clear through Ray: replicas get its SHA-256 and compare
  digests with ``hmac.compare_digest`` (constant time).
"""

# No ``from __future__ import annotations`` here: Ray Serve copies the ingress class with
# cloudpickle, which keeps only the globals its methods' code names, so FastAPI could not resolve
# a string annotation such as "Request" and took ``request`` for a required query parameter.
import asyncio
import functools
import hmac
import logging
import time
from collections import defaultdict
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from ray import serve
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from whisper_tune.inference import (
    Backend,
    DeadlineExceeded,
    Transcript,
    UnsupportedLanguageError,
    load_backend,
    normalize_language,
)
from whisper_tune.serve.audio import AudioTooLargeError, EmptyAudioError, NotAudioError, decode_upload
from whisper_tune.serve.formats import MEDIA_TYPES, render
from whisper_tune.serve.jobs import Failure, Job, served_ids
from whisper_tune.serve.limits import (
    Fields,
    Pool,
    UploadDeadline,
    busy,
    error,
    install_error_handlers,
    parse_fields,
    parse_form,
    read_body,
)
from whisper_tune.serve.options import ServeOptions, cpu_replica_env, hash_api_key, run_inline

__all__ = ["Model", "ServeOptions", "Transcriber", "build_app", "hash_api_key", "load_serve_backend"]

log = logging.getLogger(__name__)

HEALTH_TIMEOUT_S = 10.0  # /healthz: longest wait for a Model replica's info
INFO_ROOM = 8  # places a Model replica keeps for info calls beyond the requests it batches
LIGHT_ROOM = 16  # ingress places beyond uploads and the pool: /healthz, /v1/models, /, quick 503s


def _page() -> str:
    return (resources.files("whisper_tune.serve") / "web" / "index.html").read_text(encoding="utf-8")


# /docs and /redoc off: FastAPI's pages load Swagger/ReDoc from a CDN (docs/serve.md)
api = FastAPI(
    title="whisper-tune",
    description="OpenAI-compatible Whisper transcription",
    docs_url=None,
    redoc_url=None,
)
install_error_handlers(api)


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

    async def transcribe(self, job: Job) -> Transcript | Failure:
        return await self._batched(job)

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.01)
    async def _batched(self, jobs: list[Job]) -> list[Transcript | Failure]:
        """Requests of one batch that share options (``Job.key``) go through the model together."""
        groups: dict[tuple[Any, ...], list[int]] = defaultdict(list)
        for i, j in enumerate(jobs):
            groups[j.key()].append(i)
        results: list[Transcript | Failure] = [Failure("server", "not run")] * len(jobs)
        for idxs in groups.values():
            deadline = max(jobs[i].deadline for i in idxs)  # work on while anyone still waits
            j0 = jobs[idxs[0]]
            args = ([jobs[i].audio for i in idxs], j0.language, j0.prompt, j0.timestamps, deadline)
            lv = [jobs[i].levels for i in idxs]
            call = functools.partial(self.backend.transcribe_batch, *args, levels=lv, **j0.changes())
            try:
                outs = call() if self._inline else await asyncio.to_thread(call)
            except DeadlineExceeded as exc:  # the callers already got 408; not a backend fault
                for i in idxs:
                    results[i] = Failure("deadline", str(exc))
                continue
            except Exception as exc:  # reported per request as 500; repeated failures fail check_health
                self._note_failure(exc)
                for i in idxs:
                    results[i] = Failure("server", f"{type(exc).__name__}: {exc}")
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
        self.pool = Pool(opts.max_ongoing_requests, opts.max_queued_requests)
        self.uploads = 0  # bodies being received now (not in the pool)
        self.upload_deadline = UploadDeadline(opts.upload_timeout_s, opts.upload_min_kb_s, opts.upload_max_s)

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
        return error(
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
        """Liveness for load balancers, outside the transcription pool; ``?stats=1`` adds a Model
        replica's time split (features/model)."""
        try:
            info = await asyncio.wait_for(self.model.info.remote(), timeout=HEALTH_TIMEOUT_S)
        except asyncio.TimeoutError:
            reason = f"the model replica did not answer within {HEALTH_TIMEOUT_S:g} s"
            return JSONResponse({"status": "unavailable", "reason": reason}, 503)
        except Exception as exc:  # the model replica is down or restarting
            reason = f"the model replica is unavailable ({type(exc).__name__})"
            return JSONResponse({"status": "unavailable", "reason": reason}, 503)
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
        entries = [
            {"id": mid, "object": "model", "created": self.created, "owned_by": "whisper-tune"}
            for mid in await self._served_ids()
        ]
        return JSONResponse({"object": "list", "data": entries})

    async def _served_ids(self) -> list[str]:
        return served_ids((await self._model_info())["model"], self.opts.model, self.opts.model_aliases)

    @api.post("/v1/audio/transcriptions")
    async def transcriptions(self, request: Request) -> Response:
        return await self._handle(request, "transcribe")

    @api.post("/v1/audio/translations")
    async def translations(self, request: Request) -> Response:
        """OpenAI's translations: speech in any language -> English text (multilingual models)."""
        return await self._handle(request, "translate")

    async def _handle(self, request: Request, task: str) -> Response:
        if (denied := self._auth(request)) is not None:
            return denied
        deadline = time.monotonic() + self.opts.request_timeout_s
        try:
            return await asyncio.wait_for(
                self._transcribe_request(request, deadline, task), timeout=self.opts.request_timeout_s
            )
        except asyncio.TimeoutError:
            return error(
                408,
                f"the request did not finish within {self.opts.request_timeout_s:g} s",
                type_="timeout_error",
            )

    # -- request handling -----------------------------------------------------------------------------
    async def _transcribe_request(self, request: Request, deadline: float, task: str) -> Response:
        ctype = request.headers.get("content-type", "")
        if not ctype.lower().startswith("multipart/form-data"):
            return error(400, "send multipart/form-data with a 'file' field", param="file")
        if self.uploads >= self.opts.max_open_uploads:
            return busy(
                f"too many uploads in progress ({self.uploads}); retry in {self.opts.retry_after_s} s",
                self.opts.retry_after_s,
            )
        self.uploads += 1
        try:
            body = await read_body(request, self.opts.max_body_mb, self.upload_deadline)
        finally:
            self.uploads -= 1
        if isinstance(body, Response):
            return body
        try:
            form = await parse_form(request, body)
        except (StarletteHTTPException, ValueError, KeyError) as exc:
            return error(400, f"malformed multipart body: {getattr(exc, 'detail', exc)}")
        try:
            return await self._transcribe_form(form, deadline, task)
        finally:
            await form.close()

    async def _check_model(self, fields: Fields, task: str, info: dict[str, Any]) -> Response | None:
        """404 (OpenAI's ``model_not_found``) for an id this server does not serve; 400 for a
        translation on an English-only model."""
        ids = await self._served_ids()
        if fields.model is not None and fields.model not in ids:
            return error(
                404,
                f"The model '{fields.model[:100]}' does not exist on this server; it serves "
                f"{', '.join(repr(i) for i in ids)}",
                param="model",
                code="model_not_found",
            )
        if task == "translate" and not info["multilingual"]:
            return error(
                400,
                f"model {info['model']} is English-only: /v1/audio/translations needs a multilingual "
                "model (e.g. base or small); use /v1/audio/transcriptions for English speech",
                param="model",
                code="unsupported_task",
            )
        return None

    async def _transcribe_form(self, form: Any, deadline: float, task: str) -> Response:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            return error(400, "missing required field 'file' (an audio file)", param="file")
        fields = parse_fields(form)
        if isinstance(fields, Response):
            return fields
        info = await self._model_info()
        if (refused := await self._check_model(fields, task, info)) is not None:
            return refused
        try:
            language = normalize_language(
                fields.language, multilingual=info["multilingual"], model_name=info["model"]
            )
        except UnsupportedLanguageError as exc:
            return error(400, str(exc), param="language")
        data = await upload.read()
        name = upload.filename or "file"
        if not data:
            return error(400, f"{name}: the file is empty", param="file")
        if not self.pool.admit():
            return busy(
                f"the server is busy ({self.pool.running} requests at work, {self.pool.waiting} waiting); "
                f"retry in {self.opts.retry_after_s} s",
                self.opts.retry_after_s,
            )
        async with self.pool:  # decoding and the model: at most max_ongoing_requests at once
            return await self._run(data, name, language, fields, deadline, info["model"], task)

    async def _run(
        self,
        data: bytes,
        name: str,
        language: str | None,
        fields: Fields,
        deadline: float,
        model: str,
        task: str = "transcribe",
    ) -> Response:
        fmt = fields.response_format
        try:  # with timestamps, a stereo upload's channel levels too (its turns place segments)
            audio, levels = await asyncio.to_thread(
                decode_upload,
                data,
                name=name,
                limits=self.opts.decode_limits,
                levels=fields.timed or fields.words,
            )
        except AudioTooLargeError as exc:
            return error(413, str(exc), type_="request_too_large", param="file")
        except NotAudioError as exc:
            return error(415, str(exc), type_="unsupported_media_type", param="file")
        except EmptyAudioError as exc:
            return error(400, str(exc), param="file")
        job = Job.for_request(audio, levels, fields, language, deadline, task)
        result = await self.model.transcribe.remote(job)
        if isinstance(result, Failure):
            if result.kind == "deadline":
                return error(
                    408, f"the request did not finish in time: {result.message}", type_="timeout_error"
                )
            return error(500, f"transcription failed: {result.message}", type_="server_error")
        rendered = render(result, fmt, with_segments=fields.segments, with_words=fields.words)
        headers = {"X-Whisper-Tune-Model": model}
        if isinstance(rendered, dict):
            if fmt == "verbose_json":
                rendered["model"] = model
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
    """The bound Serve application for ``serve.run``: ``opts.replicas`` of the ingress and of the
    model, or the model autoscaled (``opts.autoscaling_config``); ``serve.builder`` builds it
    from a ``serve run`` / RayService config."""
    num_gpus = opts.num_gpus if opts.num_gpus is not None else (1.0 if _cluster_gpus() > 0 else 0.0)
    model_actor: dict[str, Any] = {}
    ingress_actor: dict[str, Any] = {}
    if num_gpus:
        model_actor["num_gpus"] = num_gpus
    else:  # Ray's OMP_NUM_THREADS=1 would leave CTranslate2 / torch one core (cpu_replica_env)
        model_actor["runtime_env"] = cpu_replica_env(opts)
    if opts.num_cpus is not None:
        model_actor["num_cpus"] = opts.num_cpus
        ingress_actor["num_cpus"] = opts.num_cpus
    scaling: dict[str, Any] = {"num_replicas": opts.replicas}
    if opts.autoscaling_config is not None:  # {}: Serve's defaults, i.e. num_replicas="auto"
        scaling = (
            {"autoscaling_config": dict(opts.autoscaling_config)}
            if opts.autoscaling_config
            else {"num_replicas": "auto"}
        )
    model = Model.options(  # type: ignore[attr-defined]
        **scaling,
        # every request the ingress's pool admits may wait here, so batches can fill; plus room
        # for info calls (/healthz), so they never queue behind transcriptions
        max_ongoing_requests=max(opts.max_ongoing_requests, 2 * opts.max_batch_size, 1) + INFO_ROOM,
        ray_actor_options=model_actor,
    ).bind(opts)
    # Serve's own limit sits above the ingress's (uploads + pool + light routes), which answer
    # with OpenAI's JSON error first; Ray's plain-text 503 comes only past twice that
    places = max(opts.max_open_uploads, 1) + max(opts.max_ongoing_requests, 1) + opts.max_queued_requests
    ingress = Transcriber.options(  # type: ignore[attr-defined]
        num_replicas=opts.replicas,
        max_ongoing_requests=places + LIGHT_ROOM,
        max_queued_requests=places + LIGHT_ROOM,
        backpressure_config={"status_code": 503, "retry_after_s": opts.retry_after_s},
        ray_actor_options=ingress_actor,
    )
    return ingress.bind(opts, model)
