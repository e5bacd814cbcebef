"""The ingress's limits without Ray: upload deadlines, the pool, form fields, error bodies.

Requests are Starlette ``Request`` objects over a scripted ASGI ``receive`` (what Ray's proxy
feeds a replica), so a stalled or slow client is a coroutine that sleeps.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.datastructures import FormData
from starlette.requests import Request

from whisper_tune.serve.limits import (
    Fields,
    Pool,
    UploadDeadline,
    install_error_handlers,
    parse_fields,
    read_body,
)


def request(
    parts: list[tuple[float, bytes]], *, content_length: int | None = None, stall_s: float = 3600.0
) -> Request:
    """A request whose body arrives as ``parts`` of (delay before it, bytes). With ``stall_s`` 0
    the last part ends the body; otherwise the client promises more, stalls ``stall_s`` seconds
    and disconnects."""
    headers = [(b"content-type", b"multipart/form-data; boundary=x")]
    if content_length is not None:
        headers.append((b"content-length", str(content_length).encode()))
    queue = list(parts)

    async def receive() -> dict[str, Any]:
        if not queue:
            await asyncio.sleep(stall_s)
            return {"type": "http.disconnect"}
        delay, chunk = queue.pop(0)
        await asyncio.sleep(delay)
        last = not queue and stall_s == 0
        return {"type": "http.request", "body": chunk, "more_body": not last}

    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers, "query_string": b""}
    return Request(scope, receive)


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


def status(result: Any) -> int:
    return 200 if isinstance(result, bytes) else int(result.status_code)


def message(result: Any) -> str:
    import json

    return str(json.loads(result.body)["error"]["message"])


FAST = UploadDeadline(timeout_s=0.3, min_kb_s=10.0, max_s=2.0)


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.monotonic()
    out = fn()
    return out, time.monotonic() - t0


def test_stalled_body_gets_408_at_the_deadline() -> None:
    # headers, then nothing; and a Content-Length larger than the 100 bytes that arrive
    for req in (request([]), request([(0.0, b"x" * 100)], content_length=5000)):
        out, took = timed(lambda req=req: run(read_body(req, 25.0, FAST)))
        assert status(out) == 408
        assert 0.25 < took < 1.0, took  # timeout_s plus 100 bytes' credit at 10 KB/s
        assert "upload too slow" in message(out) and "start within 0.3 s" in message(out)
        assert out.body.startswith(b'{"error":')


def test_a_slow_but_steady_upload_passes_and_a_trickle_does_not() -> None:
    steady = request([(0.1, b"y" * 2000) for _ in range(5)], stall_s=0)  # 20 KB/s for 0.5 s
    out, took = timed(lambda: run(read_body(steady, 25.0, FAST)))
    assert out == b"y" * 10_000 and took > 0.45  # each 2 KB bought 0.2 s; it needed 0.1 s
    trickle = request([(0.25, b"z" * 100) for _ in range(20)], stall_s=0)  # 0.4 KB/s
    out = run(read_body(trickle, 25.0, FAST))
    assert status(out) == 408


def test_deadline_never_exceeds_its_cap() -> None:
    d = UploadDeadline(timeout_s=10, min_kb_s=50, max_s=120)
    assert d.allowed_s(0) == 10 and d.allowed_s(50_000) == pytest.approx(11.0)
    assert d.allowed_s(25 * 1024 * 1024) == 120  # a 25 MB body gets at most two minutes
    with pytest.raises(ValueError, match="upload min_kb_s must be > 0"):
        UploadDeadline(min_kb_s=0)


def test_body_size_and_disconnect() -> None:
    big = request([(0.0, b"a" * 600_000), (0.0, b"a" * 600_000)], stall_s=0)
    out = run(read_body(big, 1.0, FAST))
    assert status(out) == 413 and "exceeds 1 MB" in message(out)
    assert status(run(read_body(request([], content_length=2 * 1024 * 1024), 1.0, FAST))) == 413
    assert status(run(read_body(request([(0.0, b"b")], stall_s=0.01), 1.0, FAST))) == 400  # disconnect
    bad = request([], content_length=None)
    bad.scope["headers"].append((b"content-length", b"lots"))
    out = run(read_body(bad, 1.0, FAST))
    assert status(out) == 400 and "bad Content-Length header 'lots'" in message(out)


def test_pool_admits_size_plus_queue() -> None:
    async def scenario() -> list[bool]:
        pool = Pool(size=2, queue=1)
        release = asyncio.Event()
        admitted: list[bool] = []

        async def one() -> None:
            admitted.append(pool.admit())
            if not admitted[-1]:
                return
            async with pool:
                await release.wait()

        tasks = [asyncio.create_task(one()) for _ in range(5)]
        await asyncio.sleep(0.05)
        assert (pool.running, pool.waiting) == (2, 1)
        release.set()
        await asyncio.gather(*tasks)
        assert (pool.running, pool.waiting) == (0, 0)
        return admitted

    assert run(scenario()) == [True, True, True, False, False]


def form(**fields: Any) -> FormData:
    return FormData(list(fields.items()))


def test_fields_and_temperature() -> None:
    ok = parse_fields(form(response_format="text", temperature="0.7", language="en", prompt="Zelle"))
    assert ok == Fields("text", "en", "Zelle", 0.7)
    assert parse_fields(form()) == Fields("json", None, None, 0.0)
    for bad in ("abc", "5", "-0.1", "nan", "inf", "1e3"):
        out = parse_fields(form(temperature=bad))
        assert not isinstance(out, Fields), bad
        assert out.status_code == 400 and "temperature must be a number from 0 to 1" in message(out)
    for good in ("0", "1", " 0.2 ", "1.0"):
        assert isinstance(parse_fields(form(temperature=good)), Fields), good
    out = parse_fields(form(response_format="xml"))
    assert not isinstance(out, Fields) and out.status_code == 400
    # word timestamps are served now (issue 15); an unknown granularity is still refused
    out = parse_fields(FormData([("timestamp_granularities[]", "word"), ("response_format", "verbose_json")]))
    assert isinstance(out, Fields) and out.words and not out.segments
    both = [("timestamp_granularities[]", "word"), ("timestamp_granularities[]", "segment")]
    out = parse_fields(FormData([*both, ("response_format", "verbose_json")]))
    assert isinstance(out, Fields) and out.words and out.segments
    out = parse_fields(FormData([("timestamp_granularities[]", "char"), ("response_format", "verbose_json")]))
    assert not isinstance(out, Fields) and "char not supported" in message(out)
    out = parse_fields(FormData([("timestamp_granularities[]", "word"), ("response_format", "json")]))
    assert not isinstance(out, Fields) and "needs response_format=verbose_json" in message(out)
    assert parse_fields(form(model=" whisper-1 ", hotwords="Zelle APR")) == Fields(
        "json", None, None, 0.0, model="whisper-1", hotwords="Zelle APR"
    )


def test_framework_errors_have_openai_shape() -> None:
    app = FastAPI(docs_url=None, redoc_url=None)
    install_error_handlers(app)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret <object at 0x1234>")

    @app.post("/only-post")
    async def only_post() -> dict[str, str]:
        return {}

    client = TestClient(app, raise_server_exceptions=False)
    for path, code in (("/nowhere", 404), ("/only-post", 405), ("/boom", 500), ("/docs", 404)):
        r = client.get(path)
        assert r.status_code == code, path
        err = r.json()["error"]
        assert set(err) == {"message", "type", "param", "code"} and err["code"] == code
        assert "0x" not in err["message"]


def test_the_app_has_no_cdn_docs_page() -> None:
    from whisper_tune.serve.app import api

    assert api.docs_url is None and api.redoc_url is None
    assert api.openapi_url == "/openapi.json"  # a JSON schema, no third-party assets
