"""Training windows from long recordings: checked, labelled, read by seeking, counted in the report.

Why: a call is minutes long and a corpus of calls is hours; a 3-hour recording decoded whole is
1.4 GB of float32 at 8 kHz before resampling. Each training window needs only its own 30 s, so
windows are read here straight from the file with ``soundfile`` (``SoundFile.seek`` to the
window's first frame, then ``read`` of just its frames): soundfile directly rather than
``audio.decode_audio`` because decoding whole files is what that function is for, and it
neither seeks nor keeps channels apart. One channel is taken (``data.channels: split``) or the
channels are averaged (``mix``), and the window is resampled once from the file's own rate
(8 kHz telephone audio included) to 16 kHz with soxr HQ, as ``decode_audio`` does. The same
reader serves the data check (silence per window) and the dataset (features on the fly, or
once into the feature cache, keyed by the file's bytes and the window's span and channel).

The report gets the long-form numbers (recordings, segments read and used, windows made,
timestamped and prompted windows, windows and hours per channel) and every dropped segment
or window with its reason, next to the source sample rates of everything usable.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from whisper_tune.data import timestamps
from whisper_tune.data.audio import SAMPLE_RATE, AudioCheck, AudioInfo
from whisper_tune.data.checks import DataReport
from whisper_tune.data.features import FeatureCache, extract_features, file_sha256
from whisper_tune.data.manifest import Sample
from whisper_tune.data.segments import Stream, expand
from whisper_tune.data.windows import MAX_GAP_S, Window, cut_windows, window_labels

__all__ = ["LongFormOptions", "WindowItem", "read_window", "scan_long_form"]

_WINDOW_KEY_VERSION = "wt-window-1"


@dataclass(frozen=True)
class LongFormOptions:
    """How long recordings become training windows (``data.channels``, ``data.window_*``)."""

    channels: Literal["mix", "split"] = "mix"
    timestamp_share: float = 0.5  # windows that keep timestamp tokens
    prev_share: float = 0.2  # windows (after a stream's first) prompted with the previous window's text
    max_window_s: float = 30.0
    max_gap_s: float = MAX_GAP_S
    pad_s: float = 0.2  # audio kept before a window's first / after its last segment (onsets)

    def __post_init__(self) -> None:
        if self.channels not in ("mix", "split"):
            raise ValueError(f"channels must be 'mix' or 'split', got {self.channels!r}")
        for name in ("timestamp_share", "prev_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)!r}")
        if not 0.0 <= self.pad_s <= 1.0:
            raise ValueError(f"pad_s must be in [0, 1] s, got {self.pad_s!r}")
        if not 0.0 < self.max_window_s <= 30.0:
            raise ValueError(f"max_window_s must be in (0, 30], got {self.max_window_s!r}")


@dataclass
class WindowItem:
    """One usable window: the sample describing it, its labels and where its audio is."""

    sample: Sample
    labels: list[int]
    offset: float
    duration: float
    channel: int | None
    key: str | None
    content_frames: int

    @property
    def window(self) -> tuple[float, float, int | None]:
        """(offset s, seconds, channel): what :func:`read_window` reads."""
        return self.offset, self.duration, self.channel


def read_window(
    path: str, offset: float, duration: float, channel: int | None, sr: int = SAMPLE_RATE
) -> tuple[np.ndarray, AudioInfo]:
    """``duration`` s from ``offset`` of ``path`` (one channel, or the mix) at ``sr``; reads only those frames."""
    import soundfile as sf
    import soxr

    with sf.SoundFile(path) as f:
        orig_sr, n_ch = int(f.samplerate), int(f.channels)
        first = max(0, int(round(offset * orig_sr)))
        n = max(1, int(round(duration * orig_sr)))
        f.seek(first)
        block = f.read(n, dtype="float32", always_2d=True)
    if channel is not None and not 0 <= channel < n_ch:
        raise ValueError(f"{path}: no channel {channel} (the file has {n_ch})")
    x = block[:, channel] if channel is not None else block.mean(axis=1, dtype=np.float32)
    if x.size == 0:
        raise ValueError(f"{path}: no samples at {offset:.2f} s")
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    clipped = int(np.count_nonzero(np.abs(x) >= AudioCheck.clip_level))
    info = AudioInfo(
        duration=x.shape[0] / float(orig_sr),
        orig_sr=orig_sr,
        channels=n_ch,
        rms_dbfs=20.0 * math.log10(rms) if rms > 0 else -math.inf,
        clipped_fraction=clipped / float(x.shape[0]),
    )
    if orig_sr != sr:
        x = soxr.resample(x, orig_sr, sr, quality="HQ")
    limit = int(math.floor(30.0 * sr))  # rounding must not push a 30 s window past the extractor's window
    return np.ascontiguousarray(x[:limit], dtype=np.float32), info


def _frames(duration: float) -> int:
    return min(3000, int(math.ceil(duration * 100)) + 1)


def _stream_label(st: Stream) -> str:
    return "mix" if st.channel is None else str(st.channel)


class _Reader:
    """Window audio through the feature cache: a cached window is never read again."""

    def __init__(self, fe: Any, cache: FeatureCache | None, check: AudioCheck) -> None:
        self.fe, self.cache, self.check = fe, cache, check
        self._hashes: dict[str, str] = {}

    def key(self, audio: str, w: Window, channel: int | None) -> str | None:
        if self.cache is None:
            return None
        if audio not in self._hashes:
            self._hashes[audio] = file_sha256(audio)  # once per recording, in 1 MB blocks
        span = f"{_WINDOW_KEY_VERSION}:{self._hashes[audio]}:{w.start:.3f}:{w.duration:.3f}:{channel}"
        return hashlib.sha256(span.encode()).hexdigest()

    def info(self, audio: str, w: Window, channel: int | None, key: str | None) -> tuple[AudioInfo, int]:
        """(measurements, content frames); features go into the cache on the way."""
        if self.cache is not None and key is not None:
            entry = self.cache.lookup(key)
            if entry is not None and (entry.has_features or entry.info.problems(self.check)[0] is not None):
                return entry.info, entry.content_frames or _frames(entry.info.duration)
        x, info = read_window(audio, w.start, w.duration, channel)
        frames = _frames(info.duration)
        if self.cache is not None and key is not None:
            feats = extract_features(x, self.fe) if info.problems(self.check)[0] is None else None
            frames = self.cache.put(key, info, feats).content_frames or frames
        return info, frames


def scan_long_form(
    samples: list[Sample],
    processor: Any,
    options: LongFormOptions,
    report: DataReport,
    *,
    cache: FeatureCache | None = None,
    check: AudioCheck | None = None,
    max_label_tokens: int = 448,
) -> list[WindowItem]:
    """Check the long-form rows, cut windows, label them and count everything into ``report``."""
    check = check or AudioCheck()
    max_s = min(options.max_window_s, check.max_duration_s)
    report.settings["long_form"] = {
        "channels": options.channels,
        "timestamp_share": options.timestamp_share,
        "prev_share": options.prev_share,
        "max_window_s": max_s,
    }
    exp = expand(samples, channels=options.channels, max_segment_s=max_s)
    for p, split in exp.problems:
        report.add_skip(p.reason, p.origin, p.message, split)
    tok = processor.tokenizer
    reader = _Reader(processor.feature_extractor, cache, check)
    stats: dict[str, Any] = {
        "recordings": exp.recordings,
        "segments_read": exp.cues_read,
        "segments_split": exp.cues_split,
        "segments_used": 0,
        "windows": 0,
        "timestamped": 0,
        "prev_text": 0,
        "channels_mode": options.channels,
        "per_channel": {},
    }
    items: list[WindowItem] = []
    for st in exp.streams:
        windows = cut_windows(st.cues, max_s, options.max_gap_s, pad_s=options.pad_s, audio_end=st.duration)
        tag = "" if st.channel is None else f"-c{st.channel}"
        for k, w in enumerate(windows):
            wid = f"{st.recording_id}{tag}-{w.start:09.2f}"
            where = f"{st.audio} [{w.start:.2f}-{w.end:.2f} s{'' if st.channel is None else f', channel {st.channel}'}]"
            origin = f"{w.cues[0].origin} (window {where})"
            stamped = timestamps.pick(wid, options.timestamp_share, salt="window-timestamps")
            prev = (
                windows[k - 1].text
                if k > 0 and timestamps.pick(wid, options.prev_share, salt="window-prev")
                else None
            )
            labels = window_labels(w, tok, timestamps=stamped, prev_text=prev, max_tokens=max_label_tokens)
            if len(labels) > max_label_tokens:
                report.add_skip(
                    "label_too_long",
                    origin,
                    f"window transcript is {len(labels)} tokens, over max_label_tokens={max_label_tokens}",
                    st.split,
                )
                continue
            key = reader.key(st.audio, w, st.channel)
            try:
                info, frames = reader.info(st.audio, w, st.channel, key)
            except Exception as exc:  # a torn file: this window goes, the others stay
                report.add_skip("unreadable_audio", origin, f"cannot read the window: {exc}", st.split)
                continue
            skip, warns = info.problems(check)
            if skip is not None:
                msg = (
                    f"window RMS {info.rms_dbfs:.1f} dBFS < {check.silence_dbfs:g} dBFS"
                    if skip == "silent"
                    else skip
                )
                report.add_skip(skip, origin, msg, st.split)
                continue
            for warn in warns:
                report.add_warning(warn, origin, f"{info.clipped_fraction:.2%} of samples at full scale")
            meta = {
                "recording": st.recording_id,
                "offset": round(w.start, 3),
                "channel": _stream_label(st),
                "timestamped": stamped,
                "prev_text": prev is not None,
                "source_sample_rate": st.sample_rate,
            }
            if st.split is not None:
                meta["split"] = st.split
            sample = Sample(wid, st.audio, w.text, w.duration, meta, origin)
            items.append(WindowItem(sample, labels, w.start, w.duration, st.channel, key, frames))
            report.add_usable(w.duration, st.split, len(labels))
            report.add_rate(st.sample_rate, w.duration)
            ch = stats["per_channel"].setdefault(_stream_label(st), {"windows": 0, "seconds": 0.0})
            ch["windows"] += 1
            ch["seconds"] += w.duration
            stats["segments_used"] += len(w.cues)
            stats["windows"] += 1
            stats["timestamped"] += stamped
            stats["prev_text"] += prev is not None
    if samples:
        report.long_form = stats
    return items
