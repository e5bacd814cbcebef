"""Log-mel extraction, the compact on-disk cache, and the collator."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from wt_data_testutil import speechlike, write_jsonl  # noqa: I001

from whisper_tune.data import WhisperCollator, prepare_dataset
from whisper_tune.data.features import (
    compact_features,
    expand_features,
    extract_features,
    feature_settings_key,
)


class CountingExtractor:
    """Delegates to a real feature extractor and counts calls."""

    def __init__(self, fe: Any) -> None:
        self.fe = fe
        self.calls = 0

    def __call__(self, *a: Any, **k: Any) -> Any:
        self.calls += 1
        return self.fe(*a, **k)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.fe, name)


class ProcWith:
    def __init__(self, processor: Any, fe: Any) -> None:
        self.tokenizer = processor.tokenizer
        self.feature_extractor = fe


def test_compact_roundtrip_is_exact(processor: Any) -> None:
    f = extract_features(speechlike(4.0), processor.feature_extractor)
    assert f.shape == (80, 3000) and f.dtype == np.float32
    head, fill = compact_features(f)
    assert 390 <= head.shape[1] <= 410
    assert np.array_equal(expand_features(head, fill, 3000), f)


def test_extract_refuses_truncation_and_stereo(processor: Any) -> None:
    with pytest.raises(ValueError, match="split"):
        extract_features(np.zeros(31 * 16000, np.float32), processor.feature_extractor)
    with pytest.raises(ValueError, match="down-mix"):
        extract_features(np.zeros((16000, 2), np.float32), processor.feature_extractor)


def test_settings_key_depends_on_feature_settings(processor: Any) -> None:
    from transformers import WhisperFeatureExtractor

    assert feature_settings_key(processor.feature_extractor) == feature_settings_key(
        WhisperFeatureExtractor()
    )
    assert feature_settings_key(WhisperFeatureExtractor(feature_size=128)) != feature_settings_key(
        processor.feature_extractor
    )


def _corpus(tmp_path: Path, write_wav: Any, n: int = 4) -> Path:
    rows = []
    for i in range(n):
        write_wav(tmp_path / "audio" / f"c{i}.wav", seconds=1.0 + 0.5 * i, seed=i)
        rows.append({"audio_filepath": f"audio/c{i}.wav", "text": f"card number {i}"})
    return write_jsonl(tmp_path / "train.jsonl", rows)


def test_second_run_does_not_recompute(tmp_path: Path, write_wav: Any, processor: Any) -> None:
    m = _corpus(tmp_path, write_wav)
    cache = tmp_path / "cache"
    fe1 = CountingExtractor(processor.feature_extractor)
    p1 = prepare_dataset(str(m), ProcWith(processor, fe1), feature_cache=str(cache))
    assert fe1.calls == 4 and p1.dataset.cache is not None and p1.dataset.cache.computed == 4
    first = [p1.dataset[i]["input_features"] for i in range(4)]
    assert fe1.calls == 4  # items come from the cache

    fe2 = CountingExtractor(processor.feature_extractor)
    p2 = prepare_dataset(str(m), ProcWith(processor, fe2), feature_cache=str(cache))
    second = [p2.dataset[i]["input_features"] for i in range(4)]
    assert fe2.calls == 0
    assert p2.dataset.cache is not None and (p2.dataset.cache.computed, p2.dataset.cache.hits) == (0, 4)
    for a, b in zip(first, second, strict=True):
        assert np.array_equal(a, b)
    # the cached features equal a direct extraction
    direct = extract_features(
        __import__("whisper_tune.data", fromlist=["load_audio"]).load_audio(p2.samples[3].audio),
        processor.feature_extractor,
    )
    assert np.array_equal(second[3], direct)
    assert p2.report.to_dict() == p1.report.to_dict()


def test_cache_is_keyed_by_content_not_name(tmp_path: Path, write_wav: Any, processor: Any) -> None:
    m = _corpus(tmp_path, write_wav, n=2)
    cache = tmp_path / "cache"
    prepare_dataset(str(m), processor, feature_cache=str(cache))
    moved = tmp_path / "moved"
    moved.mkdir()
    shutil.copy(tmp_path / "audio" / "c1.wav", moved / "renamed.wav")
    m2 = write_jsonl(moved / "m.jsonl", [{"audio_filepath": "renamed.wav", "text": "x"}])
    fe = CountingExtractor(processor.feature_extractor)
    p = prepare_dataset(str(m2), ProcWith(processor, fe), feature_cache=str(cache))
    assert fe.calls == 0 and p.dataset.cache is not None and p.dataset.cache.hits == 1


def test_lazy_dataset_without_cache_keeps_nothing_in_ram(
    tmp_path: Path, write_wav: Any, processor: Any
) -> None:
    m = _corpus(tmp_path, write_wav, n=2)
    fe = CountingExtractor(processor.feature_extractor)
    p = prepare_dataset(str(m), ProcWith(processor, fe))
    assert fe.calls == 0  # checks decode audio, features wait until asked for
    item = p.dataset[1]
    assert fe.calls == 1
    assert item["input_features"].shape == (80, 3000) and item["id"] == p.samples[1].id
    ids = processor.tokenizer("card number 1").input_ids
    assert item["labels"] == ids and ids[0] == processor.tokenizer.convert_tokens_to_ids(
        "<|startoftranscript|>"
    )
    assert p.durations == pytest.approx([1.0, 1.5])
    assert p.dataset.lengths[1] == pytest.approx(151, abs=2)


def _items(labels: list[list[int]], frames: list[int] | None = None) -> list[dict[str, Any]]:
    frames = frames or [100] * len(labels)
    return [
        {
            "input_features": np.full((80, 3000), i, np.float32),
            "labels": lab,
            "id": str(i),
            "content_frames": fr,
        }
        for i, (lab, fr) in enumerate(zip(labels, frames, strict=True))
    ]


def test_collator_pads_and_strips_start_once(processor: Any) -> None:
    sot = 50257
    col = WhisperCollator(processor, decoder_start_token_id=sot)
    b = col(_items([[sot, sot, 1, 2], [sot, 5]]))
    assert b["input_features"].shape == (2, 80, 3000) and b["input_features"].dtype == torch.float32
    assert b["labels"].tolist() == [[sot, 1, 2], [5, -100, -100]]
    assert b["labels"].dtype == torch.long
    # not every row starts with it -> nothing stripped
    b = col(_items([[sot, 1], [7, 8, 9]]))
    assert b["labels"].tolist() == [[sot, 1, -100], [7, 8, 9]]
    assert set(b) == {"input_features", "labels"}


def test_collator_cuts_frames_but_never_truncates_audio(processor: Any) -> None:
    col = WhisperCollator(processor, decoder_start_token_id=50257, n_frames=1000)
    b = col(_items([[1], [2]], frames=[400, 1000]))
    assert b["input_features"].shape == (2, 80, 1000)
    with pytest.raises(ValueError, match="1200 frames.*n_frames=1000"):
        col(_items([[1]], frames=[1200]))


def test_collator_with_real_dataset_items(tmp_path: Path, write_wav: Any, processor: Any) -> None:
    m = _corpus(tmp_path, write_wav, n=3)
    p = prepare_dataset(str(m), processor, feature_cache=str(tmp_path / "c"))
    sot = processor.tokenizer.convert_tokens_to_ids("<|startoftranscript|>")
    b = WhisperCollator(processor, sot, n_frames=500)([p.dataset[i] for i in range(3)])
    assert b["input_features"].shape == (3, 80, 500)
    full = torch.from_numpy(p.dataset[0]["input_features"][:, :500])
    assert torch.equal(b["input_features"][0], full)
    assert (b["labels"][:, 0] != sot).all()
