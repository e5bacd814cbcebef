"""Long recordings with time-aligned transcripts: from manifest rows to checked segment streams.

Why: a call-centre corpus is whole calls (minutes, often 8 kHz stereo: agent on one channel,
customer on the other) whose transcripts are time-aligned per segment, as SRT/WebVTT files or
as segment lists. Before anything can be cut into 30 s training windows every segment must be
checked against its recording: a segment past the audio's end, one that overlaps another on
the same channel, one that starts before its predecessor, or one without text would teach the
model words that are not in its window. Each such segment becomes a counted, named
:class:`~whisper_tune.data.subtitles.CueProblem` (``file:line (cue N)``) and every other
segment of the file is kept.

Two kinds of manifest rows point at long recordings (``manifest.load_manifest`` reads both):

* a *recording row*: ``audio_filepath`` plus ``srt`` / ``vtt`` / ``subtitles`` (a transcript file,
  resolved like the audio path), optional ``channel`` (which channel the transcript is);
* a *segment row*: ``audio_filepath``, ``start`` (or NeMo's ``offset``), ``end`` (or ``duration``),
  ``text``, optional ``speaker`` / ``channel``.

A bare ``call.srt`` given where a manifest goes is the recording row of ``call.wav`` (or .flac...).

``channels="split"`` makes each channel its own stream (a transcript without ``channel`` on a
stereo file, or any transcript of a mono file, is a counted skip); ``"mix"`` (the default)
down-mixes, so the transcripts of all channels of a call are merged into one stream.
The audio is only probed here (``soundfile.info``: rate, channels, length); no sample is read.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from whisper_tune.data.manifest import Sample
from whisper_tune.data.subtitles import (
    TRANSCRIPT_FIELDS,
    TRANSCRIPT_SUFFIXES,
    Cue,
    CueProblem,
    read_transcript,
)
from whisper_tune.errors import DataError

__all__ = [
    "AUDIO_SUFFIXES",
    "END_TOLERANCE_S",
    "OVERLAP_TOLERANCE_S",
    "Expansion",
    "Stream",
    "expand",
    "is_long_form",
    "is_transcript_file",
    "recording_row",
    "split_long_cue",
]

END_TOLERANCE_S = 0.5  # a segment ending up to this far past the audio is clamped, not dropped
OVERLAP_TOLERANCE_S = 0.1  # vendor timings overlap by a frame or two; more is a real overlap
_CLAUSE = re.compile(r"(?<=[.!?;:,])\s+")


@dataclass
class Stream:
    """The checked segments of one recording's channel (``channel=None``: the down-mix)."""

    audio: str
    channel: int | None
    recording_id: str
    sample_rate: int
    n_channels: int
    duration: float
    cues: list[Cue] = field(default_factory=list)
    split: str | None = None


@dataclass
class Expansion:
    """Streams plus what was dropped; ``cues_read`` counts every segment seen."""

    streams: list[Stream]
    problems: list[tuple[CueProblem, str | None]]  # (problem, split)
    recordings: int = 0
    cues_read: int = 0
    cues_split: int = 0


def is_long_form(sample: Sample) -> bool:
    """A recording row (transcript file) or a segment row (``start``, or NeMo's ``offset`` with a length).

    An ``offset`` without ``end``/``duration`` keeps meaning what it did before: an ordinary clip.
    """
    m = sample.meta
    if any(m.get(k) not in (None, "") for k in (*TRANSCRIPT_FIELDS, "start")):
        return True
    return m.get("offset") not in (None, "") and (
        sample.duration is not None or m.get("end") not in (None, "")
    )


#: Audio suffixes tried, in order, beside a bare transcript file (``data.train: call.srt``).
AUDIO_SUFFIXES: tuple[str, ...] = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aiff", ".au")


def is_transcript_file(name: str) -> bool:
    return Path(name).suffix.lower() in TRANSCRIPT_SUFFIXES


def recording_row(transcript: str) -> Sample:
    """The recording row of a bare ``call.srt`` / ``call.vtt``: its audio is ``call.<audio suffix>`` beside it."""
    t = Path(os.path.abspath(os.path.expanduser(transcript)))
    if not t.is_file():
        raise DataError(f"{t}: transcript file not found")
    audio = next((t.with_suffix(x) for x in AUDIO_SUFFIXES if t.with_suffix(x).is_file()), None)
    if audio is None:
        tried = ", ".join(t.with_suffix(x).name for x in AUDIO_SUFFIXES)
        raise DataError(f"{t}: no audio file of the same name beside it (tried {tried}); use a manifest row")
    kind = TRANSCRIPT_SUFFIXES[t.suffix.lower()]
    return Sample(t.stem, str(Path(os.path.realpath(audio))), f"<{kind}>", None, {kind: str(t)}, str(t))


def _number(value: object) -> float | None:
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _segment_cue(s: Sample) -> Cue | CueProblem:
    """A segment row as a cue (times checked later), or the problem with its fields."""
    raw_start = s.meta.get("start", s.meta.get("offset"))
    start = _number(raw_start)
    if start is None:
        return CueProblem(s.origin, "bad_field", f"'start'/'offset' is not a number: {raw_start!r}")
    if s.meta.get("end") not in (None, ""):
        end = _number(s.meta["end"])
        if end is None:
            return CueProblem(s.origin, "bad_field", f"'end' is not a number: {s.meta['end']!r}")
    elif s.duration is not None:
        end = start + s.duration
    else:
        return CueProblem(s.origin, "missing_field", "a segment needs 'end' or 'duration'")
    speaker = s.meta.get("speaker")
    return Cue(start, end, s.text, s.origin, speaker=str(speaker) if speaker is not None else None)


def _ordered(cues: list[Cue], problems: list[CueProblem]) -> list[Cue]:
    """One source's cues with no text, reversed times or a start before the previous one dropped."""
    kept: list[Cue] = []
    for c in cues:
        if not any(ch.isalnum() for ch in c.text):
            what = "has no text" if not c.text.strip() else f"has no letters or digits ({c.text!r})"
            problems.append(CueProblem(c.origin, "empty_text", f"segment {what}"))
        elif c.start < 0 or c.end <= c.start:
            problems.append(
                CueProblem(
                    c.origin, "bad_times", f"segment {c.start:.3f}-{c.end:.3f} s ends before it starts"
                )
            )
        elif kept and c.start < kept[-1].start:
            problems.append(
                CueProblem(
                    c.origin,
                    "non_monotonic",
                    f"segment starts at {c.start:.3f} s, before the previous one ({kept[-1].origin}, "
                    f"{kept[-1].start:.3f} s)",
                )
            )
        else:
            kept.append(c)
    return kept


def split_long_cue(cue: Cue, max_s: float) -> list[Cue] | None:
    """A cue over ``max_s`` cut at clause punctuation, times shared out by characters; None if it cannot be."""
    if cue.end - cue.start <= max_s:
        return [cue]
    pieces = [p for p in _CLAUSE.split(cue.text) if p.strip()]
    total = sum(len(p) for p in pieces)
    per_char = (cue.end - cue.start) / max(total, 1)
    out: list[Cue] = []
    group: list[str] = []
    start = cue.start
    for p in pieces:
        if len(p) * per_char > max_s:
            return None  # one clause alone is longer than a window
        if group and (sum(len(g) for g in group) + len(p)) * per_char > max_s:
            end = start + sum(len(g) for g in group) * per_char
            out.append(replace(cue, start=start, end=end, text=" ".join(group)))
            group, start = [], end
        group.append(p)
    out.append(replace(cue, start=start, end=cue.end, text=" ".join(group)))
    return out


def _check_stream(stream: Stream, max_s: float, problems: list[CueProblem]) -> int:
    """Times against the audio, overlaps, long segments; returns how many cues were split."""
    kept: list[Cue] = []
    n_split = 0
    for c in sorted(stream.cues, key=lambda x: x.start):
        if c.start >= stream.duration or c.end > stream.duration + END_TOLERANCE_S:
            problems.append(
                CueProblem(
                    c.origin,
                    "past_end",
                    f"segment {c.start:.3f}-{c.end:.3f} s is past the end of {stream.audio} "
                    f"({stream.duration:.3f} s)",
                )
            )
            continue
        c = replace(c, end=min(c.end, stream.duration))
        if kept and c.start < kept[-1].end - OVERLAP_TOLERANCE_S:
            problems.append(
                CueProblem(
                    c.origin,
                    "overlap",
                    f"segment {c.start:.3f}-{c.end:.3f} s overlaps {kept[-1].origin} "
                    f"({kept[-1].start:.3f}-{kept[-1].end:.3f} s) on the same channel (first kept)",
                )
            )
            continue
        pieces = split_long_cue(c, max_s)
        if pieces is None:
            problems.append(
                CueProblem(
                    c.origin,
                    "segment_too_long",
                    f"segment of {c.end - c.start:.1f} s is over {max_s:g} s and has no punctuation "
                    f"to split it at",
                )
            )
            continue
        n_split += len(pieces) > 1
        kept.extend(pieces)
    stream.cues = kept
    return n_split


def _probe(path: str) -> tuple[int, int, float] | str:
    """(sample rate, channels, seconds) from the header, or why the file cannot be used."""
    import soundfile as sf

    try:
        info = sf.info(path)
    except Exception as exc:  # soundfile raises LibsndfileError/RuntimeError...
        return f"audio file {path} cannot be decoded ({exc})"
    if info.frames <= 0 or info.samplerate <= 0:
        return f"audio file {path} has no samples (or no length in its header)"
    return int(info.samplerate), int(info.channels), info.frames / float(info.samplerate)


def _channel_of(s: Sample, channels: str, n_ch: int) -> int | None | CueProblem:
    """The channel a row's segments are read from (None: the down-mix), or why there is none."""
    if channels != "split":
        return None
    raw = s.meta.get("channel")
    if n_ch == 1:
        return CueProblem(
            s.origin,
            "mono_split",
            f"{s.audio} is mono; data.channels: split needs one channel per speaker "
            "(use channels: mix for mono recordings)",
        )
    if raw in (None, ""):
        return CueProblem(
            s.origin,
            "no_channel",
            f"{s.audio} has {n_ch} channels; with data.channels: split each transcript "
            "or segment needs 'channel' (0-based) naming its channel",
        )
    ch = _number(raw)
    if ch is None or ch != int(ch) or not 0 <= ch < n_ch:
        return CueProblem(s.origin, "bad_field", f"'channel' {raw!r} is not 0..{n_ch - 1} of {s.audio}")
    return int(ch)


def _recording_id(path: str) -> str:
    import hashlib

    return f"{Path(path).stem}-{hashlib.sha1(path.encode()).hexdigest()[:6]}"


def expand(samples: Iterable[Sample], *, channels: str = "mix", max_segment_s: float = 30.0) -> Expansion:
    """Check the long-form rows and group their segments into one stream per recording/channel."""
    if channels not in ("mix", "split"):
        raise ValueError(f"channels must be 'mix' or 'split', got {channels!r}")
    out = Expansion([], [])
    by_audio: dict[str, list[Sample]] = {}
    for s in samples:
        by_audio.setdefault(s.audio, []).append(s)
    for audio, rows in by_audio.items():
        probs: list[CueProblem] = []
        split = rows[0].meta.get("split")
        split = str(split) if split is not None else None
        probe = _probe(audio)
        streams: dict[int | None, Stream] = {}
        # one source: a transcript file, or a manifest's segment rows of one channel (order checked per source)
        sources: dict[tuple[str, str], tuple[int | None, list[Cue]]] = {}
        for s in rows:
            tfile = next((s.meta[k] for k in TRANSCRIPT_FIELDS if s.meta.get(k) not in (None, "")), None)
            if any(s.meta.get(k) not in (None, "") for k in ("start", "offset")):
                tfile = None  # a row with its own times is a segment; a transcript beside it is a reference
            raw_channel = s.meta.get("channel")
            if isinstance(probe, str):
                probs.append(CueProblem(s.origin, "unreadable_audio", probe))
                continue
            sr, n_ch, seconds = probe
            channel = _channel_of(s, channels, n_ch)
            if isinstance(channel, CueProblem):
                probs.append(channel)
                continue
            if tfile is not None:
                key = (str(tfile), str(raw_channel))
                if key in sources:
                    continue  # the same transcript named twice: read once
                cues, cue_probs = read_transcript(str(tfile))
                probs.extend(cue_probs)
                out.cues_read += len(cues) + sum(p.reason == "malformed_cue" for p in cue_probs)
            else:
                one = _segment_cue(s)
                out.cues_read += 1
                if isinstance(one, CueProblem):
                    probs.append(one)
                    continue
                cues, key = [one], (s.origin.rsplit(":", 1)[0], str(raw_channel))
            if raw_channel not in (None, ""):
                cues = [replace(c, channel=int(_number(raw_channel) or 0)) for c in cues]
            sources.setdefault(key, (channel, []))[1].extend(cues)
            if channel not in streams:
                streams[channel] = Stream(
                    audio, channel, _recording_id(audio), sr, n_ch, seconds, split=split
                )
        for channel_of, cues in sources.values():
            streams[channel_of].cues.extend(_ordered(cues, probs))
        out.recordings += 1  # seen, used or not: the skips say why not
        for st in streams.values():
            out.cues_split += _check_stream(st, max_segment_s, probs)
            if st.cues:
                out.streams.append(st)
        out.problems.extend((p, split) for p in probs)
    return out
