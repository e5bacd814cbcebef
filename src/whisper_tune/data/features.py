"""Log-mel features, their on-disk cache, and the seq2seq collator.

Why: Whisper pads every clip to 30 s (80 x 3000 float32 = 960 kB per clip), so holding
features for thousands of clips in RAM is wasteful and recomputing them every run is
slow. The cache stores, per clip, only the frames before the constant padding tail (a
5 s clip keeps ~500 of 3000 frames) plus the fill value, keyed by sha256 of the audio
*bytes* and a hash of the feature settings: renaming a file keeps its entry, changing
``n_mels`` or the extractor does not reuse stale features. Reconstruction is exact: the
extractor clamps log-mel to ``max - 8`` and zero padding hits that floor, so the tail is
one constant value.

The collator pads labels with -100 (ignored by the loss), strips the decoder start
token once when every row begins with it (the model prepends it again when shifting
labels right), and can cut features to a shorter encoder context (``n_frames``) for the
GPU fast path — refusing, rather than silently truncating, a clip that does not fit.
A batch with a previous-text prompt (``<|startofprev|>``, long-recording windows) gets explicit
``decoder_input_ids`` and -100 labels on the prompt (``windows.prompt_batch``).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from whisper_tune.data.audio import AudioInfo
from whisper_tune.data.windows import prompt_batch

__all__ = [
    "FEATURE_VERSION",
    "FeatureCache",
    "WhisperCollator",
    "compact_features",
    "expand_features",
    "extract_features",
    "feature_settings_key",
    "file_sha256",
]

FEATURE_VERSION = "wt-logmel-1"
_IGNORED_SETTINGS = {"processor_class", "return_attention_mask", "padding_side"}


def feature_settings_key(feature_extractor: Any) -> str:
    """Short hash of everything that changes the features (n_mels, hop, n_fft, ...)."""
    d = {k: v for k, v in feature_extractor.to_dict().items() if k not in _IGNORED_SETTINGS}
    d = {k: (np.asarray(v).tolist() if isinstance(v, np.ndarray) else v) for k, v in d.items()}
    blob = json.dumps({"v": FEATURE_VERSION, **d}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def file_sha256(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def extract_features(audio: np.ndarray, feature_extractor: Any, sampling_rate: int = 16000) -> np.ndarray:
    """float32 [n_mels, nb_max_frames] log-mel of one mono clip.

    Raises ``ValueError`` for audio longer than the extractor's window instead of letting
    it be truncated silently, and for non-mono input (a 2-D array would be a batch).
    """
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"extract_features expects mono 1-D audio, got shape {x.shape} (down-mix first)")
    n_max = int(getattr(feature_extractor, "n_samples", 480000))
    if x.shape[0] > n_max:
        raise ValueError(
            f"audio of {x.shape[0] / sampling_rate:.1f} s exceeds the {n_max / sampling_rate:.0f} s window; "
            "split it (split_long_audio) instead of truncating"
        )
    out = feature_extractor(x, sampling_rate=sampling_rate, return_tensors="np")
    return np.asarray(out["input_features"][0], dtype=np.float32)


def compact_features(features: np.ndarray) -> tuple[np.ndarray, float]:
    """(frames up to the constant padding tail, fill value of the tail)."""
    fill = features.min()
    differs = np.flatnonzero((features != fill).any(axis=0))
    k = int(differs[-1]) + 1 if differs.size else 0
    return np.ascontiguousarray(features[:, :k]), float(fill)


def expand_features(head: np.ndarray, fill: float, total_frames: int) -> np.ndarray:
    out = np.full((head.shape[0], total_frames), np.float32(fill), dtype=np.float32)
    out[:, : head.shape[1]] = head
    return out


@dataclass
class CacheEntry:
    key: str
    info: AudioInfo
    has_features: bool
    content_frames: int


class FeatureCache:
    """On-disk cache ``<dir>/<settings-hash>/<aa>/<sha256>.{npy,json}``.

    Safe for several processes sharing a directory: files are written to a temporary
    name and renamed; the ``.json`` (written last) marks an entry complete.
    """

    def __init__(self, directory: str | os.PathLike[str], feature_extractor: Any) -> None:
        self.feature_extractor = feature_extractor
        self.settings = feature_settings_key(feature_extractor)
        self.root = Path(directory) / self.settings
        self.total_frames = int(getattr(feature_extractor, "nb_max_frames", 3000))
        self.hits = 0  # lookups answered with stored features
        self.computed = 0  # features extracted and stored by this process
        self._lock = threading.Lock()

    def _paths(self, key: str) -> tuple[Path, Path]:
        d = self.root / key[:2]
        return d / f"{key}.npy", d / f"{key}.json"

    def lookup(self, key: str) -> CacheEntry | None:
        npy, meta = self._paths(key)
        try:
            m = json.loads(meta.read_text())
            info = AudioInfo(**m["info"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        has = bool(m.get("has_features")) and npy.exists()
        if has:
            with self._lock:
                self.hits += 1
        return CacheEntry(key, info, has, int(m.get("content_frames", 0)))

    def load(self, key: str) -> np.ndarray | None:
        npy, meta = self._paths(key)
        try:
            m = json.loads(meta.read_text())
            head = np.load(npy)
        except (OSError, ValueError, KeyError):
            return None
        return expand_features(head, float(m["fill"]), self.total_frames)

    def put(self, key: str, info: AudioInfo, features: np.ndarray | None) -> CacheEntry:
        npy, meta = self._paths(key)
        npy.parent.mkdir(parents=True, exist_ok=True)
        m: dict[str, Any] = {"has_features": False}
        m["info"] = {
            "duration": info.duration,
            "orig_sr": info.orig_sr,
            "channels": info.channels,
            "rms_dbfs": info.rms_dbfs if np.isfinite(info.rms_dbfs) else -1e9,
            "clipped_fraction": info.clipped_fraction,
        }
        frames = 0
        if features is not None:
            head, fill = compact_features(features)
            frames = head.shape[1]
            tmp = npy.with_name(f".{npy.name}.{os.getpid()}.tmp")
            with open(tmp, "wb") as f:
                np.save(f, head)
            os.replace(tmp, npy)
            m.update(has_features=True, fill=fill, content_frames=frames)
            with self._lock:
                self.computed += 1
        tmpm = meta.with_name(f".{meta.name}.{os.getpid()}.tmp")
        tmpm.write_text(json.dumps(m))
        os.replace(tmpm, meta)
        return CacheEntry(key, info, features is not None, frames)

    def __getstate__(self) -> dict[str, Any]:
        st = self.__dict__.copy()
        st.pop("_lock", None)
        return st

    def __setstate__(self, st: dict[str, Any]) -> None:
        self.__dict__.update(st)
        self._lock = threading.Lock()


class WhisperCollator:
    """Batch dataset items into ``{"input_features": [B, n_mels, T], "labels": [B, L]}``.

    Labels are padded with -100; the decoder start token is removed once when every row
    starts with it. ``n_frames`` < 3000 cuts features for a shortened encoder context;
    an item whose ``content_frames`` exceed it raises instead of being truncated.
    """

    def __init__(self, processor: Any, decoder_start_token_id: int, n_frames: int = 3000) -> None:
        self.processor = processor
        self.decoder_start_token_id = int(decoder_start_token_id)
        self.n_frames = int(n_frames)

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        if not features:
            raise ValueError("WhisperCollator got an empty batch")
        arrays = []
        for f in features:
            x = f["input_features"]
            x = x.numpy() if hasattr(x, "numpy") else np.asarray(x, dtype=np.float32)
            if self.n_frames < x.shape[-1]:
                need = int(f.get("content_frames", 0) or 0)
                if need > self.n_frames:
                    raise ValueError(
                        f"item {f.get('id', '?')} has {need} frames of audio but n_frames={self.n_frames}; "
                        "filter clips by duration (prepare_dataset(max_duration_s=...)) instead of truncating"
                    )
                x = x[..., : self.n_frames]
            arrays.append(np.asarray(x, dtype=np.float32))
        input_features = torch.from_numpy(np.stack(arrays))
        rows = [list(f["labels"]) for f in features]
        tok = getattr(self.processor, "tokenizer", None)
        prev_id = tok.convert_tokens_to_ids("<|startofprev|>") if tok is not None else None
        if tok is not None and any(r and r[0] == prev_id for r in rows):  # prompts: not in the loss
            dec, labels = prompt_batch(rows, self.decoder_start_token_id, int(tok.pad_token_id))
            return {"input_features": input_features, "labels": labels, "decoder_input_ids": dec}
        if rows and all(r and r[0] == self.decoder_start_token_id for r in rows):
            rows = [r[1:] for r in rows]
        width = max(len(r) for r in rows) if rows else 0
        labels = torch.full((len(rows), width), -100, dtype=torch.long)
        for i, r in enumerate(rows):
            if r:
                labels[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        return {"input_features": input_features, "labels": labels}
