"""Fault tolerance of a real 2-worker CPU training run on the two-node loopback cluster.

What is asserted is the *step counter*, not just success: the TensorBoard file of each rank-0
worker process records every step it trained, so after a failure we can see exactly where the
next attempt restarted (it must be a checkpoint no older than the one on disk at the kill, i.e.
at most one checkpoint interval lost) and that the run still ends at ``max_steps``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from wt_cluster_helpers import LocalRayCluster, ckpt_steps, committed_step, job_yaml, tb_steps

pytestmark = pytest.mark.integration

SAVE_STEPS = 4
MAX_STEPS = 16


def train_cmd(config: Path, cluster: LocalRayCluster, *overrides: str) -> list[str]:
    return [sys.executable, "-m", "whisper_tune.cli", "train", "--config", str(config),
            f"run.ray_address={cluster.gcs_address}", *overrides]  # fmt: skip


def start_train(cmd: list[str], cluster: LocalRayCluster, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as fh:
        return subprocess.Popen(
            cmd, env=cluster.env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
        )


def wait_for_checkpoint(
    run_dir: Path, proc: subprocess.Popen[bytes], log: Path, min_step: int = SAVE_STEPS
) -> int:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        step = committed_step(run_dir)
        if step >= min_step:
            return step
        assert proc.poll() is None, f"training ended before a checkpoint:\n{log.read_text()[-4000:]}"
        time.sleep(0.5)
    raise AssertionError(f"no checkpoint after 240 s:\n{log.read_text()[-4000:]}")


def alive_workers(cluster: LocalRayCluster) -> list[dict[str, Any]]:
    return [a for a in cluster.actors("RayTrainWorker") if a["state"] == "ALIVE"]


def wait_workers_gone(cluster: LocalRayCluster, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while alive_workers(cluster) and time.monotonic() < deadline:
        time.sleep(1)
    assert not alive_workers(cluster), "train workers of an earlier run are still alive"


def finish(proc: subprocess.Popen[bytes], log: Path, timeout: float = 400) -> tuple[int, str]:
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise AssertionError(f"training hung:\n{log.read_text()[-4000:]}") from None
    return rc, log.read_text()


def assert_resumed_once(run_dir: Path, ckpt_at_kill: int) -> tuple[list[int], list[int]]:
    attempts = tb_steps(run_dir)
    assert len(attempts) == 2, attempts
    first, second = attempts
    resumed_from = second[0] - 1
    assert resumed_from % SAVE_STEPS == 0, attempts
    assert resumed_from >= ckpt_at_kill > 0, (resumed_from, ckpt_at_kill)  # not from scratch, not older
    # At most one checkpoint interval is lost, plus the step that was running when the worker
    # died: a kill can land while the next checkpoint is being saved/registered (seen in CI: last
    # logged step 9, resumed from 4 with save_steps 4), and that in-flight checkpoint is lost too.
    assert first[-1] - resumed_from <= SAVE_STEPS + 1, (first[-1], resumed_from)
    assert second[-1] == MAX_STEPS
    assert second == list(range(resumed_from + 1, MAX_STEPS + 1))  # no gaps after resuming
    final = json.loads(
        (run_dir / f"checkpoint_{MAX_STEPS:06d}" / "checkpoint" / "trainer_state.json").read_text()
    )
    assert final["global_step"] == MAX_STEPS
    return first, second


@pytest.mark.slow
def test_worker_sigkill_resumes_from_last_checkpoint(
    ray_cluster: LocalRayCluster, tiny_model_dir: Path, cluster_corpus: dict[str, Path], tmp_path: Path
) -> None:
    wait_workers_gone(ray_cluster)
    storage = tmp_path / "runs"
    cfg = job_yaml(
        tmp_path / "job.yaml", tiny_model_dir, cluster_corpus, str(storage), "wkill", max_failures=1
    )
    log = tmp_path / "train.log"
    proc = start_train(train_cmd(cfg, ray_cluster), ray_cluster, log)
    run_dir = storage / "wkill"
    ckpt = wait_for_checkpoint(run_dir, proc, log)
    victims = alive_workers(ray_cluster)
    assert len(victims) == 2
    assert len({v["node_id"] for v in victims}) == 2  # one worker per node
    os.kill(int(victims[0]["pid"]), signal.SIGKILL)
    rc, out = finish(proc, log)
    assert rc == 0, out[-5000:]
    first, second = assert_resumed_once(run_dir, ckpt)
    assert first[-1] < MAX_STEPS  # it really died mid-run
    new_pids = {int(a["pid"]) for a in ray_cluster.actors("RayTrainWorker")} - {
        int(v["pid"]) for v in victims
    }
    assert len(new_pids) >= 2  # a fresh worker group trained the rest
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "finished" and status["global_step"] == MAX_STEPS


@pytest.mark.slow
def test_max_failures_zero_fails_clearly(
    ray_cluster: LocalRayCluster, tiny_model_dir: Path, cluster_corpus: dict[str, Path], tmp_path: Path
) -> None:
    wait_workers_gone(ray_cluster)
    storage = tmp_path / "runs"
    cfg = job_yaml(
        tmp_path / "job.yaml", tiny_model_dir, cluster_corpus, str(storage), "nofail", max_failures=0
    )
    log = tmp_path / "train.log"
    proc = start_train(train_cmd(cfg, ray_cluster), ray_cluster, log)
    wait_for_checkpoint(storage / "nofail", proc, log)
    victim = alive_workers(ray_cluster)[0]
    os.kill(int(victim["pid"]), signal.SIGKILL)
    rc, out = finish(proc, log)
    assert rc != 0
    errors = [line for line in out.splitlines() if line.startswith("error: training failed")]
    assert errors, out[-3000:]
    assert "run.max_failures=0" in errors[0] and "resume" in errors[0]
    assert json.loads((storage / "nofail" / "status.json").read_text())["status"] == "failed"


@pytest.mark.slow
def test_driver_killed_rerun_resumes_and_ignores_half_written_checkpoint(
    ray_cluster: LocalRayCluster, tiny_model_dir: Path, cluster_corpus: dict[str, Path], tmp_path: Path
) -> None:
    wait_workers_gone(ray_cluster)
    storage = tmp_path / "runs"
    cfg = job_yaml(
        tmp_path / "job.yaml", tiny_model_dir, cluster_corpus, str(storage), "dkill", max_failures=0
    )
    cmd = train_cmd(cfg, ray_cluster)
    log1 = tmp_path / "train1.log"
    proc = start_train(cmd, ray_cluster, log1)
    run_dir = storage / "dkill"
    ckpt = wait_for_checkpoint(run_dir, proc, log1)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver (and only it: it runs in its own group)
    proc.wait()
    wait_workers_gone(ray_cluster)  # Ray ends the dead driver's workers
    done = ckpt_steps(run_dir)
    assert done and done[-1] < MAX_STEPS

    # a half-written checkpoint newer than anything real: complete-looking metadata, truncated weights
    real = run_dir / f"checkpoint_{done[-1]:06d}"
    half = run_dir / "checkpoint_000999"
    shutil.copytree(real, half)
    state = json.loads((half / "checkpoint" / "trainer_state.json").read_text())
    state["global_step"] = 999
    (half / "checkpoint" / "trainer_state.json").write_text(json.dumps(state))
    weights = half / "checkpoint" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    (half / "metrics.json").write_text(json.dumps({"step": 999, "eval_wer": 0.0}))

    log2 = tmp_path / "train2.log"
    rc, out = finish(start_train(cmd, ray_cluster, log2), log2)
    assert rc == 0, out[-5000:]
    assert "(resumed)" in out
    assert_resumed_once(run_dir, ckpt)
    best = json.loads((run_dir / "best" / "metrics.json").read_text())
    assert "checkpoint_000999" not in best["source_checkpoint"]


def test_submitted_job_trains_on_both_nodes_and_survives_worker_kill(
    ray_cluster: LocalRayCluster, tiny_model_dir: Path, cluster_corpus: dict[str, Path], tmp_path: Path
) -> None:
    """`whisper-tune submit -- train` on the two-node head: one worker per node, a worker SIGKILLed
    mid-run, the job still SUCCEEDS having resumed from the last registered checkpoint."""
    wait_workers_gone(ray_cluster)
    storage = tmp_path / "runs"  # same machine: a local path is shared storage for both nodes
    cfg = job_yaml(tmp_path / "job.yaml", tiny_model_dir, cluster_corpus, str(storage), "sub", max_failures=1)
    log = tmp_path / "submit.log"
    cmd = [sys.executable, "-m", "whisper_tune.cli", "submit", "--no-working-dir",
           "--env-var", "HF_HUB_OFFLINE", "--", "train", "--config", str(cfg)]  # fmt: skip
    proc = start_train(cmd, ray_cluster, log)
    run_dir = storage / "sub"
    ckpt = wait_for_checkpoint(run_dir, proc, log)
    workers = alive_workers(ray_cluster)
    assert len(workers) == 2
    node_ids = {w["node_id"] for w in workers}
    assert node_ids == {n["node_id"] for n in ray_cluster.alive_nodes()}  # placed on both nodes
    os.kill(int(workers[1]["pid"]), signal.SIGKILL)
    rc, out = finish(proc, log)
    assert rc == 0, out[-5000:]
    assert "SUCCEEDED" in out
    first, _ = assert_resumed_once(run_dir, ckpt)
    assert first[-1] < MAX_STEPS
    cfg_used = (run_dir / "config.yaml").read_text()
    assert "ray_address: auto" in cfg_used  # joined the job's cluster, no private Ray
    replacements = [
        a
        for a in ray_cluster.actors("RayTrainWorker")
        if int(a["pid"]) not in {int(w["pid"]) for w in workers}
    ]
    assert {a["node_id"] for a in replacements} == node_ids  # the restarted group spans both nodes too
