"""WiSE-FT weight interpolation on tiny random-init Whispers."""

from __future__ import annotations

import pytest
import torch

from whisper_tune.models.interpolate import interpolate_weights, weight_distance
from whisper_tune.models.random_init import make_random_whisper


def _pair():
    base, _ = make_random_whisper("test", seed=0)
    tuned, _ = make_random_whisper("test", seed=1)
    return base, tuned


def test_endpoints_and_midpoint():
    base, tuned = _pair()
    mid = interpolate_weights(base, tuned, 0.5)
    zero = interpolate_weights(base, tuned, 0.0)
    one = interpolate_weights(base, tuned, 1.0)
    name = "model.decoder.layers.0.fc1.weight"
    b, t = base.state_dict()[name], tuned.state_dict()[name]
    assert torch.allclose(mid.state_dict()[name], (b + t) / 2, atol=1e-6)
    assert torch.allclose(zero.state_dict()[name], b, atol=1e-6)
    assert torch.allclose(one.state_dict()[name], t, atol=1e-6)
    # the inputs are untouched
    assert not torch.allclose(tuned.state_dict()[name], mid.state_dict()[name])


def test_tied_embeddings_are_mixed_once():
    base, tuned = _pair()
    mid = interpolate_weights(base, tuned, 0.5)
    emb = "model.decoder.embed_tokens.weight"
    expected = (base.state_dict()[emb] + tuned.state_dict()[emb]) / 2
    assert torch.allclose(mid.state_dict()[emb], expected, atol=1e-6)
    assert torch.allclose(mid.proj_out.weight, expected, atol=1e-6)


def test_distance_and_errors():
    base, tuned = _pair()
    assert weight_distance(base, base) == 0.0
    assert weight_distance(base, tuned) > 0.1
    half = interpolate_weights(base, tuned, 0.5)
    assert weight_distance(base, half) == pytest.approx(weight_distance(base, tuned) / 2, rel=1e-3)
    with pytest.raises(ValueError, match="alpha"):
        interpolate_weights(base, tuned, 1.5)
    other, _ = make_random_whisper("test", seed=0, d_model=32, encoder_ffn_dim=64, decoder_ffn_dim=64)
    with pytest.raises(ValueError, match="different architectures"):
        interpolate_weights(base, other, 0.5)
