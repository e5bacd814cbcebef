"""KL-to-base regularisation (train.kl_to_base)."""

from __future__ import annotations

import torch

from whisper_tune.models.random_init import make_random_whisper
from whisper_tune.train.distill import ReferenceModel, kl_to_reference


def test_kl_is_zero_for_the_same_logits_and_positive_otherwise():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 11, requires_grad=True)
    labels = torch.tensor([[1, 2, 3, -100, -100], [4, 5, -100, -100, -100]])
    assert float(kl_to_reference(logits, logits.detach(), labels).detach()) == 0.0
    other = torch.randn(2, 5, 11)
    kl = kl_to_reference(logits, other, labels)
    assert float(kl) > 0
    kl.backward()
    assert logits.grad is not None
    assert torch.all(logits.grad[0, 3:] == 0) and torch.all(logits.grad[1, 2:] == 0)  # masked positions
    none = kl_to_reference(logits, other, torch.full((2, 5), -100))
    assert float(none) == 0.0


def test_reference_model_is_frozen_and_matches_the_start():
    model, processor = make_random_whisper("test", seed=0)
    ref = ReferenceModel(model)
    assert all(not p.requires_grad for p in ref.model.parameters())
    assert any(p.requires_grad for p in model.parameters())
    feats = torch.randn(2, model.config.num_mel_bins, 3000)
    labels = torch.tensor([[50257, 100, 200, 50256], [50257, 300, 50256, -100]])
    inputs = {"input_features": feats, "labels": labels}
    out = model(**inputs)
    assert float(ref.kl(out.logits, inputs)) < 1e-6
    with torch.no_grad():
        for p in model.model.decoder.parameters():
            p.add_(0.05 * torch.randn_like(p))
    out = model(**inputs)
    assert float(ref.kl(out.logits, inputs)) > 1e-4
