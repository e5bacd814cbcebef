"""The random-init model dir reloads with a Whisper generation config that can decode timestamps."""

from __future__ import annotations

import json
from pathlib import Path


def test_saved_generation_config_is_authoritative(tmp_path: Path) -> None:
    import torch
    from transformers import GenerationConfig, WhisperForConditionalGeneration

    from whisper_tune.models.random_init import save_random_whisper

    out = save_random_whisper(tmp_path / "m", shape="test")
    saved = json.loads((out / "generation_config.json").read_text())
    assert not saved.get("_from_model_config", False)  # else transformers rebuilds it from config.json
    assert saved["no_timestamps_token_id"] == 50362 and saved["is_multilingual"] is False
    assert not GenerationConfig.from_pretrained(out)._from_model_config

    model = WhisperForConditionalGeneration.from_pretrained(out).eval()
    gc = model.generation_config
    assert gc.no_timestamps_token_id == 50362 and gc.is_multilingual is False
    assert gc.alignment_heads and gc.max_initial_timestamp_index == 50
    with torch.no_grad():
        seq = model.generate(torch.zeros(1, 80, 3000), max_new_tokens=4, return_timestamps=True)
    assert seq.shape[0] == 1


def test_generation_config_flagged_from_model_config_would_lose_whisper_fields(tmp_path: Path) -> None:
    """Why the flag matters: the same file marked ``_from_model_config`` loses the Whisper fields."""
    from transformers import GenerationConfig

    from whisper_tune.models.random_init import save_random_whisper

    out = save_random_whisper(tmp_path / "m", shape="test")
    data = json.loads((out / "generation_config.json").read_text())
    data["_from_model_config"] = True
    (out / "generation_config.json").write_text(json.dumps(data))
    assert getattr(GenerationConfig.from_pretrained(out), "no_timestamps_token_id", None) is None


def test_large_shapes_have_openais_mel_bins_and_depths() -> None:
    from whisper_tune.models.random_init import SHAPES, decoder_layers

    assert SHAPES["large-v3"][4] == 128 and SHAPES["large-v3-turbo"][4] == 128
    assert (SHAPES["large-v3"][1], decoder_layers("large-v3")) == (32, 32)
    assert (SHAPES["large-v3-turbo"][1], decoder_layers("large-v3-turbo")) == (32, 4)
    assert decoder_layers("small") == SHAPES["small"][1] == 12
