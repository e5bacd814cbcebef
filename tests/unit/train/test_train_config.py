"""JobConfig validation: bad configs fail before anything starts, naming the key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from whisper_tune.config import ConfigError, dump_yaml, from_dict, load_yaml
from whisper_tune.train.config import JobConfig, check_placement, load_job_config

DATA = {"train": "a.jsonl", "eval": "b.jsonl"}


def make(**sections: dict[str, Any]) -> JobConfig:
    data: dict[str, Any] = {"data": dict(DATA)}
    for k, v in sections.items():
        data[k] = {**data.get(k, {}), **v}
    return from_dict(JobConfig, data)


def test_defaults_round_trip(tmp_path: Path) -> None:
    cfg = make()
    assert cfg.train.strategy == "full" and cfg.train.deepspeed == "none"
    dump_yaml(cfg, tmp_path / "c.yaml")
    again = load_job_config(tmp_path / "c.yaml")
    assert again == cfg


@pytest.mark.parametrize(
    ("sections", "key"),
    [
        ({"train": {"learning_rat": 1e-5}}, "train.learning_rat"),
        ({"train": {"per_device_batch_size": "eight"}}, "train.per_device_batch_size"),
        ({"train": {"strategy": "adapter"}}, "train.strategy"),
        ({"train": {"eval_steps": 30, "save_steps": 50}}, "train.save_steps"),
        ({"train": {"learning_rate": -1.0}}, "train.learning_rate"),
        ({"train": {"deepspeed": "zero9"}}, "train.deepspeed"),
        ({"train": {"cache_encoder_outputs": True}}, "train.cache_encoder_outputs"),
        (
            {"train": {"strategy": "decoder", "cache_encoder_outputs": True, "spec_augment": True}},
            "train.spec_augment",
        ),
        ({"train": {"strategy": "lora", "deepspeed": "zero3"}}, "train.deepspeed"),
        (
            {"train": {"strategy": "decoder", "cache_encoder_outputs": True, "deepspeed": "zero3"}},
            "train.deepspeed",
        ),
        ({"train": {"deepspeed": "zero3"}, "scaling": {"use_gpu": False}}, "train.deepspeed"),
        ({"train": {"deepspeed": "zero2_offload"}, "scaling": {"use_gpu": False}}, "train.deepspeed"),
        ({"train": {"precision": "fp16"}, "scaling": {"use_gpu": False}}, "train.precision"),
        ({"scaling": {"num_workers": 0}}, "scaling.num_workers"),
        ({"run": {"name": "../x"}}, "run.name"),
        ({"data": {"max_label_tokens": 500}}, "data.max_label_tokens"),
        ({"data": {"eval": ""}}, "data.eval"),
        ({"lora": {"r": 4}}, "lora"),
        ({"data": {"pack_share": 1.5}}, "data.pack_share"),
        (
            {"data": {"pack_share": 0.5}, "train": {"strategy": "decoder", "cache_encoder_outputs": True}},
            "data.pack_share",
        ),
        ({"data": {"pack_share": 0.5}, "train": {"short_audio": True}}, "data.pack_share"),
        ({"data": {"pack_share": 0.5}, "train": {"encoder_frames": 1000}}, "data.pack_share"),
    ],
)
def test_invalid_configs_name_the_key(sections: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        make(**sections)


def test_missing_data_section_is_named(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("train:\n  learning_rate: 1e-5\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: data"):
        load_job_config(tmp_path / "c.yaml")


def test_overrides_apply_and_are_typed(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("data:\n  train: a.jsonl\n  eval: b.jsonl\n")
    cfg = load_job_config(tmp_path / "c.yaml", ["train.learning_rate=3e-5", "scaling.num_workers=2"])
    assert cfg.train.learning_rate == pytest.approx(3e-5)
    assert cfg.scaling.num_workers == 2
    with pytest.raises(ConfigError, match=r"scaling\.num_workers"):
        load_job_config(tmp_path / "c.yaml", ["scaling.num_workers=two"])


def test_deepspeed_json_path_checked_for_cpu(tmp_path: Path) -> None:
    ds = tmp_path / "ds.json"
    ds.write_text(json.dumps({"zero_optimization": {"stage": 3}}))
    cfg = make(train={"deepspeed": str(ds)})
    assert cfg.train.deepspeed_stage() == 3
    with pytest.raises(ConfigError, match=r"train\.deepspeed.*GPU"):
        check_placement(cfg, {"CPU": 8.0})
    ds.write_text(json.dumps({"zero_optimization": {"stage": 2, "offload_optimizer": {"device": "cpu"}}}))
    with pytest.raises(ConfigError, match=r"train\.deepspeed"):
        check_placement(make(train={"deepspeed": str(ds)}), {"CPU": 8.0})


def test_placement_counts_workers() -> None:
    cfg = make(scaling={"num_workers": 3})
    with pytest.raises(ConfigError, match=r"scaling\.num_workers: 3 workers.*at most 2 fit"):
        check_placement(cfg, {"CPU": 2.0})
    assert check_placement(make(scaling={"num_workers": 2}), {"CPU": 2.0}) is False
    # GPUs present and use_gpu unset -> GPU workers, counted against GPUs
    assert check_placement(make(scaling={"num_workers": 2}), {"CPU": 8.0, "GPU": 2.0}) is True
    with pytest.raises(ConfigError, match=r"scaling\.num_workers.*GPU"):
        check_placement(make(scaling={"num_workers": 3}), {"CPU": 8.0, "GPU": 2.0})
    with pytest.raises(ConfigError, match=r"scaling\.use_gpu"):
        check_placement(make(scaling={"use_gpu": True}), {"CPU": 8.0})
    # zero3 is fine once GPUs are there
    assert check_placement(make(train={"deepspeed": "zero3"}), {"CPU": 8.0, "GPU": 1.0}) is True


CONFIG_DIR = Path(__file__).resolve().parents[3] / "configs"
JOB_SECTIONS = {"model", "data", "train", "scaling", "run", "eval"}


def _job_configs() -> list[Path]:
    """Every configs/*.yaml with a job section (other areas' configs have none of them)."""
    return sorted(p for p in CONFIG_DIR.glob("*.y*ml") if set(load_yaml(p)) & JOB_SECTIONS)


def test_shipped_job_configs_exist() -> None:
    names = {p.name for p in _job_configs()}
    assert {"demo-cpu.yaml", "tiny-en-banking.yaml", "small-gpu.yaml", "zero3-offload.yaml"} <= names


@pytest.mark.parametrize("path", _job_configs(), ids=lambda p: p.name)
def test_every_shipped_job_config_loads(path: Path) -> None:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# whisper-tune "), f"{path.name} must start with the command that uses it"
    assert path.name in first or path.stem in first
    cfg = load_job_config(path)
    if cfg.scaling.use_gpu is not False:
        check_placement(cfg, {"CPU": 64.0, "GPU": 8.0})
    else:
        check_placement(cfg, {"CPU": 64.0})
