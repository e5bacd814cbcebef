"""What a training worker reads: the prepared train/eval data, its lengths and ids, the context.

Why: the launcher (data checks and reports before any worker starts) and every worker
(the datasets it trains on) must prepare the data the same way and derive the same encoder
context from it without talking to each other; these functions are that shared, deterministic
part. The data pipeline itself (manifest checks, log-mel features) is ``whisper_tune.data``.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from whisper_tune.data.longform import LongFormOptions
from whisper_tune.data.packing import PackedDataset
from whisper_tune.errors import DataError
from whisper_tune.train import _deps
from whisper_tune.train.config import JobConfig
from whisper_tune.train.fastpath import FULL_FRAMES, choose_encoder_frames
from whisper_tune.train.guard import guard_in_training, resolve_guard_manifest

__all__ = ["context_frames", "item_ids", "item_lengths", "limit", "load_data", "load_guard", "pack"]

log = logging.getLogger(__name__)


def load_data(
    job: JobConfig,
    processor: Any,
    feature_cache: str | None,
    num_workers: int | None = None,
    feature_device: str | None = None,
) -> tuple[Any, Any]:
    """PreparedData for the train and eval manifests (raises DataError with the report).

    ``num_workers``: scan processes (default ``data.num_workers``); a training worker passes 1,
    since the launcher filled the feature cache and a spawned pool costs more than cache reads.
    ``feature_device``: compute missing features in batches on that device (the launcher passes
    ``"cuda"`` for a GPU job on a machine with one: ``data/device_features.py``)."""
    d = job.data
    load_kwargs: dict[str, Any] = {}
    if d.text_column:
        load_kwargs["text_column"] = d.text_column
    if d.audio_column:
        load_kwargs["audio_column"] = d.audio_column
    if d.root:
        load_kwargs["root"] = d.root
    prev_share = d.window_prev_share
    if prev_share > 0 and job.train.cache_encoder_outputs:  # its collator has no prompt masking
        log.warning(
            "data.window_prev_share=%g ignored: train.cache_encoder_outputs trains without prompts",
            prev_share,
        )
        prev_share = 0.0
    out = []
    # the flag, not the path: data.eval may name the same manifest (eval: plain labels, no prompt)
    for path, train in ((d.train, True), (d.eval, False)):
        out.append(
            _deps.prepare_dataset(
                path,
                processor,
                max_label_tokens=d.max_label_tokens,
                long_audio=d.long_audio,
                max_duration_s=job.train.max_clip_seconds(),
                feature_cache=feature_cache,
                num_workers=num_workers or d.num_workers,
                feature_device=feature_device,
                load_kwargs=load_kwargs or None,
                # timestamped labels only for training; eval stays <|notimestamps|> like the guard
                timestamp_share=d.timestamp_share if train else 0.0,
                long_form=LongFormOptions(
                    channels=d.channels,
                    timestamp_share=d.window_timestamp_share if train else 0.0,
                    prev_share=prev_share if train else 0.0,
                    max_window_s=job.train.max_clip_seconds(),
                ),
            )
        )
    return out[0], out[1]


def load_guard(job: JobConfig, processor: Any, feature_cache: str | None) -> Any | None:
    """PreparedData of the real-speech guard (``data.guard``), or None for ``data.guard: none``
    and for ``data.guard_at: export`` (the guard is then scored only on the export, by the driver).

    Raises DataError naming the guard when it is missing or has no usable clip: a run goes on
    without a guard only when asked to.
    """
    if not guard_in_training(job.data):
        return None
    manifest = resolve_guard_manifest(job.data.guard, job.data.max_guard_samples)
    assert manifest is not None  # guard_in_training: data.guard is on
    try:
        return _deps.prepare_dataset(
            manifest,
            processor,
            max_label_tokens=job.data.max_label_tokens,
            long_audio="reject",
            max_duration_s=job.train.max_clip_seconds(),
            feature_cache=feature_cache,
        )
    except DataError as exc:
        raise DataError(f"data.guard: {manifest}: {exc}") from exc


def context_frames(job: JobConfig, train_data: Any, eval_data: Any, guard_data: Any = None) -> int:
    """Mel frames of the encoder context for this job (3000 = Whisper's 30 s window).

    ``train.encoder_frames`` as given; with ``train.short_audio`` the longest usable clip of
    the train, eval and guard data plus ``train.encoder_margin_frames`` (rounded up to 16 frames),
    so no evaluated clip is cut.
    Deterministic, so the launcher and every worker agree without talking to each other.
    """
    t = job.train
    if t.encoder_frames is not None:
        return int(t.encoder_frames)
    if not t.short_audio:
        return FULL_FRAMES
    guard = guard_data.durations if guard_data is not None else []
    durations = [float(x) for x in (*train_data.durations, *eval_data.durations, *guard) if x is not None]
    if not durations:  # older PreparedData without durations: fall back to the frame counts
        durations = [f / 100.0 for f in (*item_lengths(train_data.dataset), *item_lengths(eval_data.dataset))]
    return choose_encoder_frames(max(durations), t.encoder_margin_frames)


def _base_and_index(ds: Any) -> tuple[Any, list[int] | None]:
    if isinstance(ds, torch.utils.data.Subset):
        return ds.dataset, list(ds.indices)
    return ds, None


def item_lengths(ds: Any) -> list[float]:
    """Frames of real audio per item (``WhisperDataset.lengths``), through ``Subset`` too."""
    base, index = _base_and_index(ds)
    lengths = getattr(base, "lengths", None)
    if lengths is None:
        raise TypeError(f"{type(base).__name__} has no lengths; cannot group batches by length")
    lengths = list(lengths)
    return [float(x) for x in (lengths if index is None else [lengths[i] for i in index])]


def item_ids(ds: Any) -> list[str]:
    """Item ids in order, without loading features when the dataset exposes its entries."""
    base, index = _base_and_index(ds)
    entries = getattr(base, "entries", None)
    if entries is not None:
        picked = entries if index is None else [entries[i] for i in index]
        return [str(e.id) for e in picked]
    return [str(ds[i].get("id", i)) for i in range(len(ds))]


def limit(dataset: Any, n: int | None) -> Any:
    """The first ``n`` items (``data.max_train_samples`` / ``max_eval_samples``); all when None."""
    if n is None or n >= len(dataset):
        return dataset
    return torch.utils.data.Subset(dataset, range(n))


def pack(job: JobConfig, train: Any, tokenizer: Any) -> Any:
    """``train`` with ``data.pack_share`` of its clips packed into full windows (data/packing.py)."""
    if job.data.pack_share <= 0:
        return train
    packed = PackedDataset(
        train,
        tokenizer,
        job.data.pack_share,
        max_frames=FULL_FRAMES - job.train.encoder_margin_frames,
        max_label_tokens=job.data.max_label_tokens,
        seed=job.train.seed,
    )
    groups = packed.plan.groups
    log.info(
        "packing: %d of %d train clips in %d full windows; %d training items",
        packed.plan.packed_clips,
        len(train),
        sum(1 for g in groups if len(g) > 1),
        len(packed),
    )
    return packed
