"""Every shipped file in configs/cluster/ parses and says which command uses it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

CLUSTER = Path(__file__).resolve().parents[3] / "configs" / "cluster"
FILES = sorted(CLUSTER.glob("*.yaml"))


def test_there_are_cluster_configs() -> None:
    assert {p.name for p in FILES} >= {
        "job-s3.yaml",
        "kuberay-rayjob.yaml",
        "kuberay-raycluster.yaml",
        "ray-up-aws.yaml",
    }


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_config_parses_and_names_its_command(path: Path) -> None:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# ") and any(w in first for w in ("whisper-tune", "kubectl", "ray up")), first
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict)
    if path.name.startswith("job"):
        from whisper_tune.train.config import load_job_config

        cfg = load_job_config(path)
        assert cfg.run.storage_path.startswith("s3://") and cfg.run.max_failures >= 1
    elif doc.get("kind") == "RayJob":
        assert "whisper-tune train" in doc["spec"]["entrypoint"]
        assert "run.ray_address=auto" in doc["spec"]["entrypoint"]
        assert doc["spec"]["rayClusterSpec"]["rayVersion"] == "2.60.0"
    elif doc.get("kind") == "RayCluster":
        assert doc["spec"]["rayVersion"] == "2.60.0"
    else:
        assert doc["head_node_type"] in doc["available_node_types"]
        assert any("--dashboard-host=127.0.0.1" in c for c in doc["head_start_ray_commands"])
