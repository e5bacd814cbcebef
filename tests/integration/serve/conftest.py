"""One real Ray Serve instance on loopback for every serve integration test.

Why session-scoped: Ray + Serve start-up costs 10-20 s on two cores; three small
applications share it under different route prefixes:
- ``/hf``: real tiny.en, Transformers backend (fp32 on CPU), serve's defaults (speech gate on)
  but a 3 s upload timeout
- ``/ct2``: real tiny.en, CTranslate2 backend (int8 on CPU)
- ``/limits``: a random toy Whisper with tight limits and an API key, for the error codes

Session scope alone would keep Ray + Serve up until the whole session ends, so every later
module (train's own ``ray.init``, "fails before Ray" checks) would run beside it: the instance is
shut down right after the last test of this directory instead (``pytest_runtest_teardown``).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest
from serve_testlib import API_KEY, ServeEnv, speech, wav_bytes

from whisper_tune.net import free_loopback_port


@pytest.fixture(scope="session")
def speech_clip() -> bytes:
    return wav_bytes(speech("I would like to check my account balance and freeze my debit card please."))


_SERVE_DIR = Path(__file__).parent
_running: list[Callable[[], None]] = []  # the live instance's shutdown, while one is up


def _shutdown() -> None:
    while _running:
        _running.pop()()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, None, None]:
    """After the last serve test, stop Serve and Ray (later modules must start with no Ray)."""
    try:
        return (yield)
    finally:
        if _running and (nextitem is None or _SERVE_DIR not in Path(nextitem.path).parents):
            _shutdown()


@pytest.fixture(scope="session")
def serve_env(tiny_model_dir: Path) -> Iterator[ServeEnv]:
    import ray
    from ray import serve
    from ray.serve.api import RunTarget

    from whisper_tune.inference import BackendOptions
    from whisper_tune.serve.app import ServeOptions, build_app, hash_api_key

    port = free_loopback_port()
    # address="local": a private instance, never a cluster some earlier `ray start` left running
    ray.init(address="local", num_cpus=4, include_dashboard=False, log_to_driver=False)

    def stop() -> None:
        try:
            serve.shutdown()
        finally:
            ray.shutdown()

    _running.append(stop)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        common = {"num_cpus": 0.0, "num_gpus": 0.0, "batch_wait_s": 0.05}
        # 3 s to start a body (default 10 s), so the stalled-upload test waits less for its 408s
        hf = ServeOptions(model="tiny.en", backend="hf", upload_timeout_s=3.0, **common)
        ct2 = ServeOptions(model="tiny.en", backend="ct2", **common)
        limits = ServeOptions(
            model=str(tiny_model_dir),
            model_name="toy",
            backend="hf",
            api_key_sha256=hash_api_key(API_KEY),
            max_body_mb=2.5,
            max_batch_size=1,
            max_ongoing_requests=1,
            max_queued_requests=1,
            retry_after_s=3,
            request_timeout_s=1.0,
            backend_options=BackendOptions(),  # no token cap: the random model decodes 224 tokens a window
            **common,
        )
        # all three replicas load at once (serve.run would wait for each in turn)
        serve.run_many(
            [
                RunTarget(build_app(hf), name="hf", route_prefix="/hf"),
                RunTarget(build_app(ct2), name="ct2", route_prefix="/ct2"),
                RunTarget(build_app(limits), name="limits", route_prefix="/limits"),
            ]
        )
        yield ServeEnv(base=f"http://127.0.0.1:{port}")
    finally:
        _shutdown()
