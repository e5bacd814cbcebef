"""Packing short clips into full windows (data.pack_share): plan, features, labels, limits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from whisper_tune.data.packing import PAUSE_FRAMES, PackedDataset, plan_packs
from whisper_tune.data.prepare import prepare_dataset

TEXTS = [
    "My card was declined.",
    "Please freeze my account.",
    "What is my balance?",
    "I want to dispute a charge.",
    "Send five hundred dollars to Emily.",
    "The birch canoe slid on the smooth planks.",
]


@pytest.fixture
def prepared(tmp_path: Path, processor: Any, write_wav: Any, jsonl: Any) -> Any:
    rows = []
    for i, text in enumerate(TEXTS):
        wav = write_wav(tmp_path / f"c{i}.wav", seconds=2.0 + 0.5 * i, seed=i)
        rows.append({"audio_filepath": str(wav), "text": text})
    return prepare_dataset(jsonl(tmp_path / "train.jsonl", rows), processor)


def test_plan_is_deterministic_and_respects_the_window() -> None:
    frames = [400, 250, 900, 1200, 300, 700, 2800, 500]
    plan = plan_packs(frames, [True] * 8, share=1.0, max_frames=2936, seed=3)
    assert plan == plan_packs(frames, [True] * 8, share=1.0, max_frames=2936, seed=3)
    assert sorted(i for g in plan.groups for i in g) == list(range(8))  # every clip exactly once
    for group, pauses in zip(plan.groups, plan.pauses, strict=True):
        assert len(pauses) == max(0, len(group) - 1)
        assert all(PAUSE_FRAMES[0] <= p <= PAUSE_FRAMES[1] for p in pauses)
        assert sum(frames[i] for i in group) + sum(pauses) <= 2936
    assert any(len(g) > 1 for g in plan.groups)


def test_share_zero_and_unpackable_clips_stay_single() -> None:
    frames = [300] * 6
    assert all(len(g) == 1 for g in plan_packs(frames, [True] * 6, 0.0, 3000, 0).groups)
    plan = plan_packs(frames, [True, False, True, False, True, False], 1.0, 3000, 0)
    packed = {i for g in plan.groups if len(g) > 1 for i in g}
    assert packed <= {0, 2, 4} and packed
    with pytest.raises(ValueError, match="pack share"):
        plan_packs(frames, [True] * 6, 1.5, 3000, 0)


def test_packed_item_joins_features_and_transcripts(prepared: Any, processor: Any) -> None:
    base = prepared.dataset
    packed = PackedDataset(base, processor.tokenizer, 1.0, max_frames=2936, seed=0)
    assert packed.plan.packed_clips == len(TEXTS)  # 2-4.5 s clips: all fit in two windows or fewer
    k = next(j for j in range(len(packed)) if "+" in packed[j]["id"])
    item = packed[k]
    ids = item["id"].split("+")
    members = [int(i) for i in (base.entries.index(next(e for e in base.entries if e.id == x)) for x in ids)]
    tok = processor.tokenizer
    text = tok.decode(item["labels"], skip_special_tokens=True)
    assert text == " ".join(TEXTS[i] for i in members)  # spaces between clips, nothing glued
    assert item["labels"][-1] == tok.eos_token_id
    assert tok.convert_tokens_to_ids("<|notimestamps|>") in item["labels"]
    feats = item["input_features"]
    assert feats.shape == np.asarray(base[0]["input_features"]).shape
    first = np.asarray(base[members[0]]["input_features"])
    n0 = base.entries[members[0]].content_frames
    np.testing.assert_array_equal(feats[:, :n0], first[:, :n0])  # the first clip's frames, unchanged
    second = np.asarray(base[members[1]]["input_features"])
    pause = item["content_frames"] - sum(base.entries[i].content_frames for i in members)
    assert PAUSE_FRAMES[0] * (len(members) - 1) <= pause <= PAUSE_FRAMES[1] * (len(members) - 1)
    assert np.all(feats[:, n0 : n0 + PAUSE_FRAMES[0]] == first.min())  # pause = the clip's silence
    start = next(s for s in range(n0, n0 + PAUSE_FRAMES[1] + 1) if np.any(feats[:, s] != first.min()))
    n1 = base.entries[members[1]].content_frames
    np.testing.assert_array_equal(feats[:, start : start + n1], second[:, :n1])
    assert packed.lengths[k] == item["content_frames"]


def test_long_transcripts_split_instead_of_exceeding_the_label_limit(prepared: Any, processor: Any) -> None:
    packed = PackedDataset(prepared.dataset, processor.tokenizer, 1.0, max_frames=2936, max_label_tokens=20)
    assert all(len(packed[k]["labels"]) <= 20 or "+" not in packed[k]["id"] for k in range(len(packed)))
    assert sorted(x for k in range(len(packed)) for x in packed[k]["id"].split("+")) == sorted(
        e.id for e in prepared.dataset.entries
    )


def test_subset_and_single_items_pass_through(prepared: Any, processor: Any) -> None:
    import torch

    sub = torch.utils.data.Subset(prepared.dataset, range(3))
    packed = PackedDataset(sub, processor.tokenizer, 0.0)
    assert len(packed) == 3
    assert {packed[k]["id"] for k in range(3)} == {e.id for e in prepared.dataset.entries[:3]}
