"""The DeepSpeed presets ship as package data and resolve for the HF integration."""

from __future__ import annotations

from pathlib import Path

import pytest

from whisper_tune.config import ConfigError
from whisper_tune.train.config import DEEPSPEED_PRESETS, TrainSection
from whisper_tune.train.deepspeed import list_presets, load_deepspeed_config

EXPECTED = {"zero1": 1, "zero2": 2, "zero3": 3, "zero2_offload": 2, "zero3_offload": 3}


def test_presets_match_config_choices() -> None:
    assert set(list_presets()) == set(EXPECTED) == set(DEEPSPEED_PRESETS) - {"none"}
    assert load_deepspeed_config("none") is None


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_preset_loads(name: str) -> None:
    cfg = load_deepspeed_config(name)
    assert cfg is not None
    zero = cfg["zero_optimization"]
    assert zero["stage"] == EXPECTED[name] == TrainSection(deepspeed=name).deepspeed_stage()
    # sizes come from the TrainingArguments, so presets fit any model / worker count
    for key in ("train_micro_batch_size_per_gpu", "gradient_accumulation_steps", "gradient_clipping"):
        assert cfg[key] == "auto"
    assert cfg["bf16"]["enabled"] == "auto" and cfg["fp16"]["enabled"] == "auto"
    offloads = name.endswith("_offload")
    assert ("offload_optimizer" in zero) == offloads
    assert ("offload_param" in zero) == (name == "zero3_offload")
    if EXPECTED[name] == 3:
        assert zero["stage3_gather_16bit_weights_on_model_save"] is True  # best/ needs full weights


def test_preset_is_accepted_by_hf_integration() -> None:
    from transformers.integrations.deepspeed import HfDeepSpeedConfig

    ds = HfDeepSpeedConfig(load_deepspeed_config("zero3"))
    assert ds.is_zero3()


def test_bad_json_file_names_line(tmp_path: Path) -> None:
    bad = tmp_path / "ds.json"
    bad.write_text('{\n  "zero_optimization": {"stage": 2,}\n}\n')
    with pytest.raises(ConfigError, match=r"train\.deepspeed: .*ds\.json:2"):
        load_deepspeed_config(str(bad))
    with pytest.raises(ConfigError, match="cannot read"):
        load_deepspeed_config(str(tmp_path / "missing.json"))
