"""Unit tests for whisper_tune.cluster.client: the Jobs address."""

from __future__ import annotations

import pytest

from whisper_tune.cluster import client
from whisper_tune.errors import UserError


def test_resolve_address() -> None:
    assert client.resolve_address("127.0.0.1:8265", env={}) == "http://127.0.0.1:8265"
    assert client.resolve_address("https://ray.example.com/", env={}) == "https://ray.example.com"
    assert client.resolve_address(None, env={"RAY_ADDRESS": "http://h:1"}) == "http://h:1"
    assert (
        client.resolve_address(None, env={"RAY_API_SERVER_ADDRESS": "h:2", "RAY_ADDRESS": "h:1"})
        == "http://h:2"
    )
    with pytest.raises(UserError, match="--address"):
        client.resolve_address(None, env={})
    with pytest.raises(UserError, match="Ray Client"):
        client.resolve_address("ray://h:10001", env={})
    with pytest.raises(UserError, match="expected http"):
        client.resolve_address("ftp://h:1", env={})
    # Ray on Vertex AI and other external-module addresses are passed to Ray untouched
    v = "vertex_ray://projects/p/locations/us-central1/persistentResources/r"
    assert client.resolve_address(v, env={}) == v
