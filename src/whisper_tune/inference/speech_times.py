"""Segment times moved onto the speech they cover (``DecodeOptions.speech_times``).

Why: Whisper's timestamp tokens are coarse. tiny.en writes mostly whole seconds on telephone
speech, and consecutive segments touch (the next starts where the last ended), so the pause
between two speakers sits inside a segment. Measured on 4 synthetic calls (6.8 min, the demo's
export and base tiny.en): 49-61 % of the reference boundaries had a predicted one within 0.5 s;
with the rule below on their mono mix 88-93 %, with the stereo file's turns 94-99 %
(docs/evaluate.md). The speech itself says where a segment can start and end, which
is the idea of stable-ts' silence adjustment; stable-ts works on openai-whisper's model and
result objects, and no library takes a segment list plus audio, so the rule is written here.
Speech is found by faster-whisper's Silero VAD (the model ``inference.vad`` already uses), with
a short padding so a pause between turns stays a pause. Its limit is the VAD's: speech it misses
(seen on a single telephone channel) looks like a pause, and a trim can then cut into it.

The rule, per recording (no text is dropped or reworded):

0. **split** (segments with word times, ``DecodeOptions.word_timestamps``): a segment whose
   words straddle a pause of at least ``SPLIT_PAUSE_S`` is cut between those two words, its
   text, tokens and words shared out (stable-ts' default regrouping splits at 0.5 s gaps too):
   Whisper often writes two speakers' turns as one segment;
0b. **turns** (a multichannel recording's ``levels``, ``data.channel_levels``: a call with the
   agent and the customer on their own channels, decoded as its mix): each stretch of speech is
   given to the channel loudest in it, a pause between two stretches of different channels is
   a turn change and cuts a segment however short it is, and a segment with words is trimmed
   onto the speech of the channel most of its words lie in (Whisper often starts a turn's
   segment over the end of the other side's); last, consecutive segments of one channel less
   than ``split_pause_s`` apart are joined into one segment, so a segment is a speaker's turn
   (Whisper cuts a turn at its sentences; a call's transcript is read turn by turn). On 4
   synthetic calls this took the tuned model's reference boundaries from 88 to 94-95 % and the
   share of its boundaries near a reference from 75 to 97-99 % (docs/evaluate.md); a mono
   recording goes without it;
1. **trim**: a segment's start moves forward onto the first detected speech inside it and its
   end back onto the last (a segment over no detected speech keeps its times);
2. **nudge**: a start that falls inside speech less than ``NUDGE_S`` after a pause moves back
   to the end of that pause, and an end that falls inside speech less than ``NUDGE_S`` before a
   pause moves forward to its start -- the neighbouring segment's edge moves with it, and an
   edge never crosses a neighbour's.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from whisper_tune.data.audio import SAMPLE_RATE
from whisper_tune.data.channel_levels import LEVEL_FRAME_S

from .types import Segment

__all__ = [
    "MIN_PAUSE_MS",
    "NUDGE_S",
    "SPEECH_PAD_MS",
    "SPLIT_PAUSE_S",
    "snap_segments",
    "snap_times",
    "speaker_labels",
    "speech_spans",
]

MIN_PAUSE_MS = 150  # a silence at least this long ends a speech stretch (faster-whisper's batched value: 160)
SPEECH_PAD_MS = 30  # padding on each side of speech (faster-whisper's default 400 would fill a turn's pause)
NUDGE_S = 0.6  # how far a boundary inside speech may move to the nearest pause
SPLIT_PAUSE_S = 0.5  # a pause this long between two words of a segment cuts it (stable-ts' split_by_gap(.5))


def speech_spans(audio: np.ndarray, sr: int = SAMPLE_RATE) -> list[tuple[float, float]]:
    """``(start_s, end_s)`` stretches of speech in ``audio`` (Silero VAD), in order."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    x = np.asarray(audio, dtype=np.float32).reshape(-1)
    if x.size == 0:
        return []
    opts = VadOptions(min_silence_duration_ms=MIN_PAUSE_MS, speech_pad_ms=SPEECH_PAD_MS)
    return [(s["start"] / sr, min(s["end"], x.size) / sr) for s in get_speech_timestamps(x, opts, sr)]


def _span_at(starts: Sequence[float], spans: Sequence[tuple[float, float]], t: float) -> int | None:
    """Index of the span with ``start < t < end``, else None."""
    k = bisect.bisect_left(starts, t) - 1
    return k if k >= 0 and spans[k][0] < t < spans[k][1] else None


def _trim(
    seg: tuple[float, float], starts: Sequence[float], spans: Sequence[tuple[float, float]]
) -> tuple[float, float]:
    s, e = seg
    first = max(0, bisect.bisect_right(starts, s) - 1)
    if first < len(spans) and spans[first][1] <= s:
        first += 1  # that span ended before the segment starts
    last = bisect.bisect_left(starts, e) - 1  # the last span starting before the segment ends
    if first >= len(spans) or last < first:
        return s, e  # no detected speech inside: keep the model's times
    s2, e2 = max(s, spans[first][0]), min(e, spans[last][1])
    return (s2, e2) if e2 > s2 else (s, e)


def snap_times(
    segments: Sequence[tuple[float, float]],
    spans: Sequence[tuple[float, float]],
    nudge_s: float = NUDGE_S,
) -> list[tuple[float, float]]:
    """``segments`` (``(start, end)`` in file order) with the rule of the module docstring
    applied against the speech ``spans`` (sorted, disjoint) of the same recording."""
    if not spans:
        return [(float(s), float(e)) for s, e in segments]
    starts = [a for a, _b in spans]
    out = [list(_trim((float(s), float(e)), starts, spans)) for s, e in segments]
    n = len(out)
    for i, seg in enumerate(out):
        k = _span_at(starts, spans, seg[0])
        if k is not None and k > 0 and seg[0] - spans[k][0] <= nudge_s and spans[k][0] < seg[1]:
            pause_start = spans[k - 1][1]  # the start sits just after a pause: move it there
            if i == 0 or out[i - 1][0] < pause_start:
                seg[0] = spans[k][0]
                if i > 0:
                    out[i - 1][1] = min(out[i - 1][1], pause_start)
        k = _span_at(starts, spans, seg[1])
        if k is not None and k + 1 < len(spans) and spans[k][1] - seg[1] <= nudge_s:
            pause_end = spans[k + 1][0]  # the end sits just before a pause: move it there
            if i + 1 == n or out[i + 1][1] > pause_end:
                seg[1] = spans[k][1]
                if i + 1 < n:
                    out[i + 1][0] = max(out[i + 1][0], pause_end)
    return [(s, e) for s, e in out]


def _split(seg: Segment, pauses: Sequence[tuple[float, float]]) -> list[Segment]:
    """``seg`` cut between two of its words wherever a pause's midpoint lies between theirs."""
    words = seg.words or []
    if len(words) < 2 or not all(w.tokens for w in words):
        return [seg]  # no words, or words without their tokens: nothing safe to cut
    if "".join(w.word for w in words).strip() != seg.text.strip():
        return [seg]  # words that do not spell the text (dropped punctuation): keep it whole
    mids = [(w.start + w.end) / 2 for w in words]
    cuts: list[tuple[int, float, float]] = []  # (first word of the next part, pause start, pause end)
    for p0, p1 in pauses:
        k = bisect.bisect_left(mids, (p0 + p1) / 2)
        if seg.start < p0 and p1 < seg.end and 0 < k < len(words) and (not cuts or cuts[-1][0] < k):
            cuts.append((k, p0, p1))
    if not cuts:
        return [seg]
    firsts = [0, *(k for k, _a, _b in cuts)]
    lasts = [*(k for k, _a, _b in cuts), len(words)]
    starts = [seg.start, *(p1 for _k, _p0, p1 in cuts)]
    ends = [*(p0 for _k, p0, _p1 in cuts), seg.end]
    parts: list[Segment] = []
    used = 0
    for j, (f, t, start, end) in enumerate(zip(firsts, lasts, starts, ends, strict=True)):
        mine = words[f:t]
        n = sum(len(w.tokens) for w in mine)
        toks = seg.tokens[used:] if j == len(cuts) else seg.tokens[used : used + n]
        used += n
        text = "".join(w.word for w in mine)
        parts.append(replace(seg, start=start, end=end, text=text, tokens=toks, words=list(mine)))
    return parts


def speaker_labels(
    spans: Sequence[tuple[float, float]], levels: np.ndarray | None, frame_s: float = LEVEL_FRAME_S
) -> list[int] | None:
    """The channel loudest over each speech span (``levels``: ``(channels, frames)`` power,
    ``data.channel_levels``), or None without two channels to tell apart."""
    if levels is None or levels.ndim != 2 or levels.shape[0] < 2 or levels.shape[1] == 0:
        return None
    last = levels.shape[1] - 1
    out: list[int] = []
    for a, b in spans:
        i = min(last, max(0, int(a / frame_s)))
        j = min(last + 1, max(i + 1, int(np.ceil(b / frame_s))))
        out.append(int(np.argmax(levels[:, i:j].mean(axis=1))))
    return out


def _nearest(starts: Sequence[float], spans: Sequence[tuple[float, float]], t: float) -> int:
    """Index of the span holding ``t``, else of the one closest to it."""
    k = bisect.bisect_right(starts, t) - 1
    options = [i for i in (k, k + 1) if 0 <= i < len(spans)]
    return min(
        options,
        key=lambda i: (
            0.0 if spans[i][0] <= t <= spans[i][1] else min(abs(spans[i][0] - t), abs(spans[i][1] - t))
        ),
    )


def _speaker(
    seg: Segment,
    spans: Sequence[tuple[float, float]],
    starts: Sequence[float],
    labels: Sequence[int],
    by_words: bool = True,
) -> int | None:
    """The channel most of ``seg``'s words lie in (``by_words``), or the one with the most speech
    inside it; None on a tie or with no speech inside."""
    votes: dict[int, float] = {}
    if seg.words and by_words:
        for w in seg.words:
            who = labels[_nearest(starts, spans, (w.start + w.end) / 2)]
            votes[who] = votes.get(who, 0.0) + 1.0
    else:
        for (a, b), who in zip(spans, labels, strict=True):
            if b > seg.start and a < seg.end:
                votes[who] = votes.get(who, 0.0) + min(b, seg.end) - max(a, seg.start)
    ranked = sorted(votes.values(), reverse=True)
    if not ranked or (len(ranked) > 1 and ranked[0] == ranked[1]):
        return None
    return max(votes, key=lambda k: votes[k])


def _speaker_trim(
    seg: Segment, spans: Sequence[tuple[float, float]], starts: Sequence[float], labels: Sequence[int]
) -> tuple[float, float]:
    """``seg``'s times on the speech of its speaker (``_speaker``; unchanged without one, or
    where that channel has no speech inside the segment)."""
    who = _speaker(seg, spans, starts, labels)
    if who is None:
        return seg.start, seg.end
    mine = [
        sp
        for sp, lab in zip(spans, labels, strict=True)
        if lab == who and sp[1] > seg.start and sp[0] < seg.end
    ]
    if not mine:
        return seg.start, seg.end
    return max(seg.start, mine[0][0]), min(seg.end, mine[-1][1])


def _join(a: Segment, b: Segment) -> Segment:
    """Two consecutive segments of one turn as one: text, tokens and words joined; a turn over
    two windows keeps the first window's seek and the less confident window's statistics."""
    text = a.text + (b.text if b.text[:1].isspace() or not a.text else " " + b.text)
    words = a.words + b.words if a.words is not None and b.words is not None else None
    return replace(
        a,
        end=b.end,
        text=text,
        tokens=a.tokens + b.tokens,
        words=words,
        avg_logprob=min(a.avg_logprob, b.avg_logprob),
        compression_ratio=max(a.compression_ratio, b.compression_ratio),
        no_speech_prob=max(a.no_speech_prob, b.no_speech_prob),
        temperature=max(a.temperature, b.temperature),
    )


def _merge_turns(
    segments: list[Segment],
    spans: Sequence[tuple[float, float]],
    starts: Sequence[float],
    labels: Sequence[int],
    gap_s: float,
) -> list[Segment]:
    """Consecutive segments of the same channel less than ``gap_s`` apart joined into one turn.
    Each segment's channel is the one with the most speech inside its (snapped) times: after the
    trim those times lie on the speech, where word times can drift (measured: by words, 1-2 more
    reference boundaries lost per 4 calls)."""
    out: list[Segment] = []
    last: int | None = None
    for seg in segments:
        who = _speaker(seg, spans, starts, labels, by_words=False)
        if out and who is not None and who == last and seg.start - out[-1].end < gap_s:
            out[-1] = _join(out[-1], seg)
            continue
        out.append(seg)
        last = who
    return out


def snap_segments(
    segments: list[Segment],
    audio: np.ndarray,
    sr: int = SAMPLE_RATE,
    split_pause_s: float = SPLIT_PAUSE_S,
    *,
    levels: np.ndarray | None = None,
    spans: Sequence[tuple[float, float]] | None = None,
) -> list[Segment]:
    """A transcript's segments on the speech of ``audio``: split at pauses (segments with words),
    then times snapped (text, tokens, words and window statistics otherwise unchanged); the
    backends' ``speech_times`` step. ``levels``: the recording's per-channel power
    (``data.channel_levels``), for the turn rule; ``spans``: ``speech_spans(audio)`` when the
    caller has them already. Segment ids are renumbered when a split adds segments."""
    if not segments:
        return segments
    spans = list(spans) if spans is not None else speech_spans(audio, sr)
    labels = speaker_labels(spans, levels)
    pad = 2 * SPEECH_PAD_MS / 1000  # the spans are padded: the silence is the gap plus both pads
    pauses = [
        (a[1], b[0])
        for k, (a, b) in enumerate(zip(spans, spans[1:], strict=False))
        if b[0] - a[1] + pad >= split_pause_s or (labels is not None and labels[k] != labels[k + 1])
    ]
    segments = [part for seg in segments for part in _split(seg, pauses)]
    starts = [a for a, _b in spans]
    if labels is not None:
        first = [_speaker_trim(s, spans, starts, labels) for s in segments]
    else:
        first = [(s.start, s.end) for s in segments]
    times = snap_times(first, spans)
    out = [replace(s, start=round(a, 3), end=round(b, 3)) for s, (a, b) in zip(segments, times, strict=True)]
    if labels is not None:
        out = _merge_turns(out, spans, starts, labels, split_pause_s)
    return [replace(s, id=i) for i, s in enumerate(out)]
