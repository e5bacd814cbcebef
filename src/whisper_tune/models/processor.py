"""``WhisperProcessor`` construction for production code: from a model dir, or from a tokenizer file.

Why: a processor (tokenizer + log-mel feature extractor) is needed wherever audio or text
meets a model: serving a CTranslate2 dir, counting label tokens in ``data check``, converting
a CTranslate2 model. Building it used to go through ``random_init`` (test and benchmark code).
One module owns the two ways instead:

- an HF dir: ``WhisperProcessor.from_pretrained`` (its saved tokenizer and feature extractor);
- a CTranslate2 dir (or any ``tokenizer.json``): the faster-whisper ``tokenizer.json`` of ``.en``
  models stops at ``<|notimestamps|>`` while the model has 1501 more rows (timestamp tokens), so
  the tokenizer is completed from the model's ``vocabulary.txt``/``.json`` when one sits next to
  it, exactly as the CTranslate2 -> HF conversion does (``convert.build_processor``). The mel
  bins are the model's own: the input channels of ``encoder/conv1/weight`` in ``model.bin``,
  read from its header (what the conversion and CTranslate2 itself use).
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from whisper_tune.errors import ModelNotFoundError
from whisper_tune.models.ct2_format import Ct2FormatError, read_ct2_shapes
from whisper_tune.models.registry import get_bundled

__all__ = ["build_processor_from_tokenizer", "bundled_tokenizer_file", "ct2_n_mels", "load_processor"]

log = logging.getLogger(__name__)

_CONV1 = "encoder/conv1/weight"  # shape (d_model, n_mels, kernel)


def bundled_tokenizer_file() -> Path:
    """The HF fast-tokenizer file shipped with the bundled ``tiny.en`` weight package."""
    tok = get_bundled("tiny.en").files_path() / "tokenizer.json"  # raises with the pip command
    if not tok.is_file():
        raise ModelNotFoundError(f"{tok}: the bundled tiny.en package has no tokenizer.json (reinstall it)")
    return tok


def build_processor_from_tokenizer(tokenizer_file: str | Path, n_mels: int = 80) -> Any:
    """A ``WhisperProcessor`` from a ``tokenizer.json``, completed from the vocabulary next to it.

    With a ``vocabulary.txt`` / ``vocabulary.json`` beside the file (a CTranslate2 dir) the
    tokenizer covers exactly the model's rows, timestamp tokens included, so ids and
    ``len(tokenizer)`` match the model. ``n_mels`` sizes the feature extractor.
    """
    from whisper_tune.models.convert import build_processor, read_ct2_vocabulary

    tok_file = Path(tokenizer_file)
    if not tok_file.is_file():
        raise ModelNotFoundError(f"{tok_file}: no such tokenizer file")
    vocab_dir = tok_file.parent
    has_vocab = (vocab_dir / "vocabulary.txt").is_file() or (vocab_dir / "vocabulary.json").is_file()
    vocab = read_ct2_vocabulary(vocab_dir) if has_vocab else None
    with tempfile.TemporaryDirectory(prefix="wt-tok-") as tmp:
        return build_processor(tok_file, vocab, n_mels, Path(tmp))


def ct2_n_mels(ct2_dir: str | Path) -> int:
    """The mel bins a CTranslate2 model expects, from its ``model.bin`` header.

    A ``preprocessor_config.json`` that says otherwise (copied from elsewhere) is ignored with a
    warning: the model's first convolution decides what features it accepts.
    """
    d = Path(ct2_dir)
    shape = read_ct2_shapes(d / "model.bin").get(_CONV1)
    if shape is None or len(shape) != 3:
        raise Ct2FormatError(f"{d / 'model.bin'}: no 3-D '{_CONV1}' (not a Whisper model?)")
    n_mels = int(shape[1])
    pre = d / "preprocessor_config.json"
    if pre.is_file():
        try:
            stated = json.loads(pre.read_text(encoding="utf-8")).get("feature_size")
        except (OSError, ValueError, AttributeError):
            stated = None
        if stated is not None and stated != n_mels:
            log.warning("%s: feature_size %s ignored, the model takes %d mel bins", pre, stated, n_mels)
    return n_mels


def load_processor(model_dir: str | Path) -> Any:
    """The ``WhisperProcessor`` of an HF dir or a CTranslate2 dir (or, online, of a hub id).

    A hub id (``org/name``, what ``ensure_hf_dir`` returns for online users) goes to
    ``from_pretrained``; anything else must be a local directory. Errors name the directory.
    """
    from transformers import WhisperProcessor

    p = Path(model_dir).expanduser()
    if p.is_dir() and (p / "model.bin").is_file():
        tok = p / "tokenizer.json"
        if not tok.is_file():
            raise ModelNotFoundError(f"{p}: CTranslate2 model dir has no tokenizer.json")
        return build_processor_from_tokenizer(tok, n_mels=ct2_n_mels(p))
    if p.is_dir() and not (p / "preprocessor_config.json").is_file():
        raise ModelNotFoundError(
            f"{p}: neither a Transformers Whisper dir (preprocessor_config.json + tokenizer files) "
            "nor a CTranslate2 dir (model.bin + tokenizer.json)"
        )
    if not p.is_dir() and (p.exists() or str(model_dir).startswith((".", "/", "~"))):
        raise ModelNotFoundError(f"{model_dir}: no such model directory")
    try:
        return WhisperProcessor.from_pretrained(str(p) if p.is_dir() else str(model_dir))
    except (OSError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelNotFoundError(f"{model_dir}: cannot load its processor ({first})") from None
