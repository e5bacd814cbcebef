"""The GPU plan on CPU: fake GPUs (count, memory) and real Whisper shapes (built on the meta device)."""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest
import torch

from whisper_tune.train.config import JobConfig
from whisper_tune.train.fastpath import resolve_precision
from whisper_tune.train.plan import (
    GIB,
    GpuFacts,
    ModelFacts,
    activation_bytes,
    auto_context,
    make_plan,
    state_bytes,
)

H200 = GpuFacts("NVIDIA H200", 1, int(139.8 * GIB))


def _gpus(n: int, gib: float, name: str = "NVIDIA A10G") -> GpuFacts:
    return GpuFacts(name, n, int(gib * GIB))


@cache
def _facts(shape: str) -> ModelFacts:
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    from whisper_tune.models.random_init import shape_config

    cfg = WhisperConfig(**shape_config(shape))
    with torch.device("meta"):
        model = WhisperForConditionalGeneration(cfg)
    return ModelFacts.from_model(model)


def _job(**train: Any) -> JobConfig:
    auto = {
        "deepspeed": "auto",
        "per_device_batch_size": "auto",
        "precision": "auto",
        "compile": "auto",
        "generation_max_length": "auto",
        "num_epochs": 3,
        **train,
    }
    return JobConfig.from_mapping({"data": {"train": "t", "eval": "e"}, "train": auto})


def _plan(
    job: JobConfig, gpu: GpuFacts | None, shape: str, frames: int = 816, n_train: int = 5000, **kw: Any
) -> Any:
    return make_plan(
        job,
        gpu,
        _facts(shape),
        n_frames=frames,
        context_reason="test",
        n_train=n_train,
        label_len=kw.pop("label_len", 14.0),
        longest_label=kw.pop("longest_label", 20),
        **kw,
    )


def test_shapes_have_the_parameter_counts_of_openais_checkpoints() -> None:
    # published sizes: small 244M, medium 769M, large-v3 1550M, large-v3-turbo 809M
    expected = {"small": 242e6, "medium": 764e6, "large-v3": 1543e6, "large-v3-turbo": 809e6}
    for shape, n in expected.items():
        assert _facts(shape).params == pytest.approx(n, rel=0.02), shape
    assert _facts("large-v3-turbo").decoder_layers == 4


def test_memory_model_matches_the_measured_peaks() -> None:
    """Measured peaks (bf16 autocast, SDPA, no checkpointing, 30 s inputs, uncompiled):
    small batch 88: 64.9 GiB (H100); large-v3-turbo batch 32: 91.8; large-v3 batch 32: 116.6 (H200)."""
    for shape, batch, peak in (("small", 88, 64.9), ("large-v3-turbo", 32, 91.8), ("large-v3", 32, 116.6)):
        m = _facts(shape)
        est = state_bytes(m, "none", 1) + batch * activation_bytes(m, 3000, 30.0)
        assert est / GIB == pytest.approx(peak, rel=0.12), shape


def test_one_h200_small_short_clips_no_zero_full_batch_bf16() -> None:
    plan = _plan(_job(), H200, "small")
    assert plan.value("deepspeed") == "none" and "no ZeRO" in plan.choices["deepspeed"].reason
    assert plan.value("per_device_batch_size") == 128 and plan.value("eval_batch_size") == 512
    assert plan.value("precision") == "bf16" and plan.value("generation_max_length") == 41
    # 5,000 clips x 3 epochs at batch 128 = 120 steps: compiling would not pay
    assert plan.memory["expected_steps"] == 120 and plan.value("compile") == "none"
    long_run = _plan(_job(num_epochs=20), H200, "small", n_train=50_000)
    assert long_run.value("compile") == "model"
    assert all(c.source == "auto" for k, c in plan.choices.items() if k != "encoder_frames")


def test_compile_pays_from_the_measured_break_even_on() -> None:
    """Measured on one H200 (whisper-small, 816 frames, batch 128): compile saved 35 % of a
    0.187 s step and cost 28 s, so it pays from ~430 steps; the estimate must agree within ~25 %."""
    import re

    short = _plan(_job(), H200, "small")  # 5,000 clips x 3 epochs = 120 steps
    assert short.value("compile") == "none"
    found = re.search(r"break-even ~(\d+) steps", short.choices["compile"].reason)
    assert found is not None and 330 <= int(found.group(1)) <= 540, short.choices["compile"].reason
    assert _plan(_job(), H200, "small", n_train=30_000).value("compile") == "model"  # 705 steps


def test_a_compiled_plan_keeps_the_memory_batch() -> None:
    """Measured (one H200, large-v3-turbo, 30 s, compiled): batch 40 ran 59.5 samples/s at 97 GiB,
    batch 48 15.4 at 114.6 GiB: compiling does not earn a bigger batch; compile is printed last."""
    eager = _plan(_job(compile=False), H200, "large-v3-turbo", frames=3000)
    compiled = _plan(_job(), H200, "large-v3-turbo", frames=3000)
    assert compiled.value("compile") == "model" and eager.value("compile") is False
    assert compiled.value("per_device_batch_size") == eager.value("per_device_batch_size") == 40
    assert compiled.memory["estimated_peak_gib"] <= compiled.memory["budget_gib"]
    assert list(compiled.choices)[-1] == "compile"


def test_large_shapes_fit_one_h200_without_zero_batch_from_memory() -> None:
    for shape in ("medium", "large-v3", "large-v3-turbo"):
        plan = _plan(_job(), H200, shape, frames=3000)
        assert plan.value("deepspeed") == "none", shape
        assert plan.memory["estimated_peak_gib"] <= plan.memory["budget_gib"]
    v3 = _plan(_job(), H200, "large-v3", frames=3000)
    assert 24 <= v3.value("per_device_batch_size") <= 40  # measured: batch 32 peaked at 116.6 GiB
    assert "memory" in v3.choices["per_device_batch_size"].reason


def test_small_gpus_shard_or_offload() -> None:
    # one 32 GiB GPU, large-v3 at 8 s clips: fp32 AdamW does not fit, 8-bit AdamW does; else offload
    one = _plan(_job(), _gpus(1, 32), "large-v3", bnb_available=False)
    assert one.value("deepspeed") in ("zero2_offload", "zero3_offload")
    eight_bit = _plan(_job(), _gpus(1, 32), "large-v3", bnb_available=True)
    assert eight_bit.value("deepspeed") == "none" and eight_bit.value("optim") == "adamw_bnb_8bit"
    eight = _plan(_job(), _gpus(8, 24), "large-v3", frames=3000)
    assert eight.value("deepspeed") in ("zero2", "zero3")
    assert state_bytes(_facts("large-v3"), eight.value("deepspeed"), 8) < state_bytes(
        _facts("large-v3"), "none", 8
    )
    # several GPUs that fit without ZeRO but only a small batch: ZeRO-2 frees room
    four = _plan(_job(), _gpus(4, 40), "large-v3", frames=3000)
    assert four.value("deepspeed") == "zero2"
    # LoRA never gets ZeRO-3 (the config rejects that combination)
    lora = _plan(_job(strategy="lora"), _gpus(8, 16), "large-v3", frames=3000)
    assert not str(lora.value("deepspeed")).startswith("zero3")


def test_explicit_settings_win_and_apply_resolves_the_job() -> None:
    job = _job(
        deepspeed="zero2", per_device_batch_size=32, precision="fp16", compile=False, eval_batch_size=8
    )
    plan = _plan(job, H200, "small")
    for key, value in (("deepspeed", "zero2"), ("per_device_batch_size", 32), ("precision", "fp16")):
        assert plan.value(key) == value and plan.choices[key].source == "config"
    assert plan.value("compile") is False and plan.value("eval_batch_size") == 8
    resolved = _plan(_job(), H200, "small").apply(_job())
    t = resolved.train
    assert (t.deepspeed, t.per_device_batch_size, t.precision, t.generation_max_length) == (
        "none",
        128,
        "bf16",
        41,
    )
    assert _job().train.per_device_batch_size == "auto"  # the original is untouched


def test_cpu_plan_and_summary() -> None:
    plan = _plan(_job(), None, "small")
    assert (plan.value("deepspeed"), plan.value("per_device_batch_size"), plan.value("precision")) == (
        "none",
        8,
        resolve_precision("auto", "cpu"),  # bf16 where the CPU does it in hardware, else fp32
    )
    assert plan.value("compile") == "none"
    text = plan.summary()
    assert "deepspeed" in text and "[auto]" in text
    assert set(plan.to_dict()) == {"choices", "memory"}


def test_batch_keeps_enough_steps_per_epoch() -> None:
    plan = _plan(_job(), H200, "small", n_train=1000)
    assert plan.value("per_device_batch_size") == 24  # 1000 clips / 32 steps -> 31 -> multiple of 8
    assert "steps per epoch" in plan.choices["per_device_batch_size"].reason


def test_auto_context_shortens_only_when_it_pays() -> None:
    frames, why = auto_context(7.5, 64)
    assert frames == 816 and "816" in why
    assert auto_context(28.0, 64)[0] == 3000
    assert auto_context(23.0, 64)[0] == 2368  # 79 % of the window: still shortened


def test_shipped_gpu_config_is_all_auto() -> None:
    from pathlib import Path

    from whisper_tune.train.config import load_job_config

    cfg = load_job_config(Path(__file__).resolve().parents[3] / "configs" / "small-gpu.yaml")
    t = cfg.train
    assert (t.deepspeed, t.per_device_batch_size, t.precision, t.compile, t.short_audio) == ("auto",) * 5
    assert t.generation_max_length == "auto" and t.deepspeed_stage() == 0
