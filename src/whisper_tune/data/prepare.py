"""Turn manifests into a training-ready dataset plus the report of what was dropped.

Why: training and ``whisper-tune data check`` must apply the *same* checks, so both call
:func:`scan` here: load the manifest(s), drop empty/over-long labels, decode every clip
once (missing, empty, unreadable, silent, over-long audio become counted skips) and, when
a feature cache is given, extract log-mel features into it on the way. The returned
dataset then reads features lazily (cache or on the fly), so RAM never holds 3000-frame
features for the whole corpus. A second run over the same data only hashes files: the
cache answers the checks and the features (``FeatureCache.computed`` stays 0).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from whisper_tune.data import timestamps
from whisper_tune.data.audio import SAMPLE_RATE, AudioCheck, AudioError, AudioInfo, decode_audio
from whisper_tune.data.checks import DataReport
from whisper_tune.data.device_features import scan_batched
from whisper_tune.data.features import FeatureCache, extract_features, file_sha256
from whisper_tune.data.longform import LongFormOptions, read_window, scan_long_form
from whisper_tune.data.manifest import LoadResult, Sample, load_manifests
from whisper_tune.data.segments import is_long_form, is_transcript_file, recording_row
from whisper_tune.errors import DataError

__all__ = ["PreparedData", "WhisperDataset", "check_data", "prepare_dataset", "scan"]

log = logging.getLogger(__name__)

Source = str | os.PathLike[str] | Sequence[str] | Sequence[Sample] | LoadResult


@dataclass
class _Entry:
    id: str
    audio: str
    labels: list[int]
    duration: float
    key: str | None
    content_frames: int
    window: tuple[float, float, int | None] | None = None  # (offset s, seconds, channel) of a long recording


class WhisperDataset(Dataset):
    """torch-style map dataset; item = {input_features [n_mels, 3000] float32, labels, id, content_frames}."""

    def __init__(self, entries: list[_Entry], feature_extractor: Any, cache: FeatureCache | None) -> None:
        self.entries = entries
        self.feature_extractor = feature_extractor
        self.cache = cache

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def lengths(self) -> list[int]:
        """Frames of real audio per item (for length-grouped batching)."""
        return [e.content_frames for e in self.entries]

    def features(self, i: int) -> np.ndarray:
        e = self.entries[i]
        if self.cache is not None and e.key is not None:
            f = self.cache.load(e.key)
            if f is not None:
                return f
        if e.window is not None:
            audio, info = read_window(e.audio, *e.window)
        else:
            audio, info = decode_audio(e.audio)
        f = extract_features(audio, self.feature_extractor)
        if self.cache is not None and e.key is not None:
            self.cache.put(e.key, info, f)
        return f

    def __getitem__(self, i: int) -> dict[str, Any]:
        if i < 0:
            i += len(self.entries)
        e = self.entries[i]
        return {
            "input_features": self.features(i),
            "labels": list(e.labels),
            "id": e.id,
            "content_frames": e.content_frames,
        }


@dataclass
class PreparedData:
    samples: list[Sample]
    dataset: WhisperDataset
    report: DataReport
    durations: list[float] = field(default_factory=list)


# ----------------------------------------------------------------------------- scanning

_W: dict[str, Any] = {}
#: A process pool pays a few seconds per worker to import torch/transformers (32 s for 60
#: clips with 2 workers on a loaded 2-core box vs 4 s serially), so it is used only when
#: there are at least this many clips per worker.
MIN_ITEMS_PER_WORKER = 200


def _init_worker(feature_extractor: Any, cache: FeatureCache | None, check: AudioCheck) -> None:
    torch.set_num_threads(1)
    _W.update(fe=feature_extractor, cache=cache, check=check)


@dataclass
class _ScanResult:
    key: str | None = None
    info: AudioInfo | None = None
    reason: str | None = None
    message: str = ""
    content_frames: int = 0
    hit: bool = False
    computed: bool = False
    audio: Any = None  # decoded clip awaiting batched features (device_features.scan_batched)


def _frames_for(duration: float, hop: int = 160) -> int:
    return min(3000, int(math.ceil(duration * SAMPLE_RATE / hop)) + 1)


def _scan_one(path: str, defer: bool = False) -> _ScanResult:
    fe, cache, check = _W["fe"], _W.get("cache"), _W["check"]
    key: str | None = None
    try:
        if cache is not None:
            try:
                key = file_sha256(path)
            except PermissionError as exc:  # it was readable when the manifest was loaded
                return _ScanResult(
                    reason="permission_denied", message=f"{path}: cannot read ({exc.strerror})"
                )
            except OSError as exc:
                return _ScanResult(reason="missing_file", message=f"{path}: cannot read ({exc})")
            entry = cache.lookup(key)
            if entry is not None and (entry.has_features or entry.info.problems(check)[0] is not None):
                frames = entry.content_frames or _frames_for(entry.info.duration)
                return _ScanResult(key, entry.info, content_frames=frames, hit=entry.has_features)
        audio, info = decode_audio(path)
        skip, _ = info.problems(check)
        feats = None
        frames = _frames_for(info.duration)
        if cache is not None and key is not None:
            if skip is None and defer:  # features computed in a batch, then stored by _finish
                return _ScanResult(key, info, content_frames=frames, audio=audio)
            if skip is None:
                feats = extract_features(audio, fe)
            stored = cache.put(key, info, feats)
            frames = stored.content_frames or frames
        return _ScanResult(key, info, content_frames=frames, computed=feats is not None)
    except AudioError as exc:
        return _ScanResult(key, None, exc.reason, str(exc))
    except Exception as exc:  # one odd file must not stop the run
        log.warning("unexpected error on %s", path, exc_info=True)
        return _ScanResult(key, None, "unreadable_audio", f"{path}: {type(exc).__name__}: {exc}")


def _finish(r: _ScanResult, feats: np.ndarray) -> None:
    stored = _W["cache"].put(r.key, r.info, feats)
    r.content_frames, r.computed, r.audio = stored.content_frames or r.content_frames, True, None


def _scan_parallel(
    paths: list[str], num_workers: int, fe: Any, cache: FeatureCache | None, check: AudioCheck
) -> list[_ScanResult] | None:
    """Scan in a spawn-started process pool (fork after torch/OpenMP use can deadlock).

    Returns None when the pool cannot run (e.g. a script without an ``if __name__ ==
    "__main__"`` guard breaks spawn); the caller then scans serially.
    """
    ctx = get_context("spawn")
    try:
        with ProcessPoolExecutor(
            max_workers=num_workers, mp_context=ctx, initializer=_init_worker, initargs=(fe, cache, check)
        ) as ex:
            results = list(ex.map(_scan_one, paths, chunksize=max(1, len(paths) // (num_workers * 8))))
    except (BrokenProcessPool, OSError, RuntimeError) as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        log.warning(
            "process pool failed (%s: %s); scanning in this process instead. A script calling "
            "prepare_dataset(num_workers>1) needs an `if __name__ == '__main__':` guard",
            type(exc).__name__,
            first,
        )
        return None
    if cache is not None:  # workers counted in their own copies of the cache
        cache.hits += sum(r.hit for r in results)
        cache.computed += sum(r.computed for r in results)
    return results


def _as_load_result(source: Source, load_kwargs: dict[str, Any]) -> tuple[LoadResult, list[str]]:
    if isinstance(source, LoadResult):
        return source, []
    items = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    if items and all(isinstance(s, Sample) for s in items):
        return LoadResult(list(items), []), []  # type: ignore[arg-type]
    names = [str(s) for s in items]
    # a bare .srt/.vtt is one long recording: the audio file of the same name beside it
    pairs = [n for n in names if is_transcript_file(n)]
    rest = [n for n in names if n not in pairs]
    loaded = load_manifests(rest, **load_kwargs) if rest or not pairs else LoadResult([], [])
    loaded.samples.extend(recording_row(n) for n in pairs)
    return loaded, names


def scan(
    source: Source,
    processor: Any,
    *,
    max_label_tokens: int = 448,
    long_audio: str = "reject",
    max_duration_s: float = 30.0,
    feature_cache: str | os.PathLike[str] | None = None,
    num_workers: int = 1,
    check: AudioCheck | None = None,
    load_kwargs: dict[str, Any] | None = None,
    long_form: LongFormOptions | None = None,
    feature_device: str | None = None,
) -> tuple[list[Sample], list[_Entry], DataReport, FeatureCache | None]:
    """All checks, no raising on an empty result (``data check`` wants the report anyway).

    Long recordings (rows with a transcript file or segment times, ``data/segments.py``) become
    <= 30 s windows (``data/longform.py``, ``long_form`` options) after the short clips.
    """
    if long_audio not in ("reject", "error"):
        raise DataError(
            f"long_audio={long_audio!r}: training supports 'reject' (counted skip) or 'error'; "
            "long recordings for transcription go through split_long_audio"
        )
    fe = processor.feature_extractor
    window_s = float(getattr(fe, "n_samples", 480000)) / SAMPLE_RATE
    if max_duration_s > window_s:
        raise DataError(f"max_duration_s={max_duration_s} exceeds the feature window of {window_s:g} s")
    check = check or AudioCheck()
    check = AudioCheck(check.silence_dbfs, check.clip_level, check.clip_fraction, max_duration_s)
    loaded, names = _as_load_result(source, dict(load_kwargs or {}))
    report = DataReport(sources=names)
    report.settings = {
        "max_label_tokens": max_label_tokens,
        "long_audio": long_audio,
        "max_duration_s": max_duration_s,
        "silence_dbfs": check.silence_dbfs,
        "clip_fraction": check.clip_fraction,
        "feature_cache": str(feature_cache) if feature_cache else None,
    }
    for sk in loaded.skipped:
        report.add_skip(
            sk.reason,
            sk.origin,
            sk.message + (f" (field '{sk.field}')" if sk.field and f"'{sk.field}'" not in sk.message else ""),
            sk.split,
        )

    long_rows = [s for s in loaded.samples if is_long_form(s)]
    clips = [s for s in loaded.samples if not is_long_form(s)]
    # labels first: cheap, and saves decoding audio whose row is dropped anyway
    tok = processor.tokenizer
    texts = [s.text for s in clips]
    ids: list[list[int]] = list(tok(texts).input_ids) if texts else []
    candidates: list[tuple[Sample, list[int]]] = []
    for s, lab in zip(clips, ids, strict=True):
        if len(lab) > max_label_tokens:
            report.add_skip(
                "label_too_long",
                s.origin,
                f"transcript is {len(lab)} tokens, over max_label_tokens={max_label_tokens} (field 'text')",
                s.meta.get("split"),
            )
        else:
            candidates.append((s, list(lab)))

    cache = FeatureCache(feature_cache, fe) if feature_cache else None
    paths = [s.audio for s, _ in candidates]
    results: list[_ScanResult] | None = None
    if feature_device is not None and cache is not None:  # threads decode, the device does log-mel
        _W.update(fe=fe, cache=cache, check=check)
        results = scan_batched(paths, lambda p: _scan_one(p, True), _finish, fe, feature_device)
    elif num_workers > 1 and len(paths) >= MIN_ITEMS_PER_WORKER * 2:
        results = _scan_parallel(paths, num_workers, fe, cache, check)
    if results is None:
        _init_worker(fe, cache, check)
        results = [_scan_one(p) for p in paths]

    usable: list[Sample] = []
    entries: list[_Entry] = []
    for (s, lab), r in zip(candidates, results, strict=True):
        split = s.meta.get("split")
        split = str(split) if split is not None else None
        if r.reason is not None or r.info is None:
            report.add_skip(r.reason or "unreadable_audio", s.origin, r.message, split)
            continue
        skip, warns = r.info.problems(check)
        for w in warns:
            report.add_warning(
                w, s.origin, f"{s.audio}: {r.info.clipped_fraction:.2%} of samples at full scale"
            )
        if skip == "too_long":
            msg = (
                f"{s.audio}: clip is {r.info.duration:.1f} s, over the {max_duration_s:g} s limit "
                "(Whisper would truncate it silently; long_audio='reject')"
            )
            if long_audio == "error":
                raise DataError(f"{s.origin}: {msg}")
            report.add_skip("too_long", s.origin, msg, split)
            continue
        if skip == "silent":
            report.add_skip(
                "silent",
                s.origin,
                f"{s.audio}: RMS {r.info.rms_dbfs:.1f} dBFS < {check.silence_dbfs:g} dBFS",
                split,
            )
            continue
        if skip is not None:
            report.add_skip(skip, s.origin, s.audio, split)
            continue
        declared = s.duration
        if declared is not None and abs(declared - r.info.duration) > max(0.5, 0.1 * r.info.duration):
            report.add_warning(
                "duration_mismatch",
                s.origin,
                f"{s.audio}: manifest says {declared:.2f} s, the audio lasts {r.info.duration:.2f} s",
            )
        s.duration = r.info.duration
        report.add_usable(r.info.duration, split, len(lab))
        report.add_rate(r.info.orig_sr, r.info.duration)
        usable.append(s)
        entries.append(_Entry(s.id, s.audio, lab, r.info.duration, r.key, r.content_frames))
    if long_rows:
        lf = long_form or LongFormOptions(timestamp_share=0.0, prev_share=0.0)  # eval-style unless asked
        for item in scan_long_form(
            long_rows, processor, lf, report, cache=cache, check=check, max_label_tokens=max_label_tokens
        ):
            usable.append(item.sample)
            ws = item.sample
            entries.append(
                _Entry(
                    ws.id, ws.audio, item.labels, item.duration, item.key, item.content_frames, item.window
                )
            )
    return usable, entries, report, cache


def prepare_dataset(
    source: Source,
    processor: Any,
    *,
    max_label_tokens: int = 448,
    long_audio: str = "reject",
    feature_cache: str | os.PathLike[str] | None = None,
    num_workers: int = 1,
    max_duration_s: float = 30.0,
    check: AudioCheck | None = None,
    load_kwargs: dict[str, Any] | None = None,
    timestamp_share: float = 0.0,
    long_form: LongFormOptions | None = None,
    feature_device: str | None = None,
) -> PreparedData:
    """Checked, lazily-featurized dataset + report; raises DataError if nothing is usable.

    ``source``: manifest path(s) (any format ``load_manifest`` reads), a ``LoadResult`` or
    a list of ``Sample``. ``load_kwargs`` go to ``load_manifest`` (``root``,
    ``allow_outside_root``, ``text_column``...). ``max_duration_s`` < 30 rejects clips
    that would not fit a shortened encoder context (counted as ``too_long``).
    ``timestamp_share``: this share of the clips (stable by id) gets timestamped labels
    (``whisper_tune.data.timestamps``); ``report.settings["timestamped"]`` counts them.
    ``long_form``: how long recordings are windowed (channels, timestamp/prev-text shares);
    None: down-mixed windows with plain ``<|notimestamps|>`` labels. ``feature_device`` (e.g.
    ``"cuda"``): features missing from ``feature_cache`` are computed in batches there
    (``data/device_features.py``) instead of by ``num_workers`` CPU processes.
    """
    if not 0.0 <= timestamp_share <= 1.0:
        raise DataError(f"timestamp_share must be in [0, 1], got {timestamp_share}")
    usable, entries, report, cache = scan(
        source,
        processor,
        max_label_tokens=max_label_tokens,
        long_audio=long_audio,
        max_duration_s=max_duration_s,
        feature_cache=feature_cache,
        num_workers=num_workers,
        check=check,
        load_kwargs=load_kwargs,
        long_form=long_form,
        feature_device=feature_device,
    )
    if not usable:
        raise DataError("no usable rows in the data:\n" + report.summary())
    if report.n_skipped:
        log.warning("data: %d usable, %d skipped (%s)", report.usable, report.n_skipped, dict(report.skipped))
    if timestamp_share > 0.0:
        stamped = 0
        for e in entries:
            if (
                e.window is None
                and len(e.labels) + 2 <= max_label_tokens
                and timestamps.pick(e.id, timestamp_share)
            ):
                e.labels = timestamps.timestamp_labels(e.labels, processor.tokenizer, e.duration)
                stamped += 1
        report.settings["timestamped"] = stamped
        report.settings["timestamp_share"] = timestamp_share
    ds = WhisperDataset(entries, processor.feature_extractor, cache)
    return PreparedData(usable, ds, report, [e.duration for e in entries])


def check_data(
    sources: str | list[str],
    *,
    processor: Any,
    max_label_tokens: int = 448,
    max_duration_s: float = 30.0,
    feature_cache: str | None = None,
    num_workers: int = 1,
    load_kwargs: dict[str, Any] | None = None,
    long_form: LongFormOptions | None = None,
) -> DataReport:
    """Run every training check over ``sources`` and return the :class:`DataReport` (never raises for bad rows).

    ``processor`` counts the label tokens (and extracts features into ``feature_cache``): the
    one of the model to train; ``whisper-tune data check`` builds it from ``--model``.
    """
    _, _, report, _ = scan(
        sources if isinstance(sources, str) else list(sources),
        processor,
        max_label_tokens=max_label_tokens,
        max_duration_s=max_duration_s,
        feature_cache=feature_cache,
        num_workers=num_workers,
        load_kwargs=load_kwargs,
        long_form=long_form,
    )
    return report
