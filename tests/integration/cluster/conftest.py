"""Cluster-test fixtures (a moto S3 server, a two-node loopback Ray cluster, a tiny corpus).

The machinery lives in ``wt_cluster_helpers`` (importable from the tests; a unique name so it
cannot clash with other areas' conftest modules).
"""

from __future__ import annotations

from collections.abc import Iterator
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
    s3 = S3Server(endpoint, "wt-test-bucket", env)
    s3.client().create_bucket(Bucket=s3.bucket)
    try:
        yield s3
    finally:
        server.stop()


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
    try:
        yield cluster
    finally:
        stop_cluster(cluster)


@pytest.fixture(scope="session")
def cluster_corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cluster_corpus")
    return {"train": write_corpus(root, "train", 8, 0), "eval": write_corpus(root, "eval", 2, 1)}
