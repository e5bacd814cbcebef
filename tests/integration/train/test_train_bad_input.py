"""Bad input fails before Ray starts, naming the key (or showing the data report)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from wt_train_testlib import job_dict

from whisper_tune import runs
from whisper_tune.cli import main
from whisper_tune.errors import DataError
from whisper_tune.train.config import JobConfig
from whisper_tune.train.launch import launch, prepare_run_dir

pytestmark = pytest.mark.integration


def _ray_running() -> bool:
    import ray

    return ray.is_initialized()


def _cfg_file(tmp_path: Path, data: dict) -> str:
    p = tmp_path / "job.yaml"
    p.write_text(yaml.safe_dump(data))
    return str(p)


def test_unknown_key_and_wrong_type_exit_2(
    tmp_path: Path, tiny_model_dir: Path, tiny_corpus: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    data = job_dict(tiny_model_dir, tiny_corpus, tmp_path / "runs")
    path = _cfg_file(tmp_path, data)
    assert main(["train", "--config", path, "train.lerning_rate=1e-5"]) == 2
    assert "train.lerning_rate" in capsys.readouterr().err
    assert main(["train", "--config", path, "train.max_steps=lots"]) == 2
    assert "train.max_steps" in capsys.readouterr().err
    assert main(["train", "--config", path, "train.eval_steps=3"]) == 2
    assert "train.save_steps" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() and not _ray_running()


def test_more_workers_than_cores_fails_before_ray(
    tmp_path: Path, tiny_model_dir: Path, tiny_corpus: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    import os

    path = _cfg_file(tmp_path, job_dict(tiny_model_dir, tiny_corpus, tmp_path / "runs"))
    n = (os.cpu_count() or 1) + 1
    assert main(["train", "--config", path, f"scaling.num_workers={n}"]) == 2
    err = capsys.readouterr().err
    assert "scaling.num_workers" in err and "fit" in err
    assert not (tmp_path / "runs").exists() and not _ray_running()


def test_zero3_on_cpu_fails_before_ray(
    tmp_path: Path, tiny_model_dir: Path, tiny_corpus: dict[str, Path]
) -> None:
    from whisper_tune.config import ConfigError

    data = job_dict(
        tiny_model_dir,
        tiny_corpus,
        tmp_path / "runs",
        scaling={"use_gpu": None},
        train={"deepspeed": "zero3"},
    )
    with pytest.raises(ConfigError, match=r"train\.deepspeed"):
        launch(JobConfig.from_mapping(data))
    assert not _ray_running()


def test_no_usable_rows_fails_with_the_data_report(tmp_path: Path, tiny_model_dir: Path) -> None:
    manifest = tmp_path / "bad.jsonl"
    rows = [
        {"audio_filepath": str(tmp_path / f"missing{i}.wav"), "text": "hello", "duration": 1.0}
        for i in range(3)
    ]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    data = job_dict(tiny_model_dir, {"train": manifest, "eval": manifest}, tmp_path / "runs")
    with pytest.raises(DataError, match="no usable rows") as info:
        launch(JobConfig.from_mapping(data))
    assert "missing" in str(info.value) or "not found" in str(info.value).lower()
    assert runs.read_status(tmp_path / "runs" / "t")["status"] == "failed"
    assert not _ray_running()


def test_existing_run_is_resumed_or_suffixed_never_overwritten(
    tmp_path: Path, tiny_model_dir: Path, tiny_corpus: dict[str, Path]
) -> None:
    data = job_dict(tiny_model_dir, tiny_corpus, tmp_path / "runs")
    run, resumed = prepare_run_dir(JobConfig.from_mapping(data))
    assert not resumed and (run / "config.yaml").is_file()
    (run / "checkpoint_000002").mkdir()
    again, resumed = prepare_run_dir(JobConfig.from_mapping(data))
    assert again == run and resumed and (run / "checkpoint_000002").is_dir()
    data["run"]["new_run"] = True
    fresh, resumed = prepare_run_dir(JobConfig.from_mapping(data))
    assert fresh.name == "t-2" and not resumed
