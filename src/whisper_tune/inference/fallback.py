"""A window's decoding statistics and OpenAI's temperature-fallback rule, for both backends.

Why: clients filter hallucinations with ``verbose_json``'s ``avg_logprob``,
``compression_ratio`` and ``no_speech_prob`` and rely on the temperature fallback that
OpenAI's ``transcribe`` (and faster-whisper) apply; both backends report the same numbers
(``Decoded``) and the decode loop (``Backend._run_windows``) applies one rule to them
(``needs_fallback``, ``pick``), so evaluation and serving fall back identically. Pure
functions (no model), unit-tested in milliseconds.

The rule (OpenAI whisper ``decode_with_fallback``): a window is decoded again at the next
temperature when its text's gzip compression ratio is above ``compression_ratio_threshold``
(2.4: a repetition loop) or its mean log-probability is below ``log_prob_threshold`` (-1.0),
unless its no-speech probability is above ``no_speech_threshold`` (0.6) with that low
log-probability (then it is silence and a retry would only invent words). When every
temperature fails, the likeliest result whose compression ratio passed is kept (else the
likeliest of all).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Decoded", "compression_ratio", "is_silent", "needs_fallback", "pick"]


def compression_ratio(text: str) -> float:
    """UTF-8 length over zlib-compressed length (OpenAI's and faster-whisper's measure); 0 for ''."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


@dataclass
class Decoded:
    """One window's generated ids (no prompt, no EOT) and their statistics."""

    tokens: list[int]
    avg_logprob: float = 0.0  # sum of the chosen tokens' log-probabilities (EOT included) / (len + 1)
    no_speech_prob: float = 0.0  # P(<|nospeech|>) at the first decoder step
    temperature: float = 0.0
    compression_ratio: float = 0.0  # of the window's text; set by the decode loop
    words: list[dict[str, Any]] = field(
        default_factory=list
    )  # alignment: word, tokens, start, end, probability


def needs_fallback(d: Decoded, options: Any) -> bool:
    """Whether ``d`` fails ``options``' thresholds (a ``DecodeOptions``) and is not silence."""
    lp, cr = options.log_prob_threshold, options.compression_ratio_threshold
    fails = (cr is not None and d.compression_ratio > cr) or (lp is not None and d.avg_logprob < lp)
    return fails and not is_silent(d, options)


def is_silent(d: Decoded, options: Any) -> bool:
    """OpenAI's no-speech verdict: no-speech probability above its threshold and a low log-probability."""
    lp, ns = options.log_prob_threshold, options.no_speech_threshold
    return ns is not None and lp is not None and d.no_speech_prob > ns and d.avg_logprob < lp


def pick(tried: Sequence[Decoded], options: Any) -> Decoded:
    """The result kept when every temperature failed: the likeliest with a passing compression ratio."""
    cr = options.compression_ratio_threshold
    passing = [d for d in tried if cr is None or d.compression_ratio <= cr]
    best = max(passing or list(tried), key=lambda d: d.avg_logprob)
    best.temperature = tried[-1].temperature  # OpenAI reports the last temperature tried
    return best
