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


def test_resolve_precision_cpu_auto_is_fp32():
    assert fp.resolve_precision("auto", "cpu") == "fp32"
    assert fp.resolve_precision("AUTO", torch.device("cpu")) == "fp32"


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


def test_autocast_dtype():
    assert fp.autocast_dtype("bf16") is torch.bfloat16
    assert fp.autocast_dtype("fp16") is torch.float16
    assert fp.autocast_dtype("fp32") is None


def test_attention_and_optimizer_choice_on_cpu():
    assert fp.select_attn_implementation("cpu", "auto") == "sdpa"
    assert fp.hf_optim_name("cpu") == "adamw_torch"
    assert fp.hf_optim_name("cuda:1") == "adamw_torch_fused"
    p = torch.nn.Parameter(torch.ones(3))
    frozen = torch.nn.Parameter(torch.ones(3), requires_grad=False)
    opt = fp.fused_adamw([p, frozen], lr=0.1, device="cpu")
    assert len(opt.param_groups[0]["params"]) == 1
    assert opt.defaults["fused"] is False


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
    opt = fp.fused_adamw(model.parameters(), lr=3e-3, device="cpu")
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


def test_cut_features():
    x = torch.randn(2, 80, 3000)
    assert fp.cut_features(x, 864).shape == (2, 80, 864)
    assert torch.equal(fp.cut_features(x, 864), x[..., :864])
    y = torch.randn(80, 100)
    padded = fp.cut_features(y, 128)
    assert padded.shape == (80, 128)
    assert torch.equal(padded[:, :100], y) and torch.count_nonzero(padded[:, 100:]) == 0
    assert fp.cut_features(x, 3000) is x


# ---------------------------------------------------------------- FLOPs


def test_whisper_forward_flops_matches_design_anchor():
    """DESIGN.md: whisper-small at 239 samples/s is 29 % MFU on the 989e12 peak."""
    model, _ = make_random_whisper("small")
    flops = fp.whisper_forward_flops(model.config, 32)
    assert 3.9e11 < flops < 4.05e11
    assert fp.model_flops_utilization(239, flops) == pytest.approx(0.288, abs=0.004)
    # the encoder's share shrinks faster than linearly with the context (attention is quadratic)
    short = fp.whisper_forward_flops(model.config, 32, n_frames=864)
    assert flops / short > 3.0


# ---------------------------------------------------------------- sampler


@pytest.mark.parametrize(("n", "bs", "mult"), [(103, 8, 3), (64, 8, 50), (5, 8, 1), (1, 1, 1), (250, 16, 2)])
def test_length_bucket_sampler_covers_every_index_once(n, bs, mult):
    lengths = [float((i * 7919) % 31) for i in range(n)]
    s = fp.LengthBucketSampler(lengths, bs, bucket_multiplier=mult, seed=3)
    order = list(s)
    assert sorted(order) == list(range(n))
    assert len(s) == n
    batches = s.batches()
    assert all(len(b) == bs for b in batches[:-1])
    assert 0 < len(batches[-1]) <= bs
    s.set_epoch(1)
    assert sorted(s) == list(range(n))


def test_length_bucket_sampler_groups_lengths_and_reshuffles():
    lengths = [float(i % 40) for i in range(400)]
    s = fp.LengthBucketSampler(lengths, 10, bucket_multiplier=40, seed=0)
    batches = s.batches()
    spread = [max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches]
    assert max(spread) <= 1.0  # one chunk holds everything: batches are near-uniform
    assert max(lengths[i] for i in batches[0]) == 39.0  # the longest batch comes first
    s.set_epoch(1)
    assert s.batches() != batches
    random_spread = sum(
        max(lengths[i] for i in range(k, 400, 40)) - min(lengths[i] for i in range(k, 400, 40))
        for k in range(10)
    )
    assert sum(spread) < random_spread or random_spread == 0


def test_length_bucket_sampler_partial_batch_last_with_dataloader():
    lengths = [float(i) for i in range(23)]
    s = fp.LengthBucketSampler(lengths, 5, bucket_multiplier=2, seed=1)
    loader = torch.utils.data.DataLoader(list(range(23)), batch_size=5, sampler=s, drop_last=True)
    seen = [int(i) for b in loader for i in b]
    assert len(seen) == 20 and len(set(seen)) == 20
    leftover = set(range(23)) - set(seen)
    assert leftover == set(s.batches()[-1])


def test_length_bucket_sampler_unshuffled_is_sorted_and_validation():
    s = fp.LengthBucketSampler([3.0, 1.0, 2.0], 2, shuffle=False)
    assert list(s) == [0, 2, 1]
    with pytest.raises(UserError, match="batch size"):
        fp.LengthBucketSampler([1.0], 0)
    with pytest.raises(UserError, match="item 1"):
        fp.LengthBucketSampler([1.0, math.nan], 2)


# ---------------------------------------------------------------- plan


def test_plan_and_apply_on_cpu(toy):
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


def test_estimate_batch_size_off_cuda_returns_default(toy):
    model, _ = toy
    est = fp.estimate_batch_size(model, n_frames=3000, device="cpu", default=12)
    assert est.batch_size == 12 and est.reason == "not CUDA"
    assert est.optimizer_bytes == 8 * sum(p.numel() for p in model.parameters() if p.requires_grad)


# ---------------------------------------------------------------- GPU


@pytest.mark.gpu
def test_fast_path_step_on_cuda():
    model, _ = make_random_whisper("tiny")
    plan = fp.plan_fast_path("cuda", "auto", n_frames=fp.choose_encoder_frames(8.0))
    assert plan.precision == "bf16" and plan.compile_scope == "model"
    model.to("cuda")
    fp.apply_fast_path(model, plan)
    est = fp.estimate_batch_size(model, n_frames=plan.n_frames, precision=plan.precision, max_batch=64)
    assert 8 <= est.batch_size <= 64 and est.bytes_per_sample > 0
    opt = fp.fused_adamw(model.parameters(), lr=1e-4, device="cuda")
    assert opt.defaults["fused"] is True
    feats = torch.randn(8, 80, plan.n_frames, device="cuda")
    labels = torch.randint(0, 50000, (8, 30), device="cuda")
    losses = []
    for _ in range(3):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(input_features=feats, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(float(loss))
    assert all(math.isfinite(x) for x in losses)
    assert losses[-1] < losses[0]
