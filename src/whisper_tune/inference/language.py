"""Which languages and tasks a model can decode, checked before any audio is decoded.

Why separate: the server's ingress checks a request's ``language`` without loading a model
(it only knows whether the model is multilingual), and both backends apply the same rule.
"""

from __future__ import annotations

from whisper_tune.errors import UserError

__all__ = ["UnsupportedLanguageError", "check_task", "language_name", "normalize_language"]


class UnsupportedLanguageError(UserError, ValueError):
    """The requested language (or task) is not one the model can decode."""


def normalize_language(language: str | None, *, multilingual: bool, model_name: str) -> str | None:
    """``"English"``/``"en"``/``""`` -> ``"en"``/``"en"``/``None``; UnsupportedLanguageError when the
    model cannot transcribe it (any non-English language on an ``.en`` model, an unknown name)."""
    lang = (language or "").strip().lower() or None
    if lang is None:
        return None
    if not multilingual:
        if lang not in ("en", "english"):
            raise UnsupportedLanguageError(
                f"model {model_name} is English-only; language={language!r} is not supported"
            )
        return "en"
    from transformers.models.whisper.tokenization_whisper import LANGUAGES, TO_LANGUAGE_CODE

    code = TO_LANGUAGE_CODE.get(lang, lang)
    if code not in LANGUAGES:
        raise UnsupportedLanguageError(f"unknown language {language!r} (use an ISO 639-1 code such as 'en')")
    return code


def check_task(task: str, *, multilingual: bool, model_name: str) -> None:
    """English-only models only transcribe; ``translate`` (to English) needs a multilingual one."""
    if task != "transcribe" and not multilingual:
        raise UnsupportedLanguageError(f"model {model_name} is English-only; task={task!r} is not supported")


def language_name(code: str | None) -> str:
    """``"de"`` -> ``"german"`` (what OpenAI's API reports); ``None`` -> ``"english"``."""
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    return str(LANGUAGES.get(code or "en", code or "english"))
