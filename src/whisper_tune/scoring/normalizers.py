"""Text normalizers used before scoring.

Why: WER on raw text mostly measures casing, punctuation and spelling conventions
("$5" vs "five dollars", "colour" vs "color", "don't" vs "do not"), not what the model
heard. OpenAI's Whisper paper scores with its ``EnglishTextNormalizer`` (numbers to digits,
currency, contractions, British->American spelling, fillers dropped); the seed's WER and
every public Whisper leaderboard use it, so we do too. Other languages get the
``BasicTextNormalizer`` (lower-case, symbols/brackets removed). ``none`` keeps the text as
written (only whitespace collapsed): the *orthographic* WER, which is what a user reading a
transcript sees.

The normalizer classes come from ``transformers.models.whisper.english_normalizer`` (a
port of openai/whisper's ``whisper/normalizers``). The spelling map they need
(``english.json`` in openai/whisper, 1,739 British->American pairs) is not shipped by
transformers (it downloads ``normalizer.json`` from the hub with a tokenizer), so it is
shipped here as package data: ``english_spelling.json``, copied unchanged from OpenAI's
whisper repository (MIT licence, Copyright (c) 2022 OpenAI; see
``english_spelling.NOTICE.txt``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import cache, lru_cache
from importlib import resources
from typing import Literal

__all__ = ["NORMALIZER_KINDS", "NormalizerKind", "english_spelling_mapping", "get_normalizer"]

NormalizerKind = Literal["whisper_en", "basic", "none"]
NORMALIZER_KINDS: tuple[str, ...] = ("whisper_en", "basic", "none")

_WS = re.compile(r"\s+")


@lru_cache(maxsize=1)
def english_spelling_mapping() -> dict[str, str]:
    """OpenAI's British->American spelling map (``english.json``), bundled as package data."""
    text = resources.files("whisper_tune.scoring").joinpath("english_spelling.json").read_text("utf-8")
    mapping = json.loads(text)
    if not isinstance(mapping, dict) or not mapping:
        raise RuntimeError("whisper_tune/scoring/english_spelling.json is damaged (expected a JSON object)")
    return {str(k): str(v) for k, v in mapping.items()}


def _orthographic(text: str) -> str:
    """Text as written; only runs of whitespace collapse (the orthographic WER's view)."""
    return _WS.sub(" ", text).strip()


@cache
def get_normalizer(kind: str = "whisper_en") -> Callable[[str], str]:
    """Return the text normalizer ``kind``: ``whisper_en`` | ``basic`` | ``none``.

    ``whisper_en``: OpenAI Whisper's EnglishTextNormalizer (with the spelling map).
    ``basic``: Whisper's BasicTextNormalizer (any language: lower-case, symbols removed).
    ``none``: orthographic (whitespace collapsed only).
    """
    from transformers.models.whisper.english_normalizer import BasicTextNormalizer, EnglishTextNormalizer

    if kind == "whisper_en":
        english = EnglishTextNormalizer(english_spelling_mapping())

        def _english(text: str) -> str:
            return _orthographic(english(text))

        return _english
    if kind == "basic":
        basic = BasicTextNormalizer()

        def _basic(text: str) -> str:
            return _orthographic(basic(text))

        return _basic
    if kind == "none":
        return _orthographic
    raise ValueError(f"unknown normalizer {kind!r}: choose one of {', '.join(NORMALIZER_KINDS)}")
