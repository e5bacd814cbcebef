"""Storage on a real S3-protocol server (moto on 127.0.0.1): file ops, and Ray Train checkpoints.

The Ray part runs a 2-worker TorchTrainer on the two-node cluster with
``RunConfig(**storage.ray_storage_kwargs("s3://..."))``, lets it report checkpoints into the bucket,
then runs it again under the same name: the second run must get the first run's last checkpoint
back from S3 (Train V2 restore), i.e. checkpoints really live in, and come back from, the bucket.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from wt_cluster_helpers import LocalRayCluster, S3Server

from whisper_tune import storage

pytestmark = pytest.mark.integration


def test_file_ops_against_s3(s3_env: S3Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = f"s3://{s3_env.bucket}/ops-{tmp_path.name}"
    run = storage.join(base, "run1")
    storage.write_text(storage.join(run, "config.yaml"), "a: 1\n")
    local = tmp_path / "best"
    (local / "sub").mkdir(parents=True)
    (local / "config.json").write_text("{}")
    (local / "sub" / "model.safetensors").write_bytes(b"\x01" * 4096)
    storage.upload_dir(local, storage.join(run, "best"))
    prefix = f"ops-{tmp_path.name}/run1/"
    assert s3_env.keys(prefix) == [
        prefix + k for k in ("best/config.json", "best/sub/model.safetensors", "config.yaml")
    ]
    assert storage.listdir(run) == ["best", "config.yaml"]
    assert storage.read_text(storage.join(run, "config.yaml")) == "a: 1\n"
    got = storage.materialize(storage.join(run, "best"), cache_dir=tmp_path / "cache")
    assert (got / "sub" / "model.safetensors").read_bytes() == b"\x01" * 4096
    from whisper_tune.cli import main

    assert main(["fetch", storage.join(run, "best"), "--cache-dir", str(tmp_path / "c2")]) == 0
    fetched = Path(capsys.readouterr().out.strip())
    assert fetched.parent == tmp_path / "c2" and (fetched / "config.json").read_text() == "{}"
    storage.remove(storage.join(run, "best"))
    assert s3_env.keys(prefix) == [prefix + "config.yaml"]
    assert main(["fetch", storage.join(run, "best"), "--cache-dir", str(tmp_path / "c3")]) == 2
    assert "no such directory" in capsys.readouterr().err


def test_explicit_endpoint_without_aws_endpoint_env(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    for k, v in s3_server.env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    monkeypatch.setenv("WHISPER_TUNE_S3_ENDPOINT", s3_server.endpoint)
    storage.write_text(f"s3://{s3_server.bucket}/explicit/x.txt", "hi")
    assert s3_server.keys("explicit/") == ["explicit/x.txt"]


SCRIPT = textwrap.dedent(
    """
    import json, os, sys, tempfile
    import ray, ray.train
    from ray.train import RunConfig, ScalingConfig, CheckpointConfig
    from ray.train.torch import TorchTrainer
    from whisper_tune import storage

    def train_fn(cfg):
        ckpt = ray.train.get_checkpoint()
        start = 0
        if ckpt is not None:
            with ckpt.as_directory() as d:
                start = json.load(open(os.path.join(d, "state.json")))["step"]
        for step in range(start + 1, start + 3):
            with tempfile.TemporaryDirectory() as d:
                rank0 = ray.train.get_context().get_world_rank() == 0
                if rank0:
                    json.dump({"step": step}, open(os.path.join(d, "state.json"), "w"))
                ray.train.report({"step": step, "start": start},
                                 checkpoint=ray.train.Checkpoint.from_directory(d) if rank0 else None,
                                 checkpoint_dir_name=f"checkpoint_{step:06d}")

    ray.init(address=os.environ["RAY_ADDRESS"], logging_level="WARNING")
    trainer = TorchTrainer(
        train_fn,
        scaling_config=ScalingConfig(num_workers=2, use_gpu=False),
        run_config=RunConfig(name="s3run", checkpoint_config=CheckpointConfig(num_to_keep=2),
                             **storage.ray_storage_kwargs(sys.argv[1])),
    )
    result = trainer.fit()
    print("RESULT", json.dumps({"metrics": result.metrics, "path": result.checkpoint.path}))
    """
)


@pytest.mark.slow
def test_ray_train_checkpoints_to_s3_and_restore(
    ray_cluster: LocalRayCluster, s3_server: S3Server, tmp_path: Path
) -> None:
    script = tmp_path / "s3_train.py"
    script.write_text(SCRIPT)
    uri = f"s3://{s3_server.bucket}/ray-{tmp_path.name}"
    results = []
    for _ in range(2):
        r = subprocess.run([sys.executable, str(script), uri], env=ray_cluster.env, capture_output=True, text=True,
                           timeout=300)  # fmt: skip
        assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
        import json

        results.append(json.loads(r.stdout.split("RESULT ", 1)[1].splitlines()[0]))
    assert results[0]["metrics"] == {"step": 2, "start": 0}
    assert results[1]["metrics"] == {"step": 4, "start": 2}  # resumed from the checkpoint in S3
    assert results[1]["path"] == f"{s3_server.bucket}/ray-{tmp_path.name}/s3run/checkpoint_000004"
    keys = s3_server.keys(f"ray-{tmp_path.name}/s3run/")
    assert f"ray-{tmp_path.name}/s3run/checkpoint_000004/state.json" in keys
    assert f"ray-{tmp_path.name}/s3run/checkpoint_000001/state.json" not in keys  # num_to_keep pruned it


@pytest.mark.slow
def test_whisper_train_to_s3_then_resume(
    ray_cluster: LocalRayCluster, s3_env: S3Server, tiny_model_dir: Path, cluster_corpus: dict[str, Path],
    tmp_path: Path,
) -> None:  # fmt: skip
    """`whisper-tune train` with run.storage_path=s3://...: checkpoints, config, status and best/ land in
    the bucket; the same command with more steps resumes from the checkpoint in the bucket."""
    from wt_cluster_helpers import job_yaml, tb_steps

    uri = f"s3://{s3_env.bucket}/wt-{tmp_path.name}"
    cfg = job_yaml(tmp_path / "job.yaml", tiny_model_dir, cluster_corpus, uri, "s3run", max_steps=8)
    env = dict(ray_cluster.env, WHISPER_TUNE_CACHE=str(tmp_path / "cache"))
    base = [sys.executable, "-m", "whisper_tune.cli", "train", "--config", str(cfg),
            f"run.ray_address={ray_cluster.gcs_address}"]  # fmt: skip
    r = subprocess.run(base, env=env, capture_output=True, text=True, timeout=400)
    assert r.returncode == 0, (r.stdout + r.stderr)[-5000:]
    prefix = f"wt-{tmp_path.name}/s3run/"
    keys = s3_env.keys(prefix)
    for k in ("config.yaml", "status.json", "data_report.json", "best/config.json", "best/model.safetensors",
              "checkpoint_000008/metrics.json", "checkpoint_000008/checkpoint/trainer_state.json"):  # fmt: skip
        assert prefix + k in keys, (k, keys)
    assert '"finished"' in storage.read_text(f"{uri}/s3run/status.json")

    r = subprocess.run([*base, "train.max_steps=12"], env=env, capture_output=True, text=True, timeout=400)
    assert r.returncode == 0, (r.stdout + r.stderr)[-5000:]
    assert "(resumed)" in r.stdout and "steps:            12" in r.stdout
    assert prefix + "checkpoint_000012/checkpoint/trainer_state.json" in s3_env.keys(prefix)
    staged = next((tmp_path / "cache" / "staging").glob("*/s3run"))
    attempts = tb_steps(staged)
    assert attempts[-1][0] == 9, attempts  # resumed from the step-8 checkpoint fetched from S3
