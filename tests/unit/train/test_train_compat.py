"""The version shims: the names they hand out exist in the installed libraries."""

from __future__ import annotations

import dataclasses

import torch
from transformers import Seq2SeqTrainingArguments

from whisper_tune.train import compat


def test_checkpointing_args_are_real_training_arguments() -> None:
    names = {f.name for f in dataclasses.fields(Seq2SeqTrainingArguments)}
    key = compat.checkpointing_arg_name()
    assert key in names and f"{key}_kwargs" in names
    if "activation_checkpointing" in names:  # transformers 5.2x: the new name, no deprecation warning
        assert key == "activation_checkpointing"
    on = compat.checkpointing_args(True)
    assert on == {key: True, f"{key}_kwargs": {"use_reentrant": False}}
    assert compat.checkpointing_args(False) == {key: False, f"{key}_kwargs": None}
    args = Seq2SeqTrainingArguments(output_dir="unused", use_cpu=True, report_to="none", **on)
    assert getattr(args, key) is True


def test_cuda_bf16_supported_without_cuda(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert compat.cuda_bf16_supported() is False


def test_cuda_bf16_supported_on_older_torch(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)

    def old_signature() -> bool:  # no including_emulation keyword
        return True

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", old_signature)
    assert compat.cuda_bf16_supported() is True


def test_checkpointing_on_and_off_without_deprecation_warnings() -> None:
    import warnings

    from whisper_tune.models.random_init import make_random_whisper

    model, _ = make_random_whisper("test")
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # the deprecated 5.2x aliases would warn
        assert compat.is_checkpointing(model) is False
        compat.set_checkpointing(model, True)
        assert compat.is_checkpointing(model) is True
        compat.set_checkpointing(model, False)
        assert compat.is_checkpointing(model) is False
    assert compat.is_checkpointing(torch.nn.Linear(2, 2)) is False  # a plain module has neither name
