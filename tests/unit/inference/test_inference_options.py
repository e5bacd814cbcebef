"""Options, the device/precision rule and the per-window token cap (no model needed)."""

from __future__ import annotations

import pytest
import torch

from whisper_tune.errors import UserError
from whisper_tune.inference import BackendOptions, DecodeOptions, resolve_device, resolve_precision


def test_resolve_device_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_device("CPU") == "cpu" and resolve_device("cuda:1") == "cuda:1"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda"
    import ctranslate2

    # CT2 asks its own library: a CPU-only CTranslate2 next to a CUDA torch stays on the CPU
    monkeypatch.setattr(ctranslate2, "get_cuda_device_count", lambda: 0)
    assert resolve_device("auto", "ct2") == "cpu"
    with pytest.raises(UserError, match="device: unknown value 'gpu0'"):
        resolve_device("gpu0")
    with pytest.raises(UserError, match="--backend must be 'hf' or 'ct2'"):
        resolve_device("cpu", "onnx")


def test_resolve_precision_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_precision("auto", "cpu", "hf") == "float32"
    assert resolve_precision("auto", "cpu", "ct2") == "int8"
    assert resolve_precision("auto", "cuda:0", "ct2") == "float16"
    assert (
        resolve_precision("bf16", "cpu", "hf") == "bfloat16"
        and resolve_precision("FP16", "cuda", "hf") == "float16"
    )
    assert resolve_precision("int8_float16", "cuda", "ct2") == "int8_float16"
    from whisper_tune.inference import device

    monkeypatch.setattr(device, "_native_bf16", lambda: True)
    assert resolve_precision("auto", "cuda", "hf") == "bfloat16"
    monkeypatch.setattr(device, "_native_bf16", lambda: False)  # pre-Ampere: bf16 only emulated
    assert resolve_precision("auto", "cuda", "hf") == "float16"
    with pytest.raises(UserError, match="dtype: unknown value 'int8'"):
        resolve_precision("int8", "cpu", "hf")
    with pytest.raises(UserError, match="compute_type: unknown value 'fp8'"):
        resolve_precision("fp8", "cpu", "ct2")


def test_option_checks_name_the_option() -> None:
    with pytest.raises(ValueError, match="task must be one of transcribe, translate"):
        DecodeOptions(task="summarize")
    with pytest.raises(ValueError, match="beams"):
        DecodeOptions(beams=0)
    with pytest.raises(ValueError, match="max_new_tokens must be >= 1"):
        DecodeOptions(max_new_tokens=0)
    with pytest.raises(UserError, match="batch_size must be >= 1"):
        BackendOptions(batch_size=0)
    assert BackendOptions().decode == DecodeOptions()


def test_ct2_compute_types_are_the_export_quantizations() -> None:
    from whisper_tune.inference.device import CT2_COMPUTE_TYPES
    from whisper_tune.models.export import QUANTIZATIONS

    assert ("default", *QUANTIZATIONS) == CT2_COMPUTE_TYPES
