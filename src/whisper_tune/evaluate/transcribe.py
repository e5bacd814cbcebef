"""Batched greedy transcription with a loaded Whisper, features computed once.

Why: evaluation runs the same clips through two models (base and tuned). Decoding audio
and computing log-mel features is a real share of CPU time, so a ``FeatureBank`` computes
each clip's features once and both models reuse them. Clips longer than 30 s are split on
silence (``whisper_tune.data.split_long_audio``) and the pieces' transcripts joined, because
Whisper's feature extractor silently truncates at 30 s. A tuned model with a shortened
encoder context (``config.max_source_positions`` < 1500, see ``train.fastpath``) gets
features cut to its frame count, and clips are split to fit that shorter window.

Generation is greedy (``num_beams=1``) by default, like the seed and Whisper's own WER
numbers. Without ``max_new_tokens`` the budget is taken from the batch's longest piece
(8 tokens per second of audio + 16, capped by the decoder's 448 positions): a repetition
loop of a badly tuned model then ends quickly instead of costing 448 decoder steps per clip.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["FeatureBank", "SAMPLE_RATE", "model_frames", "resolve_device", "transcribe", "transcribe_bank"]

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
FULL_FRAMES = 3000  # 30 s of 10 ms mel frames: what Whisper pads every clip to
FRAMES_PER_SECOND = 100
TOKENS_PER_SECOND = 8.0
TOKEN_MARGIN = 16


def resolve_device(device: str = "auto") -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; anything else is returned as is."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _split(audio: np.ndarray, max_s: float) -> list[np.ndarray]:
    """Pieces of at most ``max_s`` seconds (one piece for short clips), cut on silence."""
    if len(audio) <= max_s * SAMPLE_RATE:
        return [audio]
    from whisper_tune.data import split_long_audio

    return [piece for _, piece in split_long_audio(audio, sr=SAMPLE_RATE, max_s=max_s)]


def _fe_key(processor: Any) -> tuple[Any, ...]:
    fe = processor.feature_extractor
    return (
        getattr(fe, "feature_size", None),
        getattr(fe, "sampling_rate", None),
        getattr(fe, "n_fft", None),
        getattr(fe, "hop_length", None),
        getattr(fe, "n_samples", None),
    )


def model_frames(model: Any) -> int:
    """Mel frames the model's encoder takes: 3000 (30 s), fewer for a shortened encoder context.

    Models fine-tuned with ``train.fastpath.shorten_encoder_context`` store the short
    context as ``config.max_source_positions`` (frames = 2 x positions); transformers
    rejects features of any other length.
    """
    positions = getattr(getattr(model, "config", None), "max_source_positions", None)
    return FULL_FRAMES if not isinstance(positions, int) else min(FULL_FRAMES, 2 * positions)


@dataclass
class _Piece:
    clip: int  # index of the clip it belongs to
    audio: np.ndarray


class FeatureBank:
    """Clips decoded once; pieces and log-mel features computed once per encoder context.

    Pieces are cut to fit the context (30 s for standard Whisper; ``frames / 100`` s for a
    shortened one) and features are cached per (feature extractor, frames), so base and
    tuned models of the same shape share everything. Memory: 80 x 3000 float32 = 0.96 MB
    per piece at full context.
    """

    def __init__(self, audios: Sequence[np.ndarray]) -> None:
        self.n_clips = len(audios)
        self.audios: list[np.ndarray] = []
        for i, a in enumerate(audios):
            arr = np.asarray(a, dtype=np.float32)
            if arr.ndim != 1:
                raise ValueError(f"audio {i}: expected mono 1-D samples at 16 kHz, got shape {arr.shape}")
            self.audios.append(arr)
        self._pieces: dict[int, list[_Piece]] = {}
        self._features: dict[tuple[Any, ...], list[np.ndarray]] = {}

    def pieces(self, frames: int = FULL_FRAMES) -> list[_Piece]:
        """Pieces that fit ``frames`` mel frames (10 ms each), in clip order."""
        if frames not in self._pieces:
            max_s = frames / FRAMES_PER_SECOND
            self._pieces[frames] = [_Piece(i, p) for i, a in enumerate(self.audios) for p in _split(a, max_s)]
        return self._pieces[frames]

    def durations(self, frames: int = FULL_FRAMES) -> list[float]:
        return [len(p.audio) / SAMPLE_RATE for p in self.pieces(frames)]

    def features(self, processor: Any, frames: int = FULL_FRAMES, batch_size: int = 32) -> list[np.ndarray]:
        """Per-piece features ``[n_mels, frames]`` for ``processor``'s extractor (computed once)."""
        key = (*_fe_key(processor), frames)
        if key not in self._features:
            pieces = self.pieces(frames)
            out: list[np.ndarray] = []
            for s in range(0, len(pieces), batch_size):
                chunk = [p.audio for p in pieces[s : s + batch_size]]
                feats = processor.feature_extractor(chunk, sampling_rate=SAMPLE_RATE, return_tensors="np")
                # pieces fit ``frames``, so cutting the 30 s padding loses no speech
                out.extend(
                    np.ascontiguousarray(f[:, :frames], dtype=np.float32) for f in feats["input_features"]
                )
            self._features[key] = out
        return self._features[key]


def _token_budget(model: Any, seconds: float, max_new_tokens: int | None) -> int:
    limit = int(getattr(model.config, "max_target_positions", 448)) - 4  # room for the prompt tokens
    if max_new_tokens is not None:
        return max(1, min(max_new_tokens, limit))
    return max(1, min(limit, int(math.ceil(seconds * TOKENS_PER_SECOND)) + TOKEN_MARGIN))


def transcribe_bank(
    model: Any,
    processor: Any,
    bank: FeatureBank,
    *,
    batch_size: int = 8,
    num_beams: int = 1,
    max_new_tokens: int | None = None,
    language: str | None = None,
    progress: str | None = None,
) -> list[str]:
    """Transcripts of every clip in ``bank`` (pieces of long clips joined with a space).

    ``progress``: a label to show a progress bar on a terminal (tqdm; silent when not a TTY).
    """
    import torch
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    frames = model_frames(model)
    feats = bank.features(processor, frames)
    durs = bank.durations(frames)
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    tok = processor.tokenizer
    texts: list[str] = [""] * len(feats)
    gen_kwargs: dict[str, Any] = {"num_beams": num_beams, "do_sample": False}
    if language is not None and getattr(model.generation_config, "is_multilingual", False):
        gen_kwargs.update(language=language, task="transcribe")
    was_training = model.training
    model.eval()
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # per-batch generate() warnings about max_length/masks are noise here
    try:
        # sort by length so a batch's token budget fits all its members
        order = sorted(range(len(feats)), key=lambda i: durs[i])
        bar = tqdm(total=len(order), desc=progress, unit="clip", disable=None if progress else True)
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            x = torch.from_numpy(np.stack([feats[i] for i in idx])).to(device=device, dtype=dtype)
            budget = _token_budget(model, max(durs[i] for i in idx), max_new_tokens)
            with torch.inference_mode():
                out = model.generate(input_features=x, max_new_tokens=budget, **gen_kwargs)
            seqs = out.sequences if hasattr(out, "sequences") else out
            for i, t in zip(idx, tok.batch_decode(seqs, skip_special_tokens=True), strict=True):
                texts[i] = t.strip()
            bar.update(len(idx))
        bar.close()
    finally:
        hf_logging.set_verbosity(verbosity)
        model.train(was_training)
    joined: list[list[str]] = [[] for _ in range(bank.n_clips)]
    for piece, text in zip(bank.pieces(frames), texts, strict=True):
        if text:
            joined[piece.clip].append(text)
    return [" ".join(parts) for parts in joined]


def transcribe(
    model: Any,
    processor: Any,
    audios: list[np.ndarray],
    *,
    batch_size: int = 8,
    num_beams: int = 1,
    max_new_tokens: int | None = None,
    language: str | None = None,
) -> list[str]:
    """Transcribe 16 kHz mono float arrays with a loaded model; one string per clip."""
    if not audios:
        return []
    return transcribe_bank(
        model,
        processor,
        FeatureBank(audios),
        batch_size=batch_size,
        num_beams=num_beams,
        max_new_tokens=max_new_tokens,
        language=language,
    )
