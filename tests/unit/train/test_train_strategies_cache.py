"""Strategies freeze what they say; cached encoder outputs train and generate like features do."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers.modeling_outputs import BaseModelOutput

from whisper_tune.models.random_init import make_random_whisper
from whisper_tune.train.config import LoraSection, TrainSection
from whisper_tune.train.encoder_cache import (
    CachedEncoderCollator,
    CachedEncoderDataset,
    build_encoder_cache,
    cache_fingerprint,
)
from whisper_tune.train.strategies import apply_strategy, count_parameters


@pytest.fixture(scope="module")
def toy() -> tuple[object, object]:
    return make_random_whisper("test", seed=1)


def _fresh() -> object:
    return make_random_whisper("test", seed=1)[0]


def test_full_trains_everything() -> None:
    model, info = apply_strategy(_fresh(), TrainSection(strategy="full"))
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert all("embed_positions" in n for n in frozen)  # Whisper's sinusoidal table only
    assert info.trainable_params > 0.9 * info.total_params


def test_decoder_freezes_exactly_the_encoder() -> None:
    model, info = apply_strategy(_fresh(), TrainSection(strategy="decoder"))
    enc = {id(p) for p in model.get_encoder().parameters()}
    for p in model.parameters():
        assert p.requires_grad == (id(p) not in enc)
    assert 0 < info.trainable_params < info.total_params


def test_encoder_freezes_the_decoder_and_its_output_projection() -> None:
    model, info = apply_strategy(_fresh(), TrainSection(strategy="encoder"))
    dec = {id(p) for p in model.get_decoder().parameters()} | {id(model.get_output_embeddings().weight)}
    positions = id(model.get_encoder().embed_positions.weight)  # fixed sinusoids, never trained
    for p in model.parameters():
        assert p.requires_grad == (id(p) not in dec and id(p) != positions)
    assert 0 < info.trainable_params < info.total_params


def test_encoder_with_frozen_lower_layers_trains_only_the_top_and_backprops() -> None:
    from whisper_tune.config import ConfigError

    model, info = apply_strategy(_fresh(), TrainSection(strategy="encoder", frozen_encoder_layers=1))
    enc = model.get_encoder()
    top = {id(p) for layer in enc.layers[1:] for p in layer.parameters()} | {
        id(p) for p in enc.layer_norm.parameters()
    }
    for p in model.parameters():
        assert p.requires_grad == (id(p) in top)
    _, all_enc = apply_strategy(_fresh(), TrainSection(strategy="encoder"))
    assert 0 < info.trainable_params < all_enc.trainable_params
    feats = torch.randn(2, model.config.num_mel_bins, 2 * model.config.max_source_positions)
    labels = torch.tensor([[5, 6, 7], [8, 9, 10]])
    model(input_features=feats, labels=labels).loss.backward()
    assert all(p.grad is not None for p in enc.layers[-1].parameters())
    assert all(p.grad is None for p in enc.conv1.parameters())
    with pytest.raises(ConfigError, match="frozen_encoder_layers.*all"):
        apply_strategy(_fresh(), TrainSection(strategy="encoder", frozen_encoder_layers=len(enc.layers)))
    with pytest.raises(ConfigError, match="frozen_encoder_layers.*strategy encoder"):
        TrainSection(strategy="decoder", frozen_encoder_layers=1)


def test_cross_attention_trains_only_the_decoders_cross_attention() -> None:
    model, info = apply_strategy(_fresh(), TrainSection(strategy="cross_attention"))
    wanted = set()
    for layer in model.get_decoder().layers:
        wanted |= {id(p) for p in layer.encoder_attn.parameters()}
        wanted |= {id(p) for p in layer.encoder_attn_layer_norm.parameters()}
    assert wanted
    for p in model.parameters():
        assert p.requires_grad == (id(p) in wanted)
    assert info.trainable_params == sum(p.numel() for p in model.parameters() if id(p) in wanted)


def test_lora_trains_only_adapters_and_spec_augment_is_configured() -> None:
    train = TrainSection(
        strategy="lora", lora=LoraSection(r=4, alpha=8), spec_augment=True, mask_time_prob=0.1
    )
    model, info = apply_strategy(_fresh(), train)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n for n in names)
    assert info.trainable_fraction < 0.05
    assert model.config.apply_spec_augment is True and model.config.mask_time_prob == pytest.approx(0.1)


def test_lora_bad_target_names_key() -> None:
    from whisper_tune.config import ConfigError

    with pytest.raises(ConfigError, match=r"train\.lora\.target_modules"):
        apply_strategy(
            _fresh(), TrainSection(strategy="lora", lora=LoraSection(target_modules=["nope_proj"]))
        )


class _Items(torch.utils.data.Dataset):
    def __init__(self, n: int) -> None:
        g = torch.Generator().manual_seed(0)
        self.items = [
            {
                "input_features": torch.randn(80, 3000, generator=g).numpy(),
                "labels": [50257, 10 + i, 20, 50256],
                "id": f"u{i}",
            }
            for i in range(n)
        ]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return self.items[i]


def test_cached_outputs_match_live_encoder(tmp_path: Path, toy: tuple) -> None:
    model, processor = toy
    model.eval()
    ds = _Items(3)
    fp = cache_fingerprint("toy", [it["id"] for it in ds.items])
    stats = build_encoder_cache(model, ds, tmp_path / "c", fp, batch_size=2)
    assert stats["encoded"] == 3
    assert build_encoder_cache(model, ds, tmp_path / "c", fp)["encoded"] == 0  # reused
    assert build_encoder_cache(model, ds, tmp_path / "c", fp + "x")["encoded"] == 3  # stale -> rebuilt
    cached = CachedEncoderDataset(ds, tmp_path / "c")
    assert cached[1]["encoder_hidden"].dtype == np.float16
    start = model.config.decoder_start_token_id
    batch = CachedEncoderCollator(fallback=None, decoder_start_token_id=start)([cached[i] for i in range(3)])
    assert batch["labels"].shape == (3, 3)  # decoder start stripped once
    feats = torch.stack([torch.from_numpy(ds[i]["input_features"]) for i in range(3)])
    with torch.no_grad():
        live = model(input_features=feats, labels=batch["labels"]).loss
        from_cache = model(encoder_outputs=batch["encoder_outputs"], labels=batch["labels"]).loss
        assert from_cache.item() == pytest.approx(live.item(), rel=1e-2)
        gen_live = model.generate(input_features=feats, max_new_tokens=5)
        gen_cache = model.generate(
            encoder_outputs=BaseModelOutput(last_hidden_state=batch["encoder_outputs"][0]), max_new_tokens=5
        )
    assert gen_live.tolist() == gen_cache.tolist()


def test_cache_missing_items_fail_loudly(tmp_path: Path, toy: tuple) -> None:
    model, _ = toy
    ds = _Items(3)
    # rank 0 of 2 without a second worker: half the items never appear -> clear error, not a hang
    with pytest.raises(RuntimeError, match="items missing"):
        build_encoder_cache(model, ds, tmp_path / "c", "fp", rank=0, world_size=2)


def test_count_parameters(toy: tuple) -> None:
    model, _ = toy
    trainable, total = count_parameters(model)
    assert total == sum(p.numel() for p in model.parameters()) and trainable <= total
