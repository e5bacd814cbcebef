"""What the ingress checks before it spends anything on a request: upload deadlines, the body
size, the transcription pool and its queue, the form fields; and OpenAI's error body for all.

Why these rules:

* **Upload deadlines.** Ray Serve's proxy hands a request to an ingress replica as soon as its
  headers are in; the replica then pulls the body from the proxy. A client that sent headers
  and a partial body (or a ``Content-Length`` larger than what it sends) used to hold its place
  until the 300 s request timeout, and 16 of them (one replica's ``max_ongoing_requests``) made
  every endpoint, ``/healthz`` included, time out. Now the body must keep a minimum rate, the
  rule of Apache's mod_reqtimeout (``body=10,MinRate=...``): ``upload_timeout_s`` to start,
  plus one second for every ``upload_min_kb_s`` KB received, at most ``upload_max_s`` in all;
  past it the request gets 408 and its place is free. Headers are read by Ray's proxy (uvicorn)
  before a replica is involved: a client that never finishes its headers holds a socket there,
  no place in any pool.
* **Pools.** Uploads still arriving are not transcription work: at most ``max_open_uploads``
  of them per replica, and only a complete, valid request enters the transcription pool
  (``Pool``: ``max_ongoing_requests`` decoding or transcribing at once, ``max_queued_requests``
  waiting). Anything beyond either gets 503 with ``Retry-After`` and OpenAI's JSON error at
  once. ``/healthz``, ``/v1/models`` and ``/`` enter neither, so slow uploads and a full queue
  never delay them. (Ray Serve's own queue behind the replica is sized above both; only past
  it does Ray's proxy answer 503 itself, in plain text.)
* **Form fields** are checked (``parse_fields``) before the audio is decoded: an unknown
  ``response_format``, a ``temperature`` that is not a number from 0 to 1, an unknown
  ``timestamp_granularities[]`` value or one without ``verbose_json``.
* Errors use OpenAI's ``{"error": {"message", "type", "param", "code"}}`` body, so the
  official clients raise their usual exception classes; ``install_error_handlers`` gives
  FastAPI's own errors (404, 405, 422, 500) the same shape.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from whisper_tune.serve.formats import RESPONSE_FORMATS

__all__ = [
    "Fields",
    "Pool",
    "UploadDeadline",
    "error",
    "install_error_handlers",
    "parse_fields",
    "parse_form",
    "read_body",
]

log = logging.getLogger(__name__)


def error(
    status: int,
    message: str,
    *,
    type_: str = "invalid_request_error",
    param: str | None = None,
    headers: dict[str, str] | None = None,
    code: str | int | None = None,
) -> JSONResponse:
    """OpenAI's error body with ``status``; ``code``: OpenAI's string code (e.g.
    ``model_not_found``), else the status."""
    body = {"error": {"message": message, "type": type_, "param": param, "code": code or status}}
    return JSONResponse(body, status_code=status, headers=headers)


def busy(message: str, retry_after_s: int) -> JSONResponse:
    """503 + ``Retry-After``: the replica cannot take the request now."""
    return error(503, message, type_="server_overloaded", headers={"Retry-After": str(retry_after_s)})


def install_error_handlers(api: FastAPI) -> None:
    """FastAPI's own errors (unknown route, wrong method, validation, a crash) in OpenAI's shape."""

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        return error(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        what = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in exc.errors()[:5]
        )
        return error(400, f"invalid request parameters ({what})")

    async def crash(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s", request.url.path)
        return error(500, f"internal error ({type(exc).__name__})", type_="server_error")

    api.add_exception_handler(StarletteHTTPException, http_error)
    api.add_exception_handler(RequestValidationError, validation_error)
    api.add_exception_handler(Exception, crash)


@dataclass(frozen=True)
class UploadDeadline:
    """How long a body may take: ``timeout_s`` + received KB / ``min_kb_s``, at most ``max_s``."""

    timeout_s: float = 10.0
    min_kb_s: float = 50.0
    max_s: float = 120.0

    def __post_init__(self) -> None:
        for name in ("timeout_s", "min_kb_s", "max_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"upload {name} must be > 0, got {value}")

    def allowed_s(self, received: int) -> float:
        return min(self.max_s, self.timeout_s + received / (self.min_kb_s * 1000.0))

    def describe(self) -> str:
        return (
            f"the body must start within {self.timeout_s:g} s and then arrive at {self.min_kb_s:g} KB/s "
            f"or more (at most {self.max_s:g} s in all)"
        )


async def read_body(request: Request, max_mb: float, deadline: UploadDeadline) -> bytes | Response:
    """The whole body, or the error response: 413 over ``max_mb`` (by Content-Length, then by
    counting), 408 when the upload falls behind ``deadline``, 400 for a bad Content-Length."""
    limit = int(max_mb * 1024 * 1024)
    too_big = error(413, f"request body exceeds {max_mb:g} MB", type_="request_too_large")
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                return too_big
        except ValueError:
            return error(400, f"bad Content-Length header '{declared[:40]}'")
    start = time.monotonic()
    body = bytearray()
    while True:
        left = start + deadline.allowed_s(len(body)) - time.monotonic()
        try:
            message = await asyncio.wait_for(request.receive(), timeout=max(left, 0.0))
        except asyncio.TimeoutError:
            took = time.monotonic() - start
            return error(
                408,
                f"upload too slow: {len(body)} bytes of the body arrived in {took:.1f} s; "
                f"{deadline.describe()}",
                type_="timeout_error",
            )
        if message["type"] == "http.disconnect":
            return error(400, "the client disconnected before the body was complete")
        body += message.get("body", b"")  # also bounds chunked uploads without Content-Length
        if len(body) > limit:
            return too_big
        if not message.get("more_body", False):
            return bytes(body)


async def parse_form(request: Request, body: bytes) -> Any:
    """Starlette's multipart parser over a body already read (at most one file, 32 fields)."""
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return await Request(request.scope, replay).form(max_files=1, max_fields=32)


class Pool:
    """At most ``size`` requests at work at once, at most ``queue`` waiting for a place.

    ``admit()`` says at once whether a request may wait (else: 503); ``async with pool:`` waits
    for its place. One per ingress replica, used on its event loop only.
    """

    def __init__(self, size: int, queue: int) -> None:
        self.size = max(1, size)
        self.queue = max(0, queue)
        self.running = 0
        self.waiting = 0
        self._sem: asyncio.Semaphore | None = None

    def admit(self) -> bool:
        return self.running < self.size or self.waiting < self.queue

    async def __aenter__(self) -> Pool:
        if self._sem is None:  # created on the replica's loop
            self._sem = asyncio.Semaphore(self.size)
        self.waiting += 1
        try:
            await self._sem.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.running -= 1
        assert self._sem is not None
        self._sem.release()


@dataclass(frozen=True)
class Fields:
    """A transcription request's form fields, checked."""

    response_format: str
    language: str | None
    prompt: str | None
    temperature: float
    granularities: tuple[str, ...] = ()  # timestamp_granularities[]: segment and/or word
    model: str | None = None
    hotwords: str | None = None  # not OpenAI's: faster-whisper's hint words (send with extra_body)

    @property
    def words(self) -> bool:
        return "word" in self.granularities

    @property
    def timed(self) -> bool:
        """The response carries segment times."""
        return self.response_format in ("verbose_json", "srt", "vtt")

    @property
    def segments(self) -> bool:
        """verbose_json carries segments unless only words were asked for (OpenAI's rule)."""
        return not self.granularities or "segment" in self.granularities


def _temperature(raw: Any) -> float | None:
    try:
        value = float(str(raw).strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and 0.0 <= value <= 1.0 else None


_TEXT_FIELDS = ("response_format", "temperature", "language", "prompt", "model", "hotwords")
GRANULARITIES = ("segment", "word")


def parse_fields(form: Any) -> Fields | Response:
    """The fields of OpenAI's transcription form, or a 400 naming the bad one."""
    for name in _TEXT_FIELDS:
        if not isinstance(form.get(name) or "", str):
            return error(400, f"field '{name}' must be text, not a file", param=name)
    fmt = str(form.get("response_format") or "json")
    if fmt not in RESPONSE_FORMATS:
        return error(
            400, f"response_format must be one of {', '.join(RESPONSE_FORMATS)}", param="response_format"
        )
    raw_t = form.get("temperature")
    temperature = 0.0 if raw_t is None or str(raw_t).strip() == "" else _temperature(raw_t)
    if temperature is None:
        shown = str(raw_t)[:40]
        return error(400, f"temperature must be a number from 0 to 1, got '{shown}'", param="temperature")
    grans = [
        str(g) for g in form.getlist("timestamp_granularities[]") + form.getlist("timestamp_granularities")
    ]
    bad = [g for g in grans if g not in GRANULARITIES]
    if bad:
        return error(
            400,
            f"timestamp_granularities {', '.join(bad)} not supported; use 'segment' and/or 'word'",
            param="timestamp_granularities",
        )
    if grans and fmt != "verbose_json":
        return error(
            400, "timestamp_granularities needs response_format=verbose_json", param="timestamp_granularities"
        )
    return Fields(
        response_format=fmt,
        language=str(form.get("language") or "") or None,
        prompt=str(form.get("prompt") or "") or None,
        temperature=temperature,
        granularities=tuple(dict.fromkeys(grans)),
        model=str(form.get("model") or "").strip() or None,
        hotwords=str(form.get("hotwords") or "").strip() or None,
    )
