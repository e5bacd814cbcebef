"""Whisper's timestamp tokens -> segments with absolute times, the same for both backends.

Why separate: the parsing is pure (ids in, tuples out) and tested without a model; both
backends emit the same token stream, so one parser keeps their segments identical.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

__all__ = [
    "APPEND_PUNCTUATIONS",
    "PREPEND_PUNCTUATIONS",
    "TIME_PRECISION",
    "assign_words",
    "tokens_to_segments",
]

TIME_PRECISION = 0.02  # seconds per timestamp token step
# punctuation merged into the next / previous word when words are timed (OpenAI's and faster-whisper's sets)
PREPEND_PUNCTUATIONS = "\"'“¿([{-"
APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"


def tokens_to_segments(
    ids: Sequence[int],
    *,
    timestamp_begin: int,
    eot: int,
    offset: float,
    window_s: float,
    decode: Callable[[list[int]], str],
) -> list[tuple[float, float, str, list[int]]]:
    """Cut one window's generated ids into ``(start, end, text, tokens)`` with absolute times.

    Whisper emits ``<|t0|> text <|t1|>`` pairs; a window without timestamp tokens (or a
    trailing text run without a closing one) extends to the window's end. Times are
    clamped into the window and made non-decreasing.
    """
    raw: list[tuple[float | None, float | None, list[int]]] = []
    cur: list[int] = []
    cur_start: float | None = None
    last_end = 0.0
    for t in ids:
        t = int(t)
        if t >= timestamp_begin:
            ts = (t - timestamp_begin) * TIME_PRECISION
            if cur:
                raw.append((cur_start if cur_start is not None else last_end, ts, cur))
                cur = []
                cur_start = None
                last_end = ts
            else:
                cur_start = ts
        elif t >= eot or t < 0:
            continue  # special tokens, padding
        else:
            cur.append(t)
    if cur:
        raw.append((cur_start if cur_start is not None else last_end, None, cur))
    out: list[tuple[float, float, str, list[int]]] = []
    prev_end = 0.0
    for start, end, toks in raw:
        text = decode(toks)
        if not text.strip():
            continue
        s = min(max(start or 0.0, prev_end), window_s)
        e = window_s if end is None else min(max(end, s), window_s)
        out.append((offset + s, offset + e, text, toks))
        prev_end = e
    return out


def assign_words(
    segment_tokens: Sequence[Sequence[int]], words: Sequence[dict[str, Any]]
) -> list[list[dict[str, Any]]]:
    """A window's aligned words (each with its ``tokens``) shared out over its segments in order,
    by token count (faster-whisper's rule); words without text (merged punctuation) are dropped."""
    out: list[list[dict[str, Any]]] = []
    w = 0
    for toks in segment_tokens:
        mine: list[dict[str, Any]] = []
        used = 0
        while w < len(words) and used < len(toks):
            word = words[w]
            if str(word.get("word", "")).strip():
                mine.append(word)
            used += len(word.get("tokens", ()))
            w += 1
        out.append(mine)
    if out and w < len(words):  # alignment with more tokens than the segments: the rest to the last
        out[-1].extend(x for x in words[w:] if str(x.get("word", "")).strip())
    return out
