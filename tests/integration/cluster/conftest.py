"""Cluster-test fixtures (a moto S3 server, a two-node loopback Ray cluster, a tiny corpus).

The machinery lives in ``wt_cluster_helpers`` (importable from the tests; a unique name so it
cannot clash with other areas' conftest modules).

The S3 server and the Ray cluster are session-scoped (shared by every test here) but are stopped
right after the last test of this directory (``pytest_runtest_teardown``), not at session end:
later modules must not run beside a leftover two-node cluster on a two-core CI machine.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest
from wt_cluster_helpers import (
    LocalRayCluster,
    S3Server,
    free_port,
    start_cluster,
    stop_cluster,
    write_corpus,
)

_CLUSTER_DIR = Path(__file__).parent
_running: list[Callable[[], None]] = []  # stop functions of live services, in start order


def _stop_all() -> None:
    while _running:
        _running.pop()()  # newest first: the cluster before the S3 server it uses


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, None, None]:
    """After the last cluster test, stop the Ray cluster and the S3 server."""
    try:
        return (yield)
    finally:
        if _running and (nextitem is None or _CLUSTER_DIR not in Path(nextitem.path).parents):
            _stop_all()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A moto S3 server on 127.0.0.1 (real HTTP, real S3 protocol) with one empty bucket."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    _running.append(server.stop)
    try:
        s3 = S3Server(endpoint, "wt-test-bucket", env)
        s3.client().create_bucket(Bucket=s3.bucket)
        yield s3
    finally:
        _stop_all()


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """``s3_server`` with its endpoint/credentials set in this process's environment."""
    for k, v in s3_server.env.items():
        monkeypatch.setenv(k, v)
    return s3_server


@pytest.fixture(scope="session")
def ray_cluster(s3_server: S3Server) -> Iterator[LocalRayCluster]:
    """Two Ray nodes (1 CPU each) on 127.0.0.1, token auth on; they can reach ``s3_server``."""
    cluster = start_cluster(2, 1, extra_env=s3_server.env)
    _running.append(lambda: stop_cluster(cluster))
    try:
        yield cluster
    finally:
        _stop_all()


@pytest.fixture(scope="session")
def cluster_corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cluster_corpus")
    return {"train": write_corpus(root, "train", 8, 0), "eval": write_corpus(root, "eval", 2, 1)}
