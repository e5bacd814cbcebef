"""One rule for where a model runs and in which number format, for evaluation and serving.

Why: evaluation, the Transformers backend and the CTranslate2 backend each had their own
``auto`` device choice and precision default, so a report could be measured in another
precision than the server used. Training keeps its own mixed-precision choice
(``train.fastpath.resolve_precision``: autocast, not a stored dtype).

- Device ``auto``: the first CUDA GPU when one is visible, else the CPU. "Visible" is asked
  of the library that runs the model: torch for ``hf``, CTranslate2 for ``ct2`` (a CPU-only
  CTranslate2 wheel next to a CUDA torch must not be sent to the GPU).
- Precision ``auto``: ``hf`` runs bfloat16 on GPUs that do it natively (Ampere and newer),
  float16 on older GPUs and float32 on the CPU (half precision on CPUs is slower and
  less exact); ``ct2`` runs float16 on a GPU and int8 on the CPU (its fastest exact-enough
  CPU mode).
"""

from __future__ import annotations

import re

from whisper_tune.errors import UserError

__all__ = [
    "BACKEND_KINDS",
    "check_backend_kind",
    "HF_PRECISIONS",
    "CT2_COMPUTE_TYPES",
    "resolve_device",
    "resolve_precision",
]

BACKEND_KINDS = ("hf", "ct2")
HF_PRECISIONS = {
    "float32": "float32",
    "fp32": "float32",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
}
# CTranslate2's compute types: "default" + models.export.QUANTIZATIONS (spelled out so importing
# inference stays light: models.export loads torch; a unit test keeps the two equal)
CT2_COMPUTE_TYPES = (
    "default",
    "int8",
    "int8_float32",
    "int8_float16",
    "int8_bfloat16",
    "int16",
    "float16",
    "bfloat16",
    "float32",
)
_DEVICE = re.compile(r"^(cpu|cuda(:\d+)?)$")


def check_backend_kind(kind: str) -> None:
    """UserError unless ``kind`` is a backend this package has (hf, ct2)."""
    if kind not in BACKEND_KINDS:
        raise UserError(f"--backend must be 'hf' or 'ct2', got {kind!r}")


def _cuda_visible(kind: str) -> bool:
    if kind == "ct2":
        import ctranslate2

        return int(ctranslate2.get_cuda_device_count()) > 0
    import torch

    return bool(torch.cuda.is_available())


def resolve_device(device: str = "auto", kind: str = "hf") -> str:
    """``auto`` -> ``cuda`` when ``kind``'s library sees a GPU, else ``cpu``; ``cpu``, ``cuda``
    and ``cuda:N`` are returned as given; anything else is a UserError naming the option."""
    check_backend_kind(kind)
    key = str(device).strip().lower()
    if key == "auto":
        return "cuda" if _cuda_visible(kind) else "cpu"
    if not _DEVICE.match(key):
        raise UserError(f"device: unknown value {device!r} (use auto, cpu, cuda or cuda:N)")
    return key


def _native_bf16() -> bool:
    from whisper_tune.models.load import cuda_bf16_native  # torch: loaded when a device is chosen

    return cuda_bf16_native()


def resolve_precision(precision: str, device: str, kind: str = "hf") -> str:
    """The number format ``kind`` runs in on ``device`` (already resolved, e.g. ``cuda:0``).

    ``hf``: a torch dtype name (``float32``, ``float16``, ``bfloat16``; aliases fp32/fp16/bf16);
    ``ct2``: a CTranslate2 compute type (``int8``, ``float16``, ...). ``auto``: the rule in
    the module docstring.
    """
    check_backend_kind(kind)
    key = str(precision).strip().lower()
    on_gpu = str(device).startswith("cuda")
    if kind == "hf":
        if key == "auto":
            if on_gpu:
                return "bfloat16" if _native_bf16() else "float16"
            return "float32"
        if key not in HF_PRECISIONS:
            raise UserError(f"dtype: unknown value {precision!r} (use auto, {', '.join(HF_PRECISIONS)})")
        return HF_PRECISIONS[key]
    if key == "auto":
        return "float16" if on_gpu else "int8"
    if key not in CT2_COMPUTE_TYPES:
        raise UserError(
            f"compute_type: unknown value {precision!r} (use auto, {', '.join(CT2_COMPUTE_TYPES)})"
        )
    return key
