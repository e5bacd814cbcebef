"""Windows cut on speech found by Silero VAD (``DecodeOptions.vad``), for both backends.

Why: cutting on energy minima (``whisper_tune.data.split_long_audio``) decodes every second of
a long call, silences and hold music included, and Whisper writes text for those. Silero VAD
(the ONNX model faster-whisper ships, run with onnxruntime, CPU only) finds the speech; the
speech stretches of a file are grouped into windows of at most the encoder's length (stretches
closer than ``MAX_GAP_S`` share a window), each window a *contiguous* stretch of the original
audio from its first speech sample to its last, so segment and word times need no remapping
(a window's start is its offset in the file), and audio between windows never reaches the model. Speech parameters are faster-whisper's
batched defaults (threshold 0.5, 160 ms of silence ends a stretch, 400 ms padding).
"""

from __future__ import annotations

import numpy as np

from whisper_tune.data.audio import SAMPLE_RATE

__all__ = ["MAX_GAP_S", "speech_windows"]

MAX_GAP_S = (
    2.0  # a pause up to this long stays inside a window (Whisper handles pauses; 20 s of hold music not)
)


def speech_windows(audio: np.ndarray, max_s: float, sr: int = SAMPLE_RATE) -> list[tuple[float, np.ndarray]]:
    """``(start_s, samples)`` windows of at most ``max_s`` covering the speech of ``audio``; [] for none."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    x = np.asarray(audio, dtype=np.float32).reshape(-1)
    if x.size == 0:
        return []
    spans = get_speech_timestamps(x, VadOptions(max_speech_duration_s=max_s, min_silence_duration_ms=160), sr)
    limit = int(max_s * sr)
    windows: list[tuple[int, int]] = []
    for span in spans:
        s, e = int(span["start"]), min(int(span["end"]), x.size)
        while e - s > limit:  # VAD keeps stretches under max_s; guard its rounding anyway
            windows.append((s, s + limit))
            s += limit
        if windows and e - windows[-1][0] <= limit and s - windows[-1][1] <= MAX_GAP_S * sr:
            windows[-1] = (windows[-1][0], e)  # extend the open window over the gap
        else:
            windows.append((s, e))
    return [(s / sr, x[s:e]) for s, e in windows if e > s]
