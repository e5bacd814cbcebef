"""Two training steps (no Ray, toy random Whisper) on a stereo call with per-channel SRTs.

Checks what the trainer is given, not just what the data layer builds: batches whose labels
carry timestamp tokens, and prompted batches with explicit ``decoder_input_ids`` whose prompt
positions are -100.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from whisper_tune.data import features as data_features
from whisper_tune.train import recipe
from whisper_tune.train.config import JobConfig

pytestmark = pytest.mark.integration


def _srt(turns: list[tuple[float, float, str]]) -> str:
    def ts(t: float) -> str:
        ms = int(round(t * 1000))
        return f"00:{ms // 60_000:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"

    return "".join(f"{i}\n{ts(a)} --> {ts(b)}\n{x}\n\n" for i, (a, b, x) in enumerate(turns, 1))


def test_two_steps_on_a_call_reach_the_trainer_with_timestamps_and_prompts(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: Any
) -> None:
    sr = 8000
    t = np.arange(80 * sr) / sr
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)
    left, right = 0.3 * env * np.sin(2 * np.pi * 220 * t), 0.2 * env * np.sin(2 * np.pi * 330 * t)
    sf.write(str(tmp_path / "call.flac"), np.stack([left, right], 1).astype(np.float32), sr)
    for ch in (0, 1):
        turns = [(1.0 + 3 * ch + 6 * i, 3.5 + 3 * ch + 6 * i, f"Channel {ch} turn {i}.") for i in range(12)]
        (tmp_path / f"ch{ch}.srt").write_text(_srt(turns))
    rows = [{"audio_filepath": "call.flac", "srt": f"ch{ch}.srt", "channel": ch} for ch in (0, 1)]
    manifest = tmp_path / "calls.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))

    batches: list[dict[str, Any]] = []
    real_call = data_features.WhisperCollator.__call__

    def spy(self: Any, items: list[dict[str, Any]]) -> dict[str, Any]:
        out = real_call(self, items)
        batches.append({"items": [list(i["labels"]) for i in items], **out})
        return out

    monkeypatch.setattr(data_features.WhisperCollator, "__call__", spy)
    run = tmp_path / "run"
    run.mkdir()
    job = {
        "model": {"name": str(tiny_model_dir)},
        "data": {
            "train": str(manifest),
            "eval": str(manifest),
            "guard": "none",
            "channels": "split",
            "window_timestamp_share": 1.0,
            "window_prev_share": 1.0,
            "max_eval_samples": 2,
        },
        "train": {
            "learning_rate": 1e-3,
            "per_device_batch_size": 3,
            "max_steps": 2,
            "eval_steps": 2,
            "save_steps": 2,
            "logging_steps": 1,
            "generation_max_length": 8,
            "torch_threads": 1,
        },
        "scaling": {"num_workers": 1, "use_gpu": False},
        "run": {"storage_path": str(tmp_path), "name": "run", "num_to_keep": 1},
    }
    config = {
        "job": JobConfig.from_mapping(job).to_dict(),
        "run_dir": str(run),
        "hf_output_dir": str(tmp_path / "run-hf"),
        "use_ray": False,
        "use_gpu": False,
    }
    assert recipe.run(config)["global_step"] == 2
    from whisper_tune.models.random_init import make_processor

    tok = make_processor().tokenizer
    ts0, prev_id = tok.convert_tokens_to_ids("<|0.00|>"), tok.convert_tokens_to_ids("<|startofprev|>")
    train = [b for b in batches if "decoder_input_ids" in b]  # the eval windows are never prompted
    assert train, "no prompted batch reached the trainer"
    for b in train:
        assert b["decoder_input_ids"].shape == b["labels"].shape
        for row, items in enumerate(b["items"]):
            if items[0] == prev_id:
                sot = items.index(50257)
                assert (b["labels"][row, :sot] == -100).all()
                assert b["decoder_input_ids"][row, : sot + 1].tolist() == items[: sot + 1]
    assert any(any(x >= ts0 for x in items) for b in train for items in b["items"])  # timestamped labels
    metrics = json.loads((run / "checkpoint_000002" / "metrics.json").read_text())
    assert math.isfinite(metrics["eval_loss"])
