"""``train.inputs.load_data`` hands the long-recording options to the data: shares for training only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from whisper_tune.train import inputs
from whisper_tune.train.config import JobConfig


@pytest.fixture(scope="module")
def processor() -> Any:
    from whisper_tune.models.random_init import make_processor

    return make_processor()


def _call(tmp: Path) -> Path:
    sr = 8000
    t = np.arange(70 * sr) / sr
    x = (0.3 * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    sf.write(str(tmp / "call.wav"), np.stack([x, 0.5 * x], axis=1), sr)
    srt = "".join(
        f"{i + 1}\n00:00:{5 * i:02d},500 --> 00:00:{5 * i + 4:02d},000\nTurn {i}.\n\n" for i in range(12)
    )
    (tmp / "call.srt").write_text(srt)
    m = tmp / "calls.jsonl"
    m.write_text(json.dumps({"audio_filepath": "call.wav", "srt": "call.srt", "channel": 1}) + "\n")
    return m


def _job(m: Path, **data: Any) -> JobConfig:
    return JobConfig.from_mapping({"data": {"train": str(m), "eval": str(m), "guard": "none", **data}})


def test_train_windows_get_the_shares_eval_windows_stay_plain(tmp_path: Path, processor: Any) -> None:
    m = _call(tmp_path)
    job = _job(m, channels="split", window_timestamp_share=1.0, window_prev_share=1.0)
    train, evaluation = inputs.load_data(job, processor, None)
    assert train.report.long_form["channels_mode"] == "split"
    assert {s.meta["channel"] for s in train.samples} == {"1"}
    n = train.report.long_form["windows"]
    assert (
        n == 2 and train.report.long_form["timestamped"] == n and train.report.long_form["prev_text"] == n - 1
    )
    assert evaluation.report.long_form["timestamped"] == 0 and evaluation.report.long_form["prev_text"] == 0
    no_ts = processor.tokenizer.convert_tokens_to_ids("<|notimestamps|>")
    assert all(no_ts in e.labels for e in evaluation.dataset.entries)


def test_prompts_off_with_cached_encoder_outputs(tmp_path: Path, processor: Any) -> None:
    m = _call(tmp_path)
    job = JobConfig.from_mapping(
        {
            "data": {"train": str(m), "eval": str(m), "guard": "none", "window_prev_share": 1.0},
            "train": {"strategy": "decoder", "cache_encoder_outputs": True},
        }
    )
    train, _ = inputs.load_data(job, processor, None)
    assert train.report.long_form["prev_text"] == 0  # CachedEncoderCollator has no prompt masking


def test_bad_channels_value_is_a_config_error(tmp_path: Path) -> None:
    from whisper_tune.config import ConfigError

    with pytest.raises(ConfigError, match="channels"):
        _job(tmp_path / "m.jsonl", channels="stereo")
    with pytest.raises(ConfigError, match="data.window_prev_share"):
        _job(tmp_path / "m.jsonl", window_prev_share=1.5)
