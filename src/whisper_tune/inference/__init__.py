"""Inference: the one way audio becomes text, for evaluation and for serving.

Why a package of its own: evaluation used to decode with its own loop (another token cap,
another splitter, another device rule) than the server, so a reported WER was not measured
on what the server returns. Now ``evaluate`` and ``serve`` both load a ``Backend``
(Transformers ``hf`` or CTranslate2 ``ct2``) with ``load_backend``, pass ``DecodeOptions``,
and run the same decode loop (``Backend.transcribe_bank``): same windows
(``whisper_tune.data.split_long_audio``), same token cap (``token_cap``), same device and
precision rule (``resolve_device``/``resolve_precision``), and, when asked for
(``DecodeOptions.gate``: the server does, evaluation does not), the same energy gate that
keeps silence from the model (``SpeechGate``). Both backends report OpenAI's per-window
statistics and fall back to higher temperatures by OpenAI's rule (``fallback``), give word
timestamps (``DecodeOptions.word_timestamps``) and can cut windows on Silero VAD speech
(``DecodeOptions.vad``); the CTranslate2 backend loads through faster-whisper. Audio files are
decoded by ``whisper_tune.data.audio.decode_audio`` (path, bytes or file).

Importing this package is light (numpy); torch, Transformers, CTranslate2 and faster-whisper
load when a backend is built.
"""

from __future__ import annotations

from .backend import Backend, DeadlineExceeded
from .bank import FULL_FRAMES, FeatureBank, Piece, model_frames
from .ct2 import CT2Backend
from .device import resolve_device, resolve_precision
from .fallback import Decoded
from .gate import SpeechGate
from .hf import HFBackend
from .language import UnsupportedLanguageError, normalize_language
from .loader import load_backend, resolve_model_dir
from .options import (
    MAX_NEW_TOKENS,
    MAX_TARGET_POSITIONS,
    PROMPT_MAX_TOKENS,
    TEMPERATURE_LADDER,
    BackendOptions,
    DecodeOptions,
    InvalidOptionError,
    temperature_ladder,
    token_cap,
)
from .segments import tokens_to_segments
from .transcribe import transcribe, transcribe_audios, transcribe_bank
from .types import Segment, Transcript, Word

__all__ = [
    "FULL_FRAMES",
    "MAX_NEW_TOKENS",
    "MAX_TARGET_POSITIONS",
    "PROMPT_MAX_TOKENS",
    "TEMPERATURE_LADDER",
    "Backend",
    "BackendOptions",
    "CT2Backend",
    "DeadlineExceeded",
    "DecodeOptions",
    "Decoded",
    "FeatureBank",
    "HFBackend",
    "InvalidOptionError",
    "Piece",
    "Segment",
    "SpeechGate",
    "Transcript",
    "UnsupportedLanguageError",
    "Word",
    "load_backend",
    "model_frames",
    "normalize_language",
    "resolve_device",
    "resolve_model_dir",
    "resolve_precision",
    "temperature_ladder",
    "token_cap",
    "tokens_to_segments",
    "transcribe",
    "transcribe_audios",
    "transcribe_bank",
]
