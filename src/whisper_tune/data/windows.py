"""Cut checked segment streams into <= 30 s training windows and build their labels.

Why: Whisper sees a long recording 30 s at a time, and in each window it is expected to
predict segment times (``<|0.00|> text<|2.40|><|2.40|> text<|5.10|>``) relative to the
window's start, and it is usually prompted with what the previous window said. A model
tuned only on single short clips under ``<|notimestamps|>`` loses both (transformers
#30148, faster-whisper #428; distil-whisper keeps a share of timestamped and
previous-text-conditioned samples for that reason). So windows are cut on segment
boundaries (never inside a segment), a stable share of them (hashed by window id, so every
worker agrees) keeps timestamp tokens quantised to 0.02 s, and a share is conditioned on the
previous window's text:

    <|startofprev|> previous text <|startoftranscript|> ... <|0.00|> text<|t|> ... <|endoftext|>

The previous-text tokens are context, not targets: :func:`prompt_batch` builds the decoder
inputs explicitly and puts -100 on every label position up to and including
``<|startoftranscript|>`` so they are not in the loss (the model's own label shift would
have replaced them with padding). Segment texts start with a space, as Whisper writes them,
so joined segments never read "away.Please".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from whisper_tune.data.subtitles import Cue
from whisper_tune.data.timestamps import TIME_PRECISION

__all__ = ["MAX_GAP_S", "MAX_PREV_TOKENS", "Window", "cut_windows", "prompt_batch", "window_labels"]

#: A longer silence (or untranscribed stretch) between two segments starts a new window.
MAX_GAP_S = 10.0
#: Whisper's prompt limit: half the decoder context minus one (n_text_ctx // 2 - 1).
MAX_PREV_TOKENS = 223


@dataclass(frozen=True)
class Window:
    """Consecutive whole segments of one stream spanning at most ``max_s`` seconds."""

    start: float
    end: float
    cues: tuple[Cue, ...]

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def text(self) -> str:
        return " ".join(c.text.strip() for c in self.cues)


def cut_windows(
    cues: list[Cue],
    max_s: float = 30.0,
    max_gap_s: float = MAX_GAP_S,
    *,
    pad_s: float = 0.0,
    audio_end: float | None = None,
) -> list[Window]:
    """Greedy windows over time-sorted, non-overlapping ``cues`` each no longer than ``max_s``.

    A window holds whole segments: the next segment that would end more than ``max_s`` after
    the window's first segment starts, or that follows a gap over ``max_gap_s``, opens a new
    window. A single segment over ``max_s`` must have been split before. ``pad_s`` widens each
    window by up to that much audio before its first and after its last segment (vendor cue
    times often clip a word's onset), never into a neighbouring window's segments, past
    ``audio_end`` or beyond ``max_s``.
    """
    groups: list[list[Cue]] = []
    for c in cues:
        if c.end - c.start > max_s + 1e-9:
            raise ValueError(f"{c.origin}: segment of {c.end - c.start:.2f} s is longer than {max_s:g} s")
        if groups and (c.end - groups[-1][0].start > max_s or c.start - groups[-1][-1].end > max_gap_s):
            groups.append([])
        if not groups:
            groups.append([])
        groups[-1].append(c)
    out: list[Window] = []
    for k, g in enumerate(groups):
        first, last = g[0].start, g[-1].end
        start = max(first - pad_s, last - max_s, out[-1].end if out else 0.0, 0.0)
        start = min(start, first)
        end = min(last + pad_s, start + max_s, audio_end if audio_end is not None else math.inf)
        if k + 1 < len(groups):
            end = min(end, groups[k + 1][0].start)  # the next window's first segment is not heard here
        out.append(Window(start, max(end, last), tuple(g)))
    return out


def _ts(tokenizer: Any, seconds: float, limit: float) -> int:
    steps = int(round(min(max(seconds, 0.0), limit) / TIME_PRECISION))
    token = f"<|{steps * TIME_PRECISION:.2f}|>"
    tid = tokenizer.convert_tokens_to_ids(token)
    if not isinstance(tid, int) or tid == tokenizer.unk_token_id:
        raise ValueError(f"the tokenizer has no timestamp token {token}")
    return int(tid)


def window_labels(
    window: Window,
    tokenizer: Any,
    *,
    timestamps: bool,
    prev_text: str | None = None,
    max_tokens: int = 448,
) -> list[int]:
    """Full label ids of a window: [prev prompt] + prefix + text (timestamped or not) + eot.

    The prefix is the tokenizer's (``<|startoftranscript|>`` [language, task]
    ``<|notimestamps|>``), without ``<|notimestamps|>`` when ``timestamps``. The previous text
    keeps its last tokens, at most :data:`MAX_PREV_TOKENS` and what fits ``max_tokens``.
    """
    no_ts = tokenizer.convert_tokens_to_ids("<|notimestamps|>")
    prefix = [int(t) for t in tokenizer.prefix_tokens]
    eot = int(tokenizer.eos_token_id)

    def enc(text: str) -> list[int]:
        return [int(t) for t in tokenizer.encode(" " + text.strip(), add_special_tokens=False)]

    if timestamps:
        prefix = [t for t in prefix if t != no_ts]
        limit = max(window.duration, TIME_PRECISION)
        body: list[int] = []
        for c in window.cues:
            start, end = c.start - window.start, c.end - window.start
            body += [
                _ts(tokenizer, start, limit),
                *enc(c.text),
                _ts(tokenizer, max(end, start + 0.02), limit),
            ]
    else:
        if no_ts not in prefix:
            prefix.append(int(no_ts))
        body = enc(window.text)
    labels = [*prefix, *body, eot]
    if prev_text and prev_text.strip():
        room = min(MAX_PREV_TOKENS, max_tokens - len(labels) - 1)
        if room > 0:
            prev = enc(prev_text)[-room:]
            labels = [int(tokenizer.convert_tokens_to_ids("<|startofprev|>")), *prev, *labels]
    return labels


def prompt_batch(rows: list[list[int]], start_id: int, pad_id: int) -> tuple[Any, Any]:
    """(decoder_input_ids, labels) for full label rows, some starting with a previous-text prompt.

    ``decoder_input_ids`` = row[:-1] (padded with ``pad_id``), ``labels`` = row[1:] with -100 on
    the prompt and ``<|startoftranscript|>`` (padded with -100): the loss is over what follows
    the start token only, exactly as for rows without a prompt.
    """
    import torch

    width = max(len(r) for r in rows) - 1
    dec = torch.full((len(rows), width), pad_id, dtype=torch.long)
    lab = torch.full((len(rows), width), -100, dtype=torch.long)
    for i, r in enumerate(rows):
        if start_id not in r:
            raise ValueError(f"label row {i} has no start token {start_id}")
        k = r.index(start_id)
        n = len(r) - 1
        dec[i, :n] = torch.tensor(r[:-1], dtype=torch.long)
        lab[i, :n] = torch.tensor(r[1:], dtype=torch.long)
        lab[i, :k] = -100
    return dec, lab
