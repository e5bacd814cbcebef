"""The other areas' contract functions the train area calls, imported in one place.

Why: one place to see (and test) exactly which cross-area APIs training depends on.
"""

from __future__ import annotations

from typing import Any

from whisper_tune.data import WhisperCollator, prepare_dataset
from whisper_tune.models import ensure_hf_dir, load_model
from whisper_tune.train.metrics_hook import make_compute_metrics

__all__ = ["WhisperCollator", "load_model", "load_processor", "make_compute_metrics", "prepare_dataset"]


def load_processor(spec: str) -> Any:
    """Only the processor of a model spec (no weights loaded)."""
    from transformers import WhisperProcessor

    return WhisperProcessor.from_pretrained(ensure_hf_dir(spec))
