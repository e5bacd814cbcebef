"""Entry points for callers that hold audio arrays: a backend, or a model already in memory.

Why: evaluation (``evaluate``/``compare``), benchmarks and notebooks transcribe lists of
clips; they go through the very ``Backend.transcribe_bank`` loop the server runs, so their
numbers describe what the server returns. ``transcribe``/``transcribe_bank`` keep the older
``(model, processor, audios)`` form for a Transformers model that is already loaded (for
example mid-training), wrapped in an ``HFBackend`` for the call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .backend import Backend
from .bank import FeatureBank
from .hf import HFBackend
from .options import BackendOptions, DecodeOptions, InvalidOptionError
from .types import Transcript

__all__ = ["transcribe", "transcribe_audios", "transcribe_bank"]


def transcribe_audios(
    backend: Backend,
    audios: Sequence[np.ndarray] | FeatureBank,
    options: DecodeOptions | None = None,
    *,
    progress: str | None = None,
) -> list[Transcript]:
    """One Transcript per clip (16 kHz mono float32 arrays, or a ``FeatureBank`` of them).

    Pass the same ``FeatureBank`` to several backends to compute its features once.
    ``options``: the backend's defaults (``BackendOptions.decode``) when omitted.
    """
    bank = audios if isinstance(audios, FeatureBank) else FeatureBank(audios)
    return backend.transcribe_bank(bank, options, progress=progress)


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
    """Transcripts of every clip in ``bank`` with a loaded Transformers Whisper (and processor).

    ``language`` is passed to multilingual models only (English-only ones ignore it). The
    model's train/eval mode is restored afterwards.
    """
    if batch_size < 1:
        raise InvalidOptionError(f"batch_size must be >= 1, got {batch_size}")
    was_training = bool(getattr(model, "training", False))
    try:
        backend = HFBackend(model, processor, "model", BackendOptions(batch_size=batch_size))
        options = DecodeOptions(
            language=language if backend.multilingual else None,
            beams=num_beams,
            max_new_tokens=max_new_tokens,
        )
        return [t.text for t in backend.transcribe_bank(bank, options, progress=progress)]
    finally:
        model.train(was_training)


def transcribe(
    model: Any,
    processor: Any,
    audios: Sequence[np.ndarray],
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
