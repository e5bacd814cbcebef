"""Randomly initialised Whisper models of real (or toy) shapes.

Why: unit tests need a Whisper in seconds, and throughput benchmarks need the true
shapes without the weights (speed does not depend on the values). The tokenizer and
feature extractor are real — the tokenizer comes from the bundled ``tiny.en`` package,
built by :mod:`whisper_tune.models.processor` — so token ids, special tokens and feature
shapes match the real models. For tests and benchmarks only: production code never
builds models or processors through this module.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from whisper_tune.models.processor import build_processor_from_tokenizer, bundled_tokenizer_file

__all__ = [
    "SHAPES",
    "bundled_tokenizer_file",
    "decoder_layers",
    "make_processor",
    "make_random_whisper",
    "save_random_whisper",
    "shape_config",
]

# name -> (d_model, encoder layers, heads, ffn, n_mels); the decoder has as many layers as the
# encoder except where DECODER_LAYERS says otherwise. The shapes of OpenAI's checkpoints:
# large-v3 takes 128 mel bins, large-v3-turbo is large-v3 with its decoder cut to 4 layers.
# (The vocabulary is the bundled English tokenizer's 51864 tokens; the multilingual models
# have 51865-51866, a difference of < 0.01 % of the FLOPs.)
SHAPES: dict[str, tuple[int, int, int, int, int]] = {
    "test": (64, 2, 4, 128, 80),
    "tiny": (384, 4, 6, 1536, 80),
    "base": (512, 6, 8, 2048, 80),
    "small": (768, 12, 12, 3072, 80),
    "medium": (1024, 24, 16, 4096, 80),
    "large-v3": (1280, 32, 20, 5120, 128),
    "large-v3-turbo": (1280, 32, 20, 5120, 128),
}
DECODER_LAYERS: dict[str, int] = {"large-v3-turbo": 4}


def decoder_layers(shape: str) -> int:
    """Decoder depth of a shape (the encoder's, unless the shape cuts it)."""
    return DECODER_LAYERS.get(shape, SHAPES[shape][1])


def make_processor(tokenizer_file: Path | None = None, n_mels: int = 80) -> Any:
    """A real ``WhisperProcessor``, built exactly as the CTranslate2 conversion builds tiny.en's.

    The tokenizer therefore covers the full 51864-token English-only vocabulary (timestamp
    tokens included), so ids and ``len(tokenizer)`` match the real ``tiny.en``. Production code
    uses :mod:`whisper_tune.models.processor` directly; this is the test/bench shorthand.
    """
    return build_processor_from_tokenizer(tokenizer_file or bundled_tokenizer_file(), n_mels)


def _bundled_ct2_config() -> dict[str, Any]:
    cfg_file = bundled_tokenizer_file().parent / "config.json"
    cfg: dict[str, Any] = json.loads(cfg_file.read_text(encoding="utf-8")) if cfg_file.is_file() else {}
    # tiny.en's alignment heads name layers a toy shape does not have: use the fallback.
    cfg.pop("alignment_heads", None)
    return cfg


def shape_config(shape: str, vocab_size: int = 51864) -> dict[str, Any]:
    """``WhisperConfig`` keyword arguments of a named shape (sizes, depths, heads, mel bins)."""
    d, n, h, ffn, mels = SHAPES[shape]
    return dict(
        vocab_size=vocab_size,
        num_mel_bins=mels,
        d_model=d,
        encoder_layers=n,
        decoder_layers=decoder_layers(shape),
        encoder_attention_heads=h,
        decoder_attention_heads=h,
        encoder_ffn_dim=ffn,
        decoder_ffn_dim=ffn,
        max_source_positions=1500,
        max_target_positions=448,
    )


def make_random_whisper(shape: str = "test", seed: int = 0, **overrides: Any) -> tuple[Any, Any]:
    """(WhisperForConditionalGeneration, WhisperProcessor) with random weights of ``shape``."""
    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    from whisper_tune.models.convert import build_generation_config

    if shape not in SHAPES:
        raise ValueError(f"unknown shape '{shape}'; known: {', '.join(SHAPES)}")
    processor = make_processor(n_mels=SHAPES[shape][4])
    tok = processor.tokenizer
    cfg_kwargs = shape_config(shape, vocab_size=len(tok))
    cfg_kwargs.update(overrides)
    gen, extra = build_generation_config(tok, cfg_kwargs, _bundled_ct2_config(), warn=lambda _msg: None)
    for key, value in extra.items():
        cfg_kwargs.setdefault(key, value)
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(WhisperConfig(**cfg_kwargs))
    model.generation_config = gen
    return model, processor


def save_random_whisper(out_dir: str | Path, shape: str = "test", seed: int = 0, **overrides: Any) -> Path:
    """Write a self-contained random HF model dir (model + processor + generation config)."""
    out = Path(out_dir)
    model, processor = make_random_whisper(shape, seed, **overrides)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    processor.feature_extractor.save_pretrained(out)  # preprocessor_config.json (faster-whisper reads it)
    # As the converter does: write the Whisper generation config last and mark it authoritative. A file
    # flagged ``_from_model_config`` is rebuilt from config.json on load, which drops
    # no_timestamps_token_id / is_multilingual / alignment_heads and breaks return_timestamps=True.
    gen = model.generation_config
    gen._from_model_config = False
    gen.save_pretrained(out)
    (out / "whisper_tune_random.json").write_text(json.dumps({"shape": shape, "seed": seed}))
    return out
