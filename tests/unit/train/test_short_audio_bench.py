"""Checks of the assumptions behind bench/short_audio_prep.py (packing real weights/features to carry)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))

from short_audio_prep import dequantize_state_dict, pack_features, quantize_state_dict  # noqa: E402


def test_zero_padding_log_mel_is_the_clip_minimum():
    """The GPU side rebuilds 30 s features by padding with the clip's minimum: that must be exact."""
    from transformers import WhisperFeatureExtractor

    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal(16000 * 2)).astype(np.float32)
    feats = WhisperFeatureExtractor()(audio, sampling_rate=16000, return_tensors="np").input_features[0]
    frames = len(audio) // 160 + 1
    tail = feats[:, frames + 2 :]
    assert tail.size > 0
    np.testing.assert_allclose(tail, feats.min(), rtol=0, atol=1e-6)
    q, lo, scale = pack_features(feats, frames)
    assert q.dtype == np.uint8 and q.shape == (80, frames)
    back = q.astype(np.float32) * scale + lo
    assert np.abs(back - feats[:, :frames]).max() <= scale / 2 + 1e-6


def test_int8_row_quantization_round_trip():
    torch.manual_seed(0)
    sd = {
        "big.weight": torch.randn(512, 256),
        "proj_out.weight": torch.randn(512, 256),  # tied: dropped, re-tied on load
        "small.bias": torch.randn(256),
        "steps": torch.tensor([3]),
    }
    q = quantize_state_dict(sd)
    assert "proj_out.weight" not in q and q["big.weight"]["q"].dtype == torch.int8
    back = dequantize_state_dict(q)
    rel = (back["big.weight"] - sd["big.weight"]).norm() / sd["big.weight"].norm()
    assert rel < 0.01
    torch.testing.assert_close(back["small.bias"], sd["small.bias"])
    assert torch.equal(back["steps"], sd["steps"])
