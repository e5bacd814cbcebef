"""Tests for bench/_lib.py: FLOP/MFU math, device peaks, batch sizing, synthetic inputs, the
seed plan (CPU, toy model; one ``gpu`` test runs a real CUDA step of the fast path)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))

import _lib as lib  # noqa: E402
from whisper_tune.models.random_init import make_random_whisper  # noqa: E402
from whisper_tune.train import fastpath as fp  # noqa: E402


@pytest.fixture()
def toy():
    return make_random_whisper("test", seed=1)


def test_autocast_dtype():
    assert lib.autocast_dtype("bf16") is torch.bfloat16
    assert lib.autocast_dtype("fp16") is torch.float16
    assert lib.autocast_dtype("fp32") is None


def test_cut_features():
    x = torch.randn(2, 80, 3000)
    assert lib.cut_features(x, 864).shape == (2, 80, 864)
    assert torch.equal(lib.cut_features(x, 864), x[..., :864])
    y = torch.randn(80, 100)
    padded = lib.cut_features(y, 128)
    assert padded.shape == (80, 128)
    assert torch.equal(padded[:, :100], y) and torch.count_nonzero(padded[:, 100:]) == 0
    assert lib.cut_features(x, 3000) is x


def test_whisper_forward_flops_matches_the_measured_anchor():
    """The anchor the fast path was planned from: whisper-small at 239 samples/s is 29 % MFU on
    an H100 SXM (989e12 dense bf16 peak)."""
    model, _ = make_random_whisper("small")
    flops = lib.whisper_forward_flops(model.config, 32)
    assert 3.9e11 < flops < 4.05e11
    h100 = lib.peak_flops("NVIDIA H100 80GB HBM3")
    assert h100 == 989e12
    assert lib.model_flops_utilization(239, flops, h100) == pytest.approx(0.288, abs=0.004)
    # the encoder's share shrinks faster than linearly with the context (attention is quadratic)
    short = lib.whisper_forward_flops(model.config, 32, n_frames=864)
    assert flops / short > 3.0


def test_estimate_batch_size_off_cuda_returns_default(toy):
    model, _ = toy
    est = lib.estimate_batch_size(model, n_frames=3000, device="cpu", default=12)
    assert est.batch_size == 12 and est.reason == "not CUDA"
    assert est.optimizer_bytes == 8 * sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_fused_adamw_off_cuda_is_foreach_over_trainable_params():
    p = torch.nn.Parameter(torch.ones(3))
    frozen = torch.nn.Parameter(torch.ones(3), requires_grad=False)
    opt = lib.fused_adamw([p, frozen], lr=0.1, device="cpu")
    assert len(opt.param_groups[0]["params"]) == 1
    assert opt.defaults["fused"] is False


def test_peak_flops_table_and_override():
    assert lib.peak_flops("NVIDIA H100 PCIe") == 756e12  # not the SXM entry
    assert lib.peak_flops("NVIDIA H200") == 989e12
    assert lib.peak_flops("NVIDIA L40S") == 362e12 and lib.peak_flops("NVIDIA L4") == 121e12
    assert lib.peak_flops("some future GPU") is None
    assert lib.peak_flops("NVIDIA H100 80GB HBM3", override=5e14) == 5e14
    assert lib.model_flops_utilization(100.0, 1e12, None) is None


def test_synthetic_features_and_collate():
    ds = lib.SyntheticFeatures(5, 80, 51864, 3, 6, pool=2)
    assert len(ds) == 5 and ds[0]["input_features"].shape == (80, 3000)
    assert 3 <= ds.mean_label_len() <= 6
    batch = lib.FeatureCollate(864, pad_labels_to=8)([ds[0], ds[1]])
    assert batch["input_features"].shape == (2, 80, 864) and batch["labels"].shape == (2, 8)
    assert (batch["labels"][0, len(ds[0]["labels"]) :] == -100).all()


def test_seed_plan_and_trainer_job():
    plan = lib.seed_plan("cuda")
    assert (plan.precision, plan.attn_implementation, plan.optim) == ("fp16", "eager", "adamw_torch")
    assert plan.gradient_checkpointing and plan.compile_scope == "none"
    assert lib.seed_plan("cpu").precision == "fp32"
    job = lib.trainer_job(16, max_steps=13, total_steps=13, learning_rate=2e-5)
    t = job.train
    assert (t.per_device_batch_size, t.max_steps, t.learning_rate) == (16, 13, 2e-5)
    assert t.eval_steps > 13 and t.save_steps > 13 and t.logging_steps > 13


def test_bare_whisper_has_the_shape_and_no_tokenizer():
    from whisper_tune.models.random_init import SHAPES

    model = lib.bare_whisper("test")
    assert model.config.d_model == SHAPES["test"][0] and model.config.vocab_size == 51864


def test_write_json_makes_parents_and_never_writes_nan(tmp_path):
    out = lib.write_json(tmp_path / "a" / "r.json", {"x": float("nan"), "y": [1.5, float("inf")]})
    assert json.loads(out.read_text()) == {"x": None, "y": [1.5, None]}


@pytest.mark.gpu
def test_fast_path_step_on_cuda():
    """The fast path's plan, the batch sized to memory and the fused AdamW: one real CUDA run."""
    model, _ = make_random_whisper("tiny")
    plan = fp.plan_fast_path("cuda", "auto", n_frames=fp.choose_encoder_frames(8.0))
    assert plan.precision == "bf16" and plan.compile_scope == "model"
    model.to("cuda")
    fp.apply_fast_path(model, plan)
    est = lib.estimate_batch_size(model, n_frames=plan.n_frames, precision=plan.precision, max_batch=64)
    assert 8 <= est.batch_size <= 64 and est.bytes_per_sample > 0
    opt = lib.fused_adamw(model.parameters(), lr=1e-4, device="cuda")
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


def test_random_eval_set_and_eval_trainer_run_the_product_s_evaluation(tmp_path: Path) -> None:
    model, processor = make_random_whisper("test")
    plan = fp.plan_fast_path("cpu", "fp32", n_frames=3000, compile="none", num_workers=0)
    ds = lib.random_eval_set(4, 3000)
    assert len(ds) == 4
    tr = lib.eval_trainer(model, processor, plan, ds, 2, 4, str(tmp_path))
    assert tr.args.per_device_eval_batch_size == 2
    m = tr.evaluate()
    assert m["eval_samples_per_second"] > 0 and m["eval_wer"] > 0.5  # random weights: almost nothing right
