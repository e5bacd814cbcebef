"""Machinery for the cluster tests: a real S3 server (moto), a real multi-node Ray cluster, tiny jobs.

Why real processes: the point of the cluster area is that checkpoints survive a dead worker, a
dead driver and a second node. Only real ``ray start`` processes and a real S3 endpoint exercise
the code paths (object-store uploads, GCS, raylets, the Jobs server) that break in production.

Isolation from other Ray users on this machine: every port is chosen free at start, each node
has its own short ``--temp-dir`` under /tmp, the dashboard/Jobs API binds 127.0.0.1 (Ray 2.60's
``ray start`` swaps a 127.0.0.1 node IP for the host's routable one, see docs/cluster.md), token auth uses a
fresh token passed by env (``~/.ray/auth_token`` is neither read nor written), and teardown ends
only the process groups these fixtures started (never ``ray stop``, which would kill every Ray
on the machine).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from whisper_tune.net import free_loopback_port as free_port

VENV_BIN = Path(sys.executable).parent
RAY = str(VENV_BIN / "ray")


# ----------------------------------------------------------------------------- S3 (moto)


@dataclass
class S3Server:
    endpoint: str
    bucket: str
    env: dict[str, str]  # what a process needs to reach it (fake credentials, endpoint)

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
            region_name="us-east-1",
        )

    def keys(self, prefix: str = "") -> list[str]:
        out: list[str] = []
        paginator = self.client().get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            # pyarrow's create_dir leaves "dir/" marker objects: not files
            out.extend(o["Key"] for o in page.get("Contents", []) if not o["Key"].endswith("/"))
        return sorted(out)


# ----------------------------------------------------------------------------- Ray cluster


@dataclass
class RayNode:
    proc: subprocess.Popen[bytes]
    temp_dir: Path
    log: Path


@dataclass
class LocalRayCluster:
    """Ray nodes started by ``ray start --block`` on 127.0.0.1; ``env`` lets a process use it."""

    gcs_address: str
    dashboard_url: str
    token: str = field(repr=False)
    nodes: list[RayNode] = field(default_factory=list)
    base_env: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        """Environment for a driver/CLI process using this cluster (token by env, never argv)."""
        env = dict(self.base_env)
        env.update(
            RAY_ADDRESS=self.gcs_address,
            RAY_API_SERVER_ADDRESS=self.dashboard_url,
            RAY_AUTH_MODE="token",
            RAY_AUTH_TOKEN=self.token,
        )
        return env

    def api(self, path: str) -> Any:
        req = urllib.request.Request(
            self.dashboard_url + path, headers={"Authorization": f"Bearer {self.token}"}
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read().decode())

    def alive_nodes(self) -> list[dict[str, Any]]:
        data = self.api("/api/v0/nodes?limit=100&detail=1")
        return [n for n in data["data"]["result"]["result"] if n.get("state") == "ALIVE"]

    def actors(self, class_name: str) -> list[dict[str, Any]]:
        """Actors of a class (alive and dead) with ``node_id`` and ``pid``, via the State API."""
        q = f"/api/v0/actors?limit=1000&detail=1&filter_keys=class_name&filter_predicates=%3D&filter_values={class_name}"
        return list(self.api(q)["data"]["result"]["result"])


def _node_ports() -> list[str]:
    return [
        "--node-manager-port", str(free_port()),
        "--object-manager-port", str(free_port()),
        "--dashboard-agent-listen-port", str(free_port()),
        "--dashboard-agent-grpc-port", str(free_port()),
        "--runtime-env-agent-port", str(free_port()),
        "--metrics-export-port", str(free_port()),
    ]  # fmt: skip


def _start_node(args: list[str], temp_dir: Path, env: dict[str, str]) -> RayNode:
    log = temp_dir.with_suffix(".log")
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [RAY, "start", "--block", "--disable-usage-stats", "--temp-dir", str(temp_dir), *args],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # own process group: teardown kills exactly this tree
        )
    return RayNode(proc, temp_dir, log)


def _stop_node(node: RayNode) -> None:
    if node.proc.poll() is None:
        node.proc.send_signal(signal.SIGTERM)  # `ray start --block` tears its node down
    with contextlib.suppress(subprocess.TimeoutExpired):
        node.proc.wait(timeout=20)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(node.proc.pid, signal.SIGKILL)  # leftovers of *this* node's group only
    node.proc.wait(timeout=10)


def _wait(predicate: Any, timeout: float, what: str, nodes: list[RayNode]) -> None:
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        for n in nodes:
            if n.proc.poll() is not None:
                raise RuntimeError(f"ray node exited ({n.proc.returncode}):\n{n.log.read_text()[-3000:]}")
        try:
            if predicate():
                return
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(1.0)
    logs = "\n".join(n.log.read_text()[-2000:] for n in nodes)
    raise TimeoutError(f"timed out waiting for {what} (last error: {last})\n{logs}")


def start_cluster(
    num_nodes: int = 2, cpus_per_node: int = 1, extra_env: dict[str, str] | None = None
) -> LocalRayCluster:
    """Head + (num_nodes-1) workers on loopback; each node its own temp dir and ports."""
    root = Path(tempfile.mkdtemp(prefix="wtc-", dir="/tmp"))  # short: unix socket paths <= 107 chars
    token = secrets.token_hex(32)
    port, dash = free_port(), free_port()
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    base_env.update(extra_env or {})
    base_env.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", PYTHONUNBUFFERED="1")
    # a job's entrypoint runs `python` from PATH, as on a real cluster image: make it this venv's
    base_env["PATH"] = f"{VENV_BIN}{os.pathsep}{base_env.get('PATH', '')}"
    # RAY_ADDRESS: Ray's own helpers inside the cluster (e.g. Train's PlacementGroupCleaner) resolve
    # "auto" and fail with "multiple active Ray instances" when other Rays run on this machine
    node_env = dict(base_env, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token, RAY_ADDRESS=f"127.0.0.1:{port}")
    cluster = LocalRayCluster(f"127.0.0.1:{port}", f"http://127.0.0.1:{dash}", token, base_env=base_env)
    common = ["--node-ip-address", "127.0.0.1", "--num-cpus", str(cpus_per_node), "--num-gpus", "0",
              "--object-store-memory", str(100 * 1024 * 1024)]  # fmt: skip
    try:
        head = _start_node(
            ["--head", "--port", str(port), "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dash),
             "--ray-client-server-port", str(free_port()), "--include-dashboard", "true", *common, *_node_ports()],
            root / "a", node_env,
        )  # fmt: skip
        cluster.nodes.append(head)
        _wait(lambda: len(cluster.alive_nodes()) == 1, 120, "the head node", cluster.nodes)
        for i in range(1, num_nodes):
            node = _start_node(
                ["--address", cluster.gcs_address, *common, *_node_ports()],
                root / chr(ord("a") + i),
                node_env,
            )
            cluster.nodes.append(node)
        _wait(lambda: len(cluster.alive_nodes()) == num_nodes, 120, f"{num_nodes} nodes", cluster.nodes)
    except BaseException:
        stop_cluster(cluster)
        raise
    return cluster


def stop_cluster(cluster: LocalRayCluster) -> None:
    for node in cluster.nodes:  # all at once: each `ray start --block` tears its own node down
        if node.proc.poll() is None:
            node.proc.send_signal(signal.SIGTERM)
    for node in cluster.nodes:
        _stop_node(node)
    if cluster.nodes:
        shutil.rmtree(cluster.nodes[0].temp_dir.parent, ignore_errors=True)


# ----------------------------------------------------------------------------- training inputs

TEXTS = ["freeze my card please", "what is my balance", "send money with zelle", "i lost my debit card"]


def write_corpus(root: Path, name: str, n: int, seed: int) -> Path:
    """``n`` half-second tone+noise clips and a NeMo JSONL manifest (the machinery matters, not WER)."""
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(seed)
    audio = root / "audio" / name
    audio.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        t = np.arange(8000) / 16000
        wav = 0.3 * np.sin(2 * np.pi * (200 + 40 * i) * t) + 0.02 * rng.standard_normal(t.size)
        path = audio / f"{i}.wav"
        sf.write(path, wav.astype(np.float32), 16000)
        lines.append({"audio_filepath": str(path), "text": TEXTS[i % len(TEXTS)], "duration": 0.5})
    manifest = root / f"{name}.jsonl"
    manifest.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return manifest


def job_yaml(
    path: Path,
    model_dir: Path,
    corpus: dict[str, Path],
    storage: str,
    name: str,
    max_steps: int = 16,
    **run: Any,
) -> Path:
    """A 2-worker CPU job on the toy model: checkpoint (and eval) every 4 steps, a log line every step."""
    import yaml

    cfg = {
        "model": {"name": str(model_dir)},
        # the eval clips stand in for the real-speech guard: the guard path runs, fast
        "data": {"train": str(corpus["train"]), "eval": str(corpus["eval"]), "guard": str(corpus["eval"])},
        "train": {
            "learning_rate": 1e-3,
            "per_device_batch_size": 2,
            "max_steps": max_steps,
            "eval_steps": 4,
            "save_steps": 4,
            "logging_steps": 1,
            "generation_max_length": 4,
        },
        "scaling": {"num_workers": 2, "use_gpu": False},
        "run": {"storage_path": storage, "name": name, "num_to_keep": 2, "max_failures": 1, **run},
    }
    path.write_text(f"# whisper-tune train --config {path.name}\n" + yaml.safe_dump(cfg, sort_keys=False))
    return path


def tb_steps(run_dir: Path) -> list[list[int]]:
    """Per TensorBoard event file (one per rank-0 worker process, oldest first): the logged steps.

    The trainer logs ``train/loss`` every step and flushes each time, so a worker killed mid-run
    leaves exactly the steps it did; the next attempt's file starts after the step it resumed from.
    """
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    out = []
    for f in sorted((run_dir / "tensorboard").glob("events.out.tfevents.*"), key=lambda p: p.stat().st_mtime):
        steps = set()
        for ev in EventFileLoader(str(f)).Load():
            for v in ev.summary.value:
                if v.tag == "train/loss":
                    steps.add(int(ev.step))
        if steps:
            out.append(sorted(steps))
    return out


def committed_step(run_dir: Path) -> int:
    """Step of the latest checkpoint Ray has *registered* (0 if none).

    A checkpoint directory exists before the controller registers it (all ranks must report);
    only registered ones are restored, so this, not the directory listing, is the resume point.
    """
    try:
        snap = json.loads((run_dir / "checkpoint_manager_snapshot.json").read_text())
        return int(((snap.get("latest_checkpoint_result") or {}).get("metrics") or {}).get("step", 0))
    except (OSError, ValueError):
        return 0


def ckpt_steps(run_dir: Path) -> list[int]:
    """Steps of the complete checkpoints on disk (HF trainer_state.json and metrics.json written)."""
    out = []
    for p in run_dir.glob("checkpoint_*"):
        if (p / "metrics.json").is_file() and (p / "checkpoint" / "trainer_state.json").is_file():
            out.append(int(json.loads((p / "checkpoint" / "trainer_state.json").read_text())["global_step"]))
    return sorted(out)
