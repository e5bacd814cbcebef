"""The Ray that ``launch`` starts for a local run: loopback only, with the State API.

Train V2's placement-group cleaner polls the State API every second; without the dashboard
process it logs a warning each time and cannot clean up after a crashed driver.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from urllib.parse import urlparse

import pytest

from whisper_tune.train.config import JobConfig
from whisper_tune.train.launch import _init_ray

pytestmark = pytest.mark.integration


def test_local_ray_has_state_api_on_loopback() -> None:
    import ray
    from ray.util.state import list_actors

    assert not ray.is_initialized()
    started, resources = _init_ray(JobConfig.from_mapping({"data": {"train": "t.jsonl", "eval": "e.jsonl"}}))
    try:
        assert started and resources.get("CPU", 0) >= 1
        url = urlparse("http://" + ray.worker.get_dashboard_url())
        host, port = url.hostname, url.port
        assert host == "127.0.0.1" and port
        # Ray 2.60 turns token authentication on: the dashboard answers, but not to strangers
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/version", timeout=30)
        assert refused.value.code == 401
        # the call the cleaner makes, in effect (named: another Ray on the machine must not matter)
        assert isinstance(list_actors(address=f"http://127.0.0.1:{port}", timeout=30), list)
    finally:
        ray.shutdown()
