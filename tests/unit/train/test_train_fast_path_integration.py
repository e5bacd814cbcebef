"""The fast path inside the training pipeline: config rules, context choice, length grouping,
and the export that gives a short-context model its 30 s position table back."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch

from whisper_tune.config import ConfigError
from whisper_tune.train.config import JobConfig


def _job(**train: Any) -> JobConfig:
    return JobConfig.from_mapping({"data": {"train": "t.jsonl", "eval": "e.jsonl"}, "train": train})


@pytest.mark.parametrize(
    ("train", "needle"),
    [
        ({"encoder_frames": 151}, "train.encoder_frames: must be an even"),
        ({"encoder_frames": 3002}, "train.encoder_frames: must be an even"),
        ({"encoder_frames": 0}, "train.encoder_frames: must be an even"),
        ({"encoder_frames": 64}, "no room for audio"),
        ({"encoder_frames": 400, "short_audio": True}, "set only one"),
        ({"encoder_margin_frames": 16}, "train.encoder_margin_frames"),
        (
            {"strategy": "decoder", "cache_encoder_outputs": True, "short_audio": True},
            "train.cache_encoder_outputs: cannot be combined",
        ),
        ({"compile": "sometimes"}, "train.compile"),
        ({"group_by_length": "yes"}, "train.group_by_length"),
    ],
)
def test_bad_fast_path_settings_name_the_key(train: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        _job(**train)


def test_fast_path_defaults_keep_the_30s_context() -> None:
    t = _job().train
    assert (t.encoder_frames, t.short_audio, t.group_by_length, t.compile) == (None, False, False, "auto")
    assert not t.shortens_context() and t.max_clip_seconds() == 30.0
    t3 = _job(encoder_frames=3000).train
    assert not t3.shortens_context() and t3.max_clip_seconds() == 30.0
    t4 = _job(encoder_frames=464, compile=True).train
    assert t4.max_clip_seconds() == pytest.approx(4.0) and t4.compile is True


@dataclass
class _Prepared:
    durations: list[float]
    dataset: Any = field(default=None)


def test_context_frames_follows_the_longest_clip_of_train_and_eval() -> None:
    from whisper_tune.train.inputs import context_frames

    train, evaluation = _Prepared([1.2, 3.31]), _Prepared([7.9, 0.4])
    assert context_frames(_job(), train, evaluation) == 3000
    assert context_frames(_job(encoder_frames=800), train, evaluation) == 800
    # 7.9 s = 790 frames + 64 margin = 854 -> rounded up to 864 (a multiple of 16)
    assert context_frames(_job(short_audio=True), train, evaluation) == 864
    assert context_frames(_job(short_audio=True, encoder_margin_frames=200), train, evaluation) == 992
    assert context_frames(_job(short_audio=True), _Prepared([40.0]), evaluation) == 3000  # capped


class _LengthDataset(torch.utils.data.Dataset):
    def __init__(self, lengths: list[int]) -> None:
        self.lengths = lengths

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"id": i}


def test_group_by_length_trainer_sees_every_sample_once(tmp_path: Path, tiny_model_dir: Path) -> None:
    from transformers import Seq2SeqTrainingArguments, WhisperForConditionalGeneration

    from whisper_tune.train.inputs import item_lengths
    from whisper_tune.train.sampler import LengthBucketSampler
    from whisper_tune.train.trainer import WhisperTrainer

    lengths = [(i * 37) % 290 + 10 for i in range(23)]
    subset = torch.utils.data.Subset(_LengthDataset(lengths), range(3, 23))
    assert item_lengths(subset) == [float(x) for x in lengths[3:]]
    args = Seq2SeqTrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        use_cpu=True,
        report_to="none",
        remove_unused_columns=False,
    )
    trainer = WhisperTrainer(
        model=WhisperForConditionalGeneration.from_pretrained(tiny_model_dir),
        args=args,
        train_dataset=subset,
        data_collator=lambda rows: {"ids": [r["id"] for r in rows]},
    )
    trainer.length_sampler = LengthBucketSampler(item_lengths(subset), 4, seed=1)
    batches = [b["ids"] for b in trainer.get_train_dataloader()]
    seen = sorted(i for b in batches for i in b)
    assert seen == list(range(3, 23))  # every sample exactly once
    assert all(len(b) == 4 for b in batches)
    # within a batch the lengths are close: sorted buckets, not a random mix
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches)
    assert spread < 0.5 * 5 * (max(lengths) - min(lengths))


def test_compiled_runs_drop_the_last_train_batch_but_evaluate_every_clip(tmp_path: Path) -> None:
    from transformers import Seq2SeqTrainingArguments

    from whisper_tune.models.random_init import make_random_whisper
    from whisper_tune.train.trainer import WhisperTrainer

    args = Seq2SeqTrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        per_device_eval_batch_size=8,
        dataloader_drop_last=True,  # what training_args_overrides sets for a compiled model
        use_cpu=True,
        report_to="none",
        remove_unused_columns=False,
    )
    trainer = WhisperTrainer(
        model=make_random_whisper("test")[0],
        args=args,
        train_dataset=list(range(6)),
        eval_dataset=list(range(5)),
        data_collator=lambda rows: {"ids": list(rows)},
    )
    assert [len(b["ids"]) for b in trainer.get_train_dataloader()] == [4]
    assert [b["ids"] for b in trainer.get_eval_dataloader()] == [[0, 1, 2, 3, 4]]
    assert trainer.args.dataloader_drop_last is True


def test_restore_full_context_rebuilds_whispers_table() -> None:
    from whisper_tune.models.random_init import make_random_whisper
    from whisper_tune.runs import restore_full_context
    from whisper_tune.train.fastpath import shorten_encoder_context

    model, _ = make_random_whisper("test")
    full = model.get_encoder().embed_positions.weight.detach().clone()
    assert restore_full_context(model) is None  # already 30 s: untouched
    shorten_encoder_context(model, 200)
    assert model.config.max_source_positions == 100
    assert restore_full_context(model) == 200
    enc = model.get_encoder()
    assert model.config.max_source_positions == 1500 and enc.embed_positions.weight.shape[0] == 1500
    assert not enc.embed_positions.weight.requires_grad
    torch.testing.assert_close(enc.embed_positions.weight.detach(), full)
    feats = torch.zeros(1, model.config.num_mel_bins, 3000)
    with torch.no_grad():
        out = model.generate(feats, max_new_tokens=2)
    assert out.shape[0] == 1


def test_hf_whisper_position_table_is_fixed_at_construction_but_not_after_loading(
    tiny_model_dir: Path,
) -> None:
    """Why strategies.apply_strategy freezes it: transformers 5.x from_pretrained unfreezes it."""
    from transformers import WhisperForConditionalGeneration

    from whisper_tune.models.random_init import make_random_whisper

    model, _ = make_random_whisper("test")
    assert not model.get_encoder().embed_positions.weight.requires_grad
    loaded = WhisperForConditionalGeneration.from_pretrained(tiny_model_dir)
    assert loaded.get_encoder().embed_positions.weight.requires_grad  # if this fails, HF fixed it


def test_strategies_keep_the_encoder_position_table_fixed_after_from_pretrained(tiny_model_dir: Path) -> None:
    from transformers import WhisperForConditionalGeneration

    from whisper_tune.train.config import TrainSection
    from whisper_tune.train.strategies import apply_strategy

    model = WhisperForConditionalGeneration.from_pretrained(tiny_model_dir)
    model, _ = apply_strategy(model, TrainSection(strategy="full"))
    assert not model.get_encoder().embed_positions.weight.requires_grad
    assert model.get_decoder().embed_positions.weight.requires_grad  # the decoder's is learned


def test_export_of_a_bf16_short_context_checkpoint_loads_in_a_plain_pipeline(tmp_path: Path) -> None:
    """What a DeepSpeed bf16 run at a short context leaves: best/ must still take 30 s float32 input."""
    import json

    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    from whisper_tune.models.random_init import make_random_whisper
    from whisper_tune.runs import export_best
    from whisper_tune.train.fastpath import shorten_encoder_context

    model, processor = make_random_whisper("test")
    shorten_encoder_context(model, 240)
    ckpt = tmp_path / "run" / "checkpoint_000003"
    model.to(torch.bfloat16).save_pretrained(ckpt / "checkpoint")
    processor.save_pretrained(ckpt / "checkpoint")
    (ckpt / "checkpoint" / "trainer_state.json").write_text(json.dumps({"global_step": 3}))
    (ckpt / "metrics.json").write_text(json.dumps({"step": 3, "eval_wer": 0.5}))

    best = export_best(tmp_path / "run", short=True)
    metrics = json.loads((best / "metrics.json").read_text())
    assert metrics["train_encoder_frames"] == 240 and metrics["trained_dtype"] == "bfloat16"
    assert json.loads((best / "short" / "config.json").read_text())["max_source_positions"] == 120
    loaded = WhisperForConditionalGeneration.from_pretrained(best)
    assert next(loaded.parameters()).dtype == torch.float32
    assert loaded.config.max_source_positions == 1500
    proc = WhisperProcessor.from_pretrained(best)
    feats = proc.feature_extractor([0.05] * 16000, sampling_rate=16000, return_tensors="pt").input_features
    with torch.no_grad():
        out = loaded.generate(feats, max_new_tokens=3)
    assert out.shape[0] == 1
