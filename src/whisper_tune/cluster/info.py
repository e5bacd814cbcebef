"""``cluster-info``: what a job sees on every node of the cluster.

Why: a runtime_env that does not reach the workers, a node that cannot import the package,
or a secret that is set on the client but not on the cluster would otherwise show up hours
into a training run. Run as a job (``whisper-tune submit -- cluster-info --require-env X``),
this places one tiny task on every alive node and reports where ``whisper_tune`` is imported
from and whether each named variable is set (never its value).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from whisper_tune.errors import UserError

__all__ = ["cluster_info"]


def cluster_info(
    address: str | None = None, require_env: Sequence[str] = (), *, min_nodes: int = 0, wait_s: float = 0.0
) -> dict[str, Any]:
    """What a job sees: nodes, and on every node where ``whisper_tune`` is imported from.

    Runs one tiny task pinned to each alive node, so a runtime_env that does not reach the
    workers (or a node that cannot import the package) shows up before a long training run.
    Env vars are reported as set/missing, never by value. With ``min_nodes`` it first waits up
    to ``wait_s`` seconds for that many alive nodes (an autoscaler bringing workers up) and
    raises UserError if they do not come. Needs ``address`` or ``RAY_ADDRESS``
    (never "auto": that could attach to an unrelated local Ray).
    """
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    addr = address or os.environ.get("RAY_ADDRESS")
    if not addr:
        raise UserError("cluster-info: pass --address HOST:PORT (the GCS address) or set RAY_ADDRESS")

    def _probe(names: Sequence[str]) -> dict[str, Any]:
        import socket as _socket

        import ray as _ray

        import whisper_tune as _wt

        return {
            "node_id": _ray.get_runtime_context().get_node_id(),
            "hostname": _socket.gethostname(),
            "pid": os.getpid(),
            "whisper_tune": str(Path(_wt.__file__).resolve().parent),
            "env": {n: ("set" if n in os.environ else "missing") for n in names},
        }

    probe = ray.remote(num_cpus=0)(_probe)
    ray.init(address=addr, logging_level=logging.WARNING)
    try:
        deadline = time.monotonic() + wait_s
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        while len(nodes) < min_nodes:
            if time.monotonic() > deadline:
                raise UserError(
                    f"cluster-info: {len(nodes)} node(s) alive, wanted {min_nodes} within {wait_s:g}s"
                )
            time.sleep(2.0)
            nodes = [n for n in ray.nodes() if n.get("Alive")]
        refs = [
            probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(
                list(require_env)
            )
            for n in nodes
        ]
        probes = ray.get(refs, timeout=300)
    finally:
        ray.shutdown()
    return {
        "ray_version": ray.__version__,
        "nodes": [
            {
                "node_id": n["NodeID"],
                "ip": n.get("NodeManagerAddress"),
                "cpus": n.get("Resources", {}).get("CPU", 0),
                "gpus": n.get("Resources", {}).get("GPU", 0),
            }
            for n in nodes
        ],
        "probes": probes,
        "driver_env": {n: ("set" if n in os.environ else "missing") for n in require_env},
    }
