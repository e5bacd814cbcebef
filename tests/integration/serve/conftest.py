"""One real Ray Serve instance on loopback for every serve integration test.

Why session-scoped: Ray + Serve start-up costs 10-20 s on two cores; three small
applications share it under different route prefixes:
- ``/hf``: real tiny.en, Transformers backend (fp32 on CPU)
- ``/ct2``: real tiny.en, CTranslate2 backend (int8 on CPU)
- ``/limits``: a random toy Whisper with tight limits and an API key, for the error codes
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from serve_testlib import API_KEY, ServeEnv, free_port, speech, wav_bytes


@pytest.fixture(scope="session")
def speech_clip() -> bytes:
    return wav_bytes(speech("I would like to check my account balance and freeze my debit card please."))


@pytest.fixture(scope="session")
def serve_env(tiny_model_dir: Path) -> Iterator[ServeEnv]:
    import ray
    from ray import serve
    from ray.serve.api import RunTarget

    from whisper_tune.serve.app import ServeOptions, build_app, hash_api_key
    from whisper_tune.serve.backends import BackendOptions

    port = free_port()
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        common = {"num_cpus": 0.0, "num_gpus": 0.0, "batch_wait_s": 0.05}
        hf = ServeOptions(model="tiny.en", backend="hf", **common)
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
        try:
            serve.shutdown()
        finally:
            ray.shutdown()
