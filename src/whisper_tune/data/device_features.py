"""Log-mel features computed in batches on a device (the GPU when a training job has one).

Why: the launcher extracts every clip's features into the run's cache before any worker starts.
On CPU that is an STFT of Whisper's 30 s padded window per clip (~60 ms each on one core): on
one H200 machine with 16 cores the 8-process scan of 5,500 short clips took 113 s of a 215 s
``whisper-tune train``, more than training itself. ``WhisperFeatureExtractor`` has a torch path
that takes ``device=`` and a batch, so here the clips are decoded and hashed by threads (the
audio libraries and hashing release the GIL) and their log-mel is computed ``batch`` at a time
on the device; the features are the extractor's own (same padding, same per-clip clamp to
``max - 8``), within float32 rounding of the CPU path. Memory stays bounded: ``chunk`` clips are
decoded at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

__all__ = ["extract_batch", "launcher_feature_device", "scan_batched"]


def launcher_feature_device(use_gpu: bool | None) -> str | None:
    """``"cuda"`` when the job trains on GPUs (``scaling.use_gpu``; None: if there are any) and this
    process sees one, else None (log-mel on CPU processes)."""
    if use_gpu is False:
        return None
    import torch

    return "cuda" if torch.cuda.is_available() else None


def extract_batch(
    audios: Sequence[np.ndarray], feature_extractor: Any, device: str, sampling_rate: int = 16000
) -> list[np.ndarray]:
    """float32 ``[n_mels, nb_max_frames]`` log-mel of each mono clip, computed as one batch on ``device``.

    Same checks as :func:`whisper_tune.data.features.extract_features`: mono 1-D input, no longer
    than the extractor's window (never truncated silently).
    """
    n_max = int(getattr(feature_extractor, "n_samples", 480000))
    clips = []
    for x in audios:
        a = np.asarray(x, dtype=np.float32)
        if a.ndim != 1:
            raise ValueError(f"extract_batch expects mono 1-D audio, got shape {a.shape} (down-mix first)")
        if a.shape[0] > n_max:
            raise ValueError(
                f"audio of {a.shape[0] / sampling_rate:.1f} s exceeds the {n_max / sampling_rate:.0f} s window; "
                "split it (split_long_audio) instead of truncating"
            )
        clips.append(a)
    if not clips:
        return []
    torch_path = getattr(feature_extractor, "_torch_extract_fbank_features", None)
    if torch_path is not None and not getattr(feature_extractor, "do_normalize", False):
        # the extractor's own torch log-mel on a zero-padded batch: its public __call__ pads and
        # converts every clip in numpy first (~2.5 ms a clip on one CPU thread, the GPU path's
        # bottleneck); zero padding to n_samples is what that padding does
        wave = np.zeros((len(clips), n_max), dtype=np.float32)
        for i, a in enumerate(clips):
            wave[i, : a.shape[0]] = a
        feats = np.asarray(torch_path(wave, device), dtype=np.float32)
    else:
        out = feature_extractor(clips, sampling_rate=sampling_rate, return_tensors="np", device=device)
        feats = np.asarray(out["input_features"], dtype=np.float32)
    return [np.ascontiguousarray(f) for f in feats]


def scan_batched(
    paths: Sequence[str],
    scan_one: Callable[[str], Any],
    finish: Callable[[Any, np.ndarray], None],
    feature_extractor: Any,
    device: str,
    *,
    threads: int = 8,
    batch: int = 64,
    chunk: int = 512,
) -> list[Any]:
    """Scan ``paths`` with ``scan_one`` in threads; features for the results that carry ``.audio``
    are computed ``batch`` at a time on ``device`` and handed to ``finish(result, features)``
    (which stores them and drops the audio). Results come back in the order of ``paths``."""
    results: list[Any] = []
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        for start in range(0, len(paths), chunk):
            part = list(pool.map(scan_one, paths[start : start + chunk]))
            need = [r for r in part if getattr(r, "audio", None) is not None]
            for b in range(0, len(need), batch):
                group = need[b : b + batch]
                feats = extract_batch([r.audio for r in group], feature_extractor, device)
                list(pool.map(finish, group, feats))
            results.extend(part)
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()  # the training workers get the card's memory back
    return results
