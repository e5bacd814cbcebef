"""Transformers Whisper -> CTranslate2 (faster-whisper) directory.

Why: tuned models are served fastest by CTranslate2. We use the ``ctranslate2`` package's
own ``TransformersConverter`` (it owns its format) and only add what users trip over:
resolving names/CT2 dirs to an HF dir first, copying the tokenizer and feature-extractor
files faster-whisper reads, validating the quantization name, and writing atomically so a
failed export never leaves a half-filled output directory.
"""

from __future__ import annotations

import logging
from pathlib import Path

from whisper_tune.errors import UserError
from whisper_tune.models.cache import atomic_dir
from whisper_tune.models.load import ensure_hf_dir

__all__ = ["QUANTIZATIONS", "export_ct2"]

log = logging.getLogger(__name__)

QUANTIZATIONS = (
    "int8",
    "int8_float32",
    "int8_float16",
    "int8_bfloat16",
    "int16",
    "float16",
    "bfloat16",
    "float32",
)
_COPY = ("tokenizer.json", "preprocessor_config.json")


def export_ct2(
    hf_dir: str | Path, out_dir: str | Path, quantization: str | None = None, *, force: bool = False
) -> Path:
    """Convert an HF Whisper (dir, bundled name or CT2 dir) into a CTranslate2 dir at ``out_dir``."""
    if quantization is not None and quantization not in QUANTIZATIONS:
        raise UserError(f"unknown quantization '{quantization}'; use one of {', '.join(QUANTIZATIONS)}")
    resolved = ensure_hf_dir(str(hf_dir))
    src = Path(resolved)
    local = src.exists()
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not force:
        raise UserError(f"{out}: output directory exists and is not empty (use --force to replace it)")
    if local and not (src / "tokenizer.json").is_file():
        raise UserError(f"{src}: no tokenizer.json; faster-whisper needs it next to model.bin")
    import ctranslate2.converters

    copy = [f for f in _COPY if (src / f).is_file()] if local else list(_COPY)
    with atomic_dir(out) as tmp:
        converter = ctranslate2.converters.TransformersConverter(resolved, copy_files=copy)
        try:
            converter.convert(str(tmp), quantization=quantization, force=True)
        except (ValueError, NotImplementedError, OSError) as exc:
            if local:
                raise UserError(f"{resolved}: CTranslate2 conversion failed: {exc}") from None
            from whisper_tune.models.registry import known_names

            raise UserError(
                f"{resolved}: CTranslate2 conversion failed (a hub id: is the Hugging Face hub reachable?): "
                f"{str(exc).splitlines()[0]}; bundled names that work offline: {', '.join(known_names())}"
            ) from None
    log.info("exported %s -> %s (quantization=%s)", resolved, out, quantization or "as stored")
    return out
