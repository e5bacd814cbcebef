"""Whisper's timestamp tokens -> segments with absolute times, the same for both backends.

Why separate: the parsing is pure (ids in, tuples out) and tested without a model; both
backends emit the same token stream, so one parser keeps their segments identical.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

__all__ = ["TIME_PRECISION", "tokens_to_segments"]

TIME_PRECISION = 0.02  # seconds per timestamp token step


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
