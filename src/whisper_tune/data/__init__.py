"""Data for whisper-tune: manifests, audio decoding and checks, features, the data report.

Why lazy: ``whisper_tune.data.synth`` worker processes and ``whisper-tune --help`` import
this package; they must not pay for torch/transformers. Names are imported on first use
(PEP 562), and ``TYPE_CHECKING`` imports keep type checkers and IDEs exact.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "AudioCheck",
    "AudioError",
    "DataReport",
    "FeatureCache",
    "LoadResult",
    "LongFormOptions",
    "PreparedData",
    "Sample",
    "Skip",
    "WhisperCollator",
    "WhisperDataset",
    "check_data",
    "decode_audio",
    "extract_features",
    "load_audio",
    "load_manifest",
    "load_manifests",
    "prepare_dataset",
    "read_window",
    "split_long_audio",
]

_WHERE: dict[str, str] = {
    "Sample": "manifest",
    "Skip": "manifest",
    "LoadResult": "manifest",
    "load_manifest": "manifest",
    "load_manifests": "manifest",
    "AudioCheck": "audio",
    "AudioError": "audio",
    "decode_audio": "audio",
    "load_audio": "audio",
    "split_long_audio": "audio",
    "DataReport": "checks",
    "FeatureCache": "features",
    "WhisperCollator": "features",
    "extract_features": "features",
    "PreparedData": "prepare",
    "WhisperDataset": "prepare",
    "prepare_dataset": "prepare",
    "check_data": "prepare",
    "LongFormOptions": "longform",
    "read_window": "longform",
}

if TYPE_CHECKING:
    from whisper_tune.data.audio import AudioCheck, AudioError, decode_audio, load_audio, split_long_audio
    from whisper_tune.data.checks import DataReport
    from whisper_tune.data.features import FeatureCache, WhisperCollator, extract_features
    from whisper_tune.data.longform import LongFormOptions, read_window
    from whisper_tune.data.manifest import LoadResult, Sample, Skip, load_manifest, load_manifests
    from whisper_tune.data.prepare import PreparedData, WhisperDataset, check_data, prepare_dataset


def __getattr__(name: str) -> Any:
    mod = _WHERE.get(name)
    if mod is None:
        raise AttributeError(f"module 'whisper_tune.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"whisper_tune.data.{mod}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
