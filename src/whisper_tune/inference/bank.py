"""Audio -> windows that fit the encoder -> log-mel features, computed once and shared.

Why: Whisper's encoder sees one fixed window (30 s, fewer frames for a model tuned with a
shortened encoder context, see ``train.fastpath``) and its feature extractor silently
truncates anything longer, so every clip is cut on silence into windows first
(``whisper_tune.data.split_long_audio``; one splitter for evaluation and serving).

Evaluation runs the same clips through two models (base and tuned), and log-mel features
are a real share of CPU time, so a caching ``FeatureBank`` computes each window's features
once per (feature extractor, frames, device) and both models reuse them. The server's
banks do not cache (``cache=False``): features of one batch of windows at a time, so an
hour-long upload does not hold 120 windows of features in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from whisper_tune.data.audio import SAMPLE_RATE, split_long_audio

__all__ = ["FULL_FRAMES", "FRAMES_PER_SECOND", "FeatureBank", "Piece", "SAMPLE_RATE", "model_frames"]

FULL_FRAMES = 3000  # 30 s of 10 ms mel frames: what Whisper pads every window to
FRAMES_PER_SECOND = 100
FEATURE_CHUNK = 32  # windows per feature-extractor call when a caching bank fills itself


def model_frames(model: Any) -> int:
    """Mel frames the model's encoder takes: 3000 (30 s), fewer for a shortened encoder context.

    Models fine-tuned with ``train.fastpath.shorten_encoder_context`` store the short
    context as ``config.max_source_positions`` (frames = 2 x positions); transformers
    rejects features of any other length.
    """
    positions = getattr(getattr(model, "config", None), "max_source_positions", None)
    return FULL_FRAMES if not isinstance(positions, int) else min(FULL_FRAMES, 2 * positions)


@dataclass
class Piece:
    """One window of one clip."""

    clip: int  # index of the clip it belongs to
    audio: np.ndarray
    start: float = 0.0  # seconds from the start of the clip

    @property
    def seconds(self) -> float:
        return len(self.audio) / SAMPLE_RATE


def _fe_key(fe: Any) -> tuple[Any, ...]:
    return (
        getattr(fe, "feature_size", None),
        getattr(fe, "sampling_rate", None),
        getattr(fe, "n_fft", None),
        getattr(fe, "hop_length", None),
        getattr(fe, "n_samples", None),
    )


class FeatureBank:
    """Clips (16 kHz mono float32) split once per window length; features once per extractor.

    Memory of a caching bank: 80 x 3000 float32 = 0.96 MB per window at full context.
    """

    def __init__(
        self,
        audios: Sequence[np.ndarray],
        *,
        cache: bool = True,
        levels: Sequence[np.ndarray | None] | None = None,
    ) -> None:
        self.n_clips = len(audios)
        self.cache = cache
        # per clip: its file's per-channel power (data.channel_levels) for speech_times, or None
        self.levels: list[np.ndarray | None] = list(levels) if levels is not None else [None] * len(audios)
        if len(self.levels) != self.n_clips:
            raise ValueError(f"{self.n_clips} clips but {len(self.levels)} channel levels")
        self.audios: list[np.ndarray] = []
        for i, a in enumerate(audios):
            arr = np.asarray(a, dtype=np.float32)
            if arr.ndim != 1:
                raise ValueError(
                    f"audio {i}: expected a 1-D mono array of 16 kHz samples, got shape {arr.shape}"
                )
            self.audios.append(arr)
        self._pieces: dict[tuple[int, bool], list[Piece]] = {}
        self._features: dict[tuple[Any, ...], list[np.ndarray]] = {}

    def pieces(self, frames: int = FULL_FRAMES, *, vad: bool = False) -> list[Piece]:
        """Windows that fit ``frames`` mel frames (10 ms each), in clip order; with ``vad``, only
        the speech Silero VAD finds (``inference.vad``: a clip without speech has no window)."""
        key = (frames, vad)
        if key not in self._pieces:
            max_s = frames / FRAMES_PER_SECOND
            if vad:
                from .vad import speech_windows

                cuts = [speech_windows(a, max_s) for a in self.audios]
            else:
                cuts = [split_long_audio(a, sr=SAMPLE_RATE, max_s=max_s) for a in self.audios]
            self._pieces[key] = [
                Piece(i, np.asarray(p, dtype=np.float32), float(start))
                for i, windows in enumerate(cuts)
                for start, p in windows
            ]
        return self._pieces[key]

    def durations(self, frames: int = FULL_FRAMES) -> list[float]:
        return [p.seconds for p in self.pieces(frames)]

    def _compute(self, fe: Any, pieces: list[Piece], frames: int, device: str) -> list[np.ndarray]:
        kwargs: dict[str, Any] = {"device": device} if device != "cpu" else {}
        feats = fe([p.audio for p in pieces], sampling_rate=SAMPLE_RATE, return_tensors="np", **kwargs)
        # pieces fit ``frames``, so cutting the 30 s padding loses no speech
        return [np.ascontiguousarray(f[:, :frames], dtype=np.float32) for f in feats["input_features"]]

    def features(
        self,
        extractor: Any,
        frames: int = FULL_FRAMES,
        idx: Sequence[int] | None = None,
        *,
        device: str = "cpu",
        vad: bool = False,
    ) -> list[np.ndarray]:
        """Features ``[n_mels, frames]`` of the windows ``idx`` (default: all), in that order.

        ``extractor``: a ``WhisperFeatureExtractor`` or a processor holding one. A caching
        bank computes every window's features on first use (in chunks of 32) and keeps them;
        a non-caching one computes just ``idx``, in one call.
        """
        fe = getattr(extractor, "feature_extractor", extractor)
        pieces = self.pieces(frames, vad=vad)
        want = list(range(len(pieces))) if idx is None else list(idx)
        if not self.cache:
            return self._compute(fe, [pieces[i] for i in want], frames, device) if want else []
        key = (*_fe_key(fe), frames, device, vad)
        if key not in self._features:
            out: list[np.ndarray] = []
            for s in range(0, len(pieces), FEATURE_CHUNK):
                out.extend(self._compute(fe, pieces[s : s + FEATURE_CHUNK], frames, device))
            self._features[key] = out
        cached = self._features[key]
        return [cached[i] for i in want]
