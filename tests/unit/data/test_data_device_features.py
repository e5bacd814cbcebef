"""Batched log-mel on a device (the launcher's GPU path), checked on CPU against the per-clip path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_data_prepare import _crafted  # noqa: I001

from whisper_tune.data import prepare_dataset
from whisper_tune.data.device_features import extract_batch, launcher_feature_device, scan_batched
from whisper_tune.data.features import extract_features


def test_batched_scan_matches_the_per_clip_path_on_every_case(
    tmp_path: Path, write_wav: Any, processor: Any
) -> None:
    m, _bad, good = _crafted(tmp_path, write_wav)
    one = prepare_dataset(str(m), processor, feature_cache=str(tmp_path / "a"))
    batched = prepare_dataset(str(m), processor, feature_cache=str(tmp_path / "b"), feature_device="cpu")
    assert (
        [s.origin for s in batched.samples] == [s.origin for s in one.samples] == [f"{m}:{i}" for i in good]
    )
    assert batched.report.skipped == one.report.skipped and batched.report.warnings == one.report.warnings
    assert batched.dataset.cache is not None and one.dataset.cache is not None
    assert batched.dataset.cache.computed == one.dataset.cache.computed == len(good)
    for i in range(len(one.dataset)):
        a, b = one.dataset[i], batched.dataset[i]
        assert a["content_frames"] == b["content_frames"] and a["labels"] == b["labels"]
        np.testing.assert_allclose(a["input_features"], b["input_features"], atol=1e-5)
    # a second run answers from the cache: nothing computed, same features
    again = prepare_dataset(str(m), processor, feature_cache=str(tmp_path / "b"), feature_device="cpu")
    assert again.dataset.cache is not None and again.dataset.cache.computed == 0
    np.testing.assert_array_equal(again.dataset[0]["input_features"], batched.dataset[0]["input_features"])


def test_extract_batch_checks_like_extract_features(processor: Any) -> None:
    fe = processor.feature_extractor
    rng = np.random.default_rng(0)
    clips = [0.1 * rng.standard_normal(n).astype(np.float32) for n in (8000, 24000, 1600)]
    got = extract_batch(clips, fe, "cpu")
    for clip, f in zip(clips, got, strict=True):
        np.testing.assert_allclose(f, extract_features(clip, fe), atol=1e-5)
    assert extract_batch([], fe, "cpu") == []
    # an extractor that normalizes takes its public __call__ (same result as per clip)
    import copy

    norm = copy.deepcopy(fe)
    norm.do_normalize = True
    for clip, f in zip(clips, extract_batch(clips, norm, "cpu"), strict=True):
        np.testing.assert_allclose(f, extract_features(clip, norm), atol=1e-5)
    with pytest.raises(ValueError, match="mono"):
        extract_batch([np.zeros((2, 100), np.float32)], fe, "cpu")
    with pytest.raises(ValueError, match="exceeds the 30 s window"):
        extract_batch([np.zeros(16000 * 31, np.float32)], fe, "cpu")


def test_scan_batched_keeps_order_and_bounds_memory_by_chunks() -> None:
    class R:
        def __init__(self, p: str) -> None:
            self.p, self.audio = p, (np.zeros(1600, np.float32) if int(p) % 2 else None)

    seen: list[tuple[str, tuple[int, ...]]] = []

    class FE:
        n_samples = 480000
        calls: list[int] = []

        def __call__(self, clips: list[np.ndarray], **kw: Any) -> dict[str, np.ndarray]:
            self.calls.append(len(clips))
            return {"input_features": np.zeros((len(clips), 2, 3), np.float32)}

    fe = FE()
    out = scan_batched(
        [str(i) for i in range(10)], R, lambda r, f: seen.append((r.p, f.shape)), fe, "cpu", batch=2, chunk=4
    )
    assert [r.p for r in out] == [str(i) for i in range(10)]
    assert [p for p, _ in seen] == ["1", "3", "5", "7", "9"] and fe.calls == [2, 2, 1]
    assert launcher_feature_device(False) is None
    import torch

    expect = "cuda" if torch.cuda.is_available() else None
    assert launcher_feature_device(True) == launcher_feature_device(None) == expect
