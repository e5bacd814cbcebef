"""Tests for the GPU fast-path helpers (CPU, toy model; one ``gpu`` test runs a real CUDA step)."""

from __future__ import annotations

import math

import pytest
import torch

from whisper_tune.errors import UserError
from whisper_tune.models.random_init import make_random_whisper
from whisper_tune.train import fastpath as fp


@pytest.fixture()
def toy():
    model, processor = make_random_whisper("test", seed=1)
    return model, processor


# ---------------------------------------------------------------- precision


def test_resolve_precision_cpu_auto_follows_hardware_bf16(monkeypatch):
    monkeypatch.setattr(fp, "cpu_bf16_native", lambda: False)
    assert fp.resolve_precision("auto", "cpu") == "fp32"
    assert fp.resolve_precision("AUTO", torch.device("cpu")) == "fp32"
    monkeypatch.setattr(fp, "cpu_bf16_native", lambda: True)  # AVX512-BF16 / AMX
    assert fp.resolve_precision("auto", "cpu") == "bf16"
    assert fp.resolve_precision("fp32", "cpu") == "fp32"  # an explicit choice wins


def test_cpu_bf16_native_matches_torch_probes():
    from whisper_tune.models.load import cpu_bf16_native

    expected = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    assert cpu_bf16_native() is bool(expected)


def test_resolve_precision_explicit_and_aliases_on_cpu():
    assert fp.resolve_precision("bf16", "cpu") == "bf16"
    assert fp.resolve_precision("bfloat16", "cpu") == "bf16"
    assert fp.resolve_precision("float32", "cpu") == "fp32"
    assert fp.resolve_precision("no", "cpu") == "fp32"


def test_resolve_precision_fp16_on_cpu_is_a_user_error():
    with pytest.raises(UserError, match="fp16.*CUDA"):
        fp.resolve_precision("fp16", "cpu")


def test_resolve_precision_unknown_value_names_the_field():
    with pytest.raises(UserError, match=r"train\.precision.*'int4'"):
        fp.resolve_precision("int4", "cpu")


def test_resolve_precision_bad_device():
    with pytest.raises(UserError, match="unknown device"):
        fp.resolve_precision("auto", "tpu-ish")


def test_resolve_precision_cuda_auto(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(fp, "_cuda_supports_bf16", lambda device: True)
    assert fp.resolve_precision("auto", "cuda") == "bf16"
    assert fp.resolve_precision("fp16", "cuda:0") == "fp16"
    monkeypatch.setattr(fp, "_cuda_supports_bf16", lambda device: False)
    assert fp.resolve_precision("auto", "cuda") == "fp16"
    with pytest.raises(UserError, match="bf16 needs an Ampere"):
        fp.resolve_precision("bf16", "cuda")


def test_attention_and_optimizer_choice_on_cpu():
    assert fp.select_attn_implementation("cpu", "auto") == "sdpa"
    assert fp.hf_optim_name("cpu") == "adamw_torch"
    assert fp.hf_optim_name("cuda:1") == "adamw_torch_fused"


# ---------------------------------------------------------------- encoder context


def test_choose_encoder_frames():
    assert fp.choose_encoder_frames(8.0) == 864  # 800 + 64, already a multiple of 16
    assert fp.choose_encoder_frames(3.21, margin_frames=32) == 368  # 321 + 32 = 353 -> 368
    assert fp.choose_encoder_frames(29.9) == 3000  # capped at 30 s
    assert fp.choose_encoder_frames(1.0, multiple=2) == 164
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(UserError, match="positive"):
            fp.choose_encoder_frames(bad)
    with pytest.raises(UserError, match="at least 32"):
        fp.choose_encoder_frames(5.0, margin_frames=16)
    with pytest.raises(UserError, match="even"):
        fp.choose_encoder_frames(5.0, multiple=3)


def test_shorten_encoder_context_shapes_and_config(toy):
    model, _ = toy
    full_rows = model.model.encoder.embed_positions.weight[:200].detach().clone()
    assert fp.encoder_frames(model) == 3000
    out = fp.shorten_encoder_context(model, 400)
    assert out is model
    assert model.config.max_source_positions == 200
    assert fp.encoder_frames(model) == 400
    emb = model.model.encoder.embed_positions
    assert emb.weight.shape == (200, model.config.d_model)
    assert torch.equal(emb.weight, full_rows)  # the kept positions are the original ones
    assert not emb.weight.requires_grad  # Whisper's sinusoidal table stays frozen
    enc = model.get_encoder()(torch.randn(2, 80, 400)).last_hidden_state
    assert enc.shape == (2, 200, model.config.d_model)


def test_shortened_model_rejects_full_length_input(toy):
    model, _ = toy
    fp.shorten_encoder_context(model, 400)
    with pytest.raises(ValueError, match="400"):
        model.get_encoder()(torch.randn(1, 80, 3000))


def test_shorten_is_not_identical_to_padded_full_model(toy):
    """Documented behaviour: attention no longer spans the padding, so outputs change."""
    model, _ = toy
    model.eval()
    feats = torch.randn(1, 80, 400)
    padded = torch.nn.functional.pad(feats, (0, 2600))
    with torch.no_grad():
        full = model.get_encoder()(padded).last_hidden_state[:, :200]
        fp.shorten_encoder_context(model, 400)
        short = model.get_encoder()(feats).last_hidden_state
    assert short.shape == full.shape
    assert not torch.allclose(short, full, atol=1e-4)


def test_shorten_encoder_context_validation(toy):
    model, _ = toy
    for bad in (0, -2, 401, 3002):
        with pytest.raises(UserError):
            fp.shorten_encoder_context(model, bad)
    with pytest.raises(UserError, match="integer"):
        fp.shorten_encoder_context(model, 400.0)  # type: ignore[arg-type]
    assert fp.shorten_encoder_context(model, 3000) is model
    fp.shorten_encoder_context(model, 800)
    with pytest.raises(UserError, match="lengthen"):
        fp.shorten_encoder_context(model, 1000)


def test_short_context_generate_train_save_reload(toy, tmp_path):
    """A model briefly fine-tuned at short context keeps working: loss falls, generate runs,
    and the saved config reloads with the short context."""
    from transformers import WhisperForConditionalGeneration

    model, _ = toy
    fp.shorten_encoder_context(model, 320)
    torch.manual_seed(0)
    feats = torch.randn(4, 80, 320)
    labels = torch.randint(0, 500, (4, 6))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3, foreach=True)
    model.train()
    losses = []
    for _ in range(8):
        loss = model(input_features=feats, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(float(loss))
    assert losses[-1] < losses[0] * 0.9
    model.eval()
    gen = model.generate(feats[:2], max_new_tokens=4)
    assert gen.shape[0] == 2 and gen.shape[1] >= 2
    model.save_pretrained(tmp_path / "m")
    again = WhisperForConditionalGeneration.from_pretrained(tmp_path / "m")
    assert again.config.max_source_positions == 160
    with torch.no_grad():
        a = model.get_encoder()(feats[:1]).last_hidden_state
        b = again.get_encoder()(feats[:1]).last_hidden_state
    torch.testing.assert_close(a, b)


# ---------------------------------------------------------------- plan


def test_plan_and_apply_on_cpu(toy, monkeypatch):
    monkeypatch.setattr(fp, "cpu_bf16_native", lambda: False)  # a CPU without hardware bf16
    model, _ = toy
    model.set_attn_implementation("eager")
    model.gradient_checkpointing_enable()
    plan = fp.plan_fast_path("cpu", "auto", n_frames=480)
    assert plan.precision == "fp32" and plan.compile_scope == "none" and not plan.gradient_checkpointing
    assert plan.notes and "480" in plan.notes[0]
    fp.apply_fast_path(model, plan)
    assert model.config._attn_implementation == "sdpa"
    assert not model.is_gradient_checkpointing
    assert fp.encoder_frames(model) == 480
    args = fp.training_args_overrides(plan)
    assert args["optim"] == "adamw_torch" and not args["bf16"] and not args["fp16"]
    from transformers import Seq2SeqTrainingArguments

    Seq2SeqTrainingArguments(output_dir="unused", use_cpu=True, **args)  # every key is a real argument


def test_plan_validation():
    with pytest.raises(UserError, match="train.compile"):
        fp.plan_fast_path("cpu", compile="yes")
    assert fp.plan_fast_path("cpu", compile=True).compile_scope == "model"
    assert fp.plan_fast_path("cpu", compile="encoder").compile_scope == "encoder"
    with pytest.raises(UserError, match="gradient_checkpointing"):
        fp.plan_fast_path("cpu", gradient_checkpointing="maybe")  # type: ignore[arg-type]
    plan = fp.plan_fast_path("cpu", compile=True, gradient_checkpointing=True)
    assert plan.compile_scope == "none" and plan.gradient_checkpointing


def test_uncompiled_restores_compiled_call(toy):
    model, _ = toy
    fp.compile_model(model)  # lazy: nothing is compiled until the first call
    fp.compile_encoder(model)
    compiled = [m for m in model.modules() if getattr(m, "_compiled_call_impl", None) is not None]
    assert model in compiled and model.get_encoder() in compiled
    with fp.uncompiled(model) as m:
        assert m is model
        assert all(x._compiled_call_impl is None for x in compiled)
        out = model(input_features=torch.randn(1, 80, 3000), labels=torch.tensor([[1, 2]]))
        assert torch.isfinite(out.loss)
    assert all(x._compiled_call_impl is not None for x in compiled)


def test_plan_auto_compile_depends_on_job_length(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(fp, "_cuda_supports_bf16", lambda device: True)
    assert fp.plan_fast_path("cuda").compile_scope == "model"  # unknown length: compile
    long_job = fp.plan_fast_path("cuda", expected_steps=fp.MIN_STEPS_FOR_COMPILE)
    assert long_job.compile_scope == "model"
    short_job = fp.plan_fast_path("cuda", expected_steps=120)
    assert short_job.compile_scope == "none" and "120 steps" in short_job.notes[0]
    assert fp.plan_fast_path("cuda", compile=True, expected_steps=120).compile_scope == "model"
    assert fp.plan_fast_path("cpu", expected_steps=10**6).compile_scope == "none"


def test_cpu_plan_is_what_cpu_training_used_before():
    """The one plan on CPU: no compile, no loader workers, the job's attention choice wins."""
    plan = fp.plan_fast_path("cpu", "auto")
    assert (plan.device, plan.precision, plan.compile_scope, plan.dataloader_num_workers) == (
        "cpu",
        fp.resolve_precision("auto", "cpu"),  # bf16 on CPUs with hardware bf16, else fp32
        "none",
        0,
    )
    assert plan.attn_implementation == "sdpa" and plan.optim == "adamw_torch"
    assert fp.plan_fast_path("cpu", num_workers=3).dataloader_num_workers == 3
    assert fp.plan_fast_path("cpu", attn_implementation="eager").attn_implementation == "eager"
    args = fp.training_args_overrides(fp.plan_fast_path("cpu", compile="model"))
    assert args["dataloader_drop_last"] is True and args["dataloader_pin_memory"] is False


def test_cuda_plan_gets_loader_workers(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(fp, "_cuda_supports_bf16", lambda device: True)
    plan = fp.plan_fast_path("cuda:0")
    assert plan.device == "cuda" and 1 <= plan.dataloader_num_workers <= 8
    args = fp.training_args_overrides(plan)
    assert args["dataloader_pin_memory"] and args["dataloader_persistent_workers"]
    assert args["dataloader_prefetch_factor"] == 4 and args["optim"] == "adamw_torch_fused"


def test_training_args_overrides_name_checkpointing_as_installed():
    from whisper_tune.train.compat import checkpointing_arg_name

    key = checkpointing_arg_name()
    on = fp.training_args_overrides(fp.plan_fast_path("cpu", gradient_checkpointing=True))
    assert on[key] is True and on[f"{key}_kwargs"] == {"use_reentrant": False}
    off = fp.training_args_overrides(fp.plan_fast_path("cpu"))
    assert off[key] is False and off[f"{key}_kwargs"] is None
