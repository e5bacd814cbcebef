"""The fast path for fine-tuning Whisper: precision, attention, optimizer, context, compile.

Why: the seed's recipe (fp16 + GradScaler, batch 16, gradient checkpointing, eager
attention) keeps an H100 about 4 % busy. Most of the gap is closed by choices, not code:
bf16 (no loss scaling), PyTorch SDPA (flash kernels), a fused AdamW, the largest batch that
fits instead of recomputing activations, and ``torch.compile`` (measured: 35.6 -> 263
samples/s for whisper-small at 30 s on one H100; docs/performance.md).
The other big lever is padding: Whisper pads every clip to 30 s (3000 mel frames, 1500
encoder positions) while banking utterances last 3-8 s, so most encoder FLOPs are spent on
silence. :func:`shorten_encoder_context` trims the encoder to the data's longest clip plus a
safety margin (whisper.cpp's ``audio_ctx``; FUTO's ACFT shows it holds once fine-tuned), and
``whisper_tune.train.sampler.LengthBucketSampler`` keeps label padding low.

:func:`plan_fast_path` makes every choice for a device (CPU included: there it mostly says
"no compile, plain AdamW, no loader workers"), :func:`apply_fast_path` applies it to the
model and :func:`training_args_overrides` to the HF Trainer; the training recipe
(``whisper_tune.train.recipe``) and the throughput benchmark (``bench/train_throughput.py``)
call exactly these. Only what training uses lives here (benchmark-only helpers such as
FLOP counting and batch sizing are in ``bench/_lib.py``). Nothing here imports Ray or
DeepSpeed.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from whisper_tune.errors import UserError
from whisper_tune.models.load import cpu_bf16_native
from whisper_tune.train.compat import (
    checkpointing_args,
    cuda_bf16_supported,
    is_checkpointing,
    set_checkpointing,
)

__all__ = [
    "FULL_FRAMES",
    "MIN_STEPS_FOR_COMPILE",
    "FastPathPlan",
    "apply_fast_path",
    "choose_encoder_frames",
    "compile_encoder",
    "compile_model",
    "encoder_frames",
    "hf_optim_name",
    "plan_fast_path",
    "resolve_precision",
    "select_attn_implementation",
    "shorten_encoder_context",
    "training_args_overrides",
    "uncompiled",
]

FULL_FRAMES = 3000
"""Mel frames of Whisper's fixed 30 s window (10 ms hop); the encoder halves them."""

MIN_STEPS_FOR_COMPILE = 1000
"""Below this many optimizer steps ``compile="auto"`` stays eager (see :func:`plan_fast_path`)."""

_PRECISION_ALIASES = {
    "auto": "auto",
    "bf16": "bf16",
    "bfloat16": "bf16",
    "fp16": "fp16",
    "float16": "fp16",
    "half": "fp16",
    "fp32": "fp32",
    "float32": "fp32",
    "float": "fp32",
    "32": "fp32",
    "no": "fp32",
}


def _device_type(device: str | torch.device | None) -> str:
    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if isinstance(device, torch.device):
        return device.type
    text = str(device).strip().lower()
    if text == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        return torch.device(text).type
    except (RuntimeError, ValueError) as exc:
        raise UserError(f"unknown device {device!r} (use cpu, cuda, cuda:N or auto)") from exc


def _cuda_supports_bf16(device: str | torch.device | None) -> bool:
    return cuda_bf16_supported()


def resolve_precision(precision: str, device: str | torch.device | None) -> str:
    """Turn a user's precision choice into ``"bf16"``, ``"fp16"`` or ``"fp32"`` for ``device``.

    ``auto``: bf16 on CUDA GPUs that do it natively (Ampere and newer), fp16 on older CUDA GPUs;
    on the CPU bf16 autocast where the CPU does bf16 in hardware (AVX512-BF16 or AMX:
    ``models.load.cpu_bf16_native``, 1.6x faster encoder training measured), else fp32 (emulated
    bf16 is slower than fp32). Explicit choices are
    honoured where they can run, else a :class:`UserError` says why.
    """
    key = str(precision).strip().lower()
    if key not in _PRECISION_ALIASES:
        raise UserError(f"train.precision: unknown value {precision!r} (use auto, bf16, fp16 or fp32)")
    choice = _PRECISION_ALIASES[key]
    dev = _device_type(device)
    if choice == "auto":
        if dev == "cuda":
            return "bf16" if _cuda_supports_bf16(device) else "fp16"
        return "bf16" if cpu_bf16_native() else "fp32"
    if dev == "cuda" and choice == "bf16" and torch.cuda.is_available() and not _cuda_supports_bf16(device):
        raise UserError("train.precision: bf16 needs an Ampere or newer GPU; use fp16 or auto on this GPU")
    if dev != "cuda" and choice == "fp16":
        raise UserError(
            f"train.precision: fp16 mixed precision needs a CUDA GPU (device is {dev}); use bf16 or fp32"
        )
    return choice


def select_attn_implementation(device: str | torch.device | None, precision: str = "auto") -> str:
    """``flash_attention_2`` when the flash-attn package and a CUDA half-precision run allow it,
    else ``sdpa`` (on H100 PyTorch's SDPA already dispatches to a FlashAttention-2 kernel).

    Never ``eager``: it materialises the 1500x1500 attention matrix per head.
    """
    dev = _device_type(device)
    prec = resolve_precision(precision, device)
    if dev == "cuda" and prec in ("bf16", "fp16") and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


def hf_optim_name(device: str | torch.device | None) -> str:
    """``TrainingArguments.optim`` value: the fused CUDA AdamW on GPU, the plain one elsewhere."""
    return "adamw_torch_fused" if _device_type(device) == "cuda" else "adamw_torch"


# --------------------------------------------------------------------------- encoder context


def encoder_frames(model: Any) -> int:
    """Mel frames the model's encoder accepts (2 x ``config.max_source_positions``)."""
    return 2 * int(model.config.max_source_positions)


def choose_encoder_frames(max_duration_s: float, margin_frames: int = 64, multiple: int = 16) -> int:
    """Mel frames for clips up to ``max_duration_s``: the clip's frames plus a safety margin.

    The margin (>= 32 frames; 64 by default) leaves the model trailing silence to see the end
    of speech, as whisper.cpp's ``audio_ctx`` users found necessary. The result is rounded up to
    ``multiple`` (even, so the stride-2 conv gives whole positions; 16 keeps the encoder's
    sequence a multiple of 8 for the tensor cores) and capped at 3000 (30 s).
    """
    if not math.isfinite(max_duration_s) or max_duration_s <= 0:
        raise UserError(f"max clip duration must be a positive number of seconds, got {max_duration_s!r}")
    if margin_frames < 32:
        raise UserError(f"encoder context margin must be at least 32 frames, got {margin_frames}")
    if multiple < 2 or multiple % 2:
        raise UserError(f"frame multiple must be an even number >= 2, got {multiple}")
    frames = math.ceil(max_duration_s * 100.0) + int(margin_frames)
    frames = math.ceil(frames / multiple) * multiple
    return min(frames, FULL_FRAMES)


def shorten_encoder_context(model: Any, n_frames: int) -> Any:
    """Trim a Whisper model's encoder to ``n_frames`` mel frames (``n_frames // 2`` positions).

    Keeps the first ``n_frames // 2`` rows of the encoder's position table and sets
    ``config.max_source_positions`` so transformers' input-length check (and generation's
    segment length) accept features of exactly ``n_frames``. Features must be cut (or padded)
    to ``n_frames`` by the collator (``whisper_tune.data.WhisperCollator(n_frames=...)``). Outputs are NOT identical to the
    full model on zero-padded input (attention no longer sees the padding), which is why the
    model must be fine-tuned at the short context before it transcribes well. Works in place
    and returns the model; saving it stores the short context in ``config.json``.
    """
    if isinstance(n_frames, bool) or not isinstance(n_frames, int):
        raise UserError(f"encoder frames must be an integer, got {n_frames!r}")
    current = encoder_frames(model)
    if n_frames <= 0 or n_frames % 2:
        raise UserError(f"encoder frames must be a positive even number, got {n_frames}")
    if n_frames > current:
        raise UserError(f"cannot lengthen the encoder context from {current} to {n_frames} frames")
    if n_frames == current:
        return model
    positions = n_frames // 2
    encoder = model.get_encoder()
    old = encoder.embed_positions
    new = torch.nn.Embedding(positions, old.embedding_dim, device=old.weight.device, dtype=old.weight.dtype)
    with torch.no_grad():
        new.weight.copy_(old.weight[:positions])
    new.weight.requires_grad_(old.weight.requires_grad)
    encoder.embed_positions = new
    encoder.max_source_positions = positions
    model.config.max_source_positions = positions
    if getattr(encoder, "config", None) is not None and encoder.config is not model.config:
        encoder.config.max_source_positions = positions
    decoder = model.get_decoder()
    if hasattr(decoder, "max_source_positions"):
        decoder.max_source_positions = positions
    return model


def compile_encoder(model: Any, *, mode: str | None = None) -> Any:
    """``torch.compile`` the encoder in place (its input shape never changes; the decoder's does).

    The encoder holds ~85-90 % of Whisper's training FLOPs at 30 s and sees one shape per run,
    so it compiles once and never recompiles; the decoder, whose label length varies per batch,
    stays eager. ``nn.Module.compile`` keeps parameter names, so checkpoints are unchanged.
    Use with a fixed batch size (drop the last partial batch) or accept one recompile.
    """
    model.get_encoder().compile(mode=mode, dynamic=False)
    return model


def compile_model(model: Any, *, mode: str | None = None) -> Any:
    """``torch.compile`` the whole model in place (the fast path's default on CUDA).

    Measured on an H100 (whisper-small, 30 s, batch 88): encoder-only compile 244 samples/s,
    whole model 263 (+8 %; the decoder's and the loss's elementwise work fuses too). Label
    lengths vary per batch: with ``dynamic=None`` dynamo recompiles once with a symbolic length
    and then reuses that graph (measured: same speed as padding labels to one fixed length).
    Needs ``config.use_cache = False`` while training (set by :func:`apply_fast_path`), else the
    per-layer cache state makes every decoder layer recompile. Parameter names are unchanged.
    """
    model.compile(mode=mode)
    return model


@contextlib.contextmanager
def uncompiled(model: Any) -> Iterator[Any]:
    """Inside the block, ``model`` and its submodules run eagerly (``nn.Module.compile`` undone).

    Use around ``generate()`` (e.g. the Trainer's predict-with-generate evaluation): decoding
    calls the model once per token with a growing KV cache, which a training-compiled graph
    would recompile for again and again. The compiled graphs are kept and restored on exit.
    """
    saved = [(m, m._compiled_call_impl) for m in model.modules() if getattr(m, "_compiled_call_impl", None)]
    try:
        for m, _ in saved:
            m._compiled_call_impl = None
        yield model
    finally:
        for m, impl in saved:
            m._compiled_call_impl = impl


# --------------------------------------------------------------------------- plan


@dataclass
class FastPathPlan:
    """What the fast path chose for one run, and why (written next to the run's metrics)."""

    device: str
    precision: str
    attn_implementation: str
    optim: str
    compile_scope: str  # "model" | "encoder" | "none"
    gradient_checkpointing: bool
    n_frames: int = FULL_FRAMES
    dataloader_num_workers: int = 4
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan_fast_path(
    device: str | torch.device | None = "auto",
    precision: str = "auto",
    *,
    n_frames: int = FULL_FRAMES,
    compile: bool | str = "auto",
    gradient_checkpointing: bool | str = "auto",
    num_workers: int | None = None,
    expected_steps: int | None = None,
    attn_implementation: str | None = None,
) -> FastPathPlan:
    """Choose the fast-path settings for ``device`` (the one plan for CPU and GPU runs).

    ``compile``: ``"auto"`` compiles the whole model on CUDA and nothing on CPU (there the
    compile time is not won back in a short fine-tune). On CUDA, when ``expected_steps`` is
    known and below :data:`MIN_STEPS_FOR_COMPILE`, ``auto`` does not compile either: measured
    on an H100, compiling cost 23-62 s of warm-up (the high end with varying label lengths)
    and saved 0.01-0.12 s a step, so a 120-step fine-tune of tiny.en reached the same WER in
    5.6 s uncompiled vs 62.9 s compiled. ``True``/``"model"``, ``"encoder"``
    (fixed-shape part only), ``False``/``"none"``. ``gradient_checkpointing="auto"``: off
    (memory is spent on a bigger batch instead; turn it on only when even a small batch does
    not fit). ``num_workers=None``: on CUDA one loader process per spare core (at most 8), so
    the GPU never waits for a batch; on CPU none, since the training threads already use the
    worker's cores. ``attn_implementation``: an explicit choice (a job's ``eager``) wins over
    :func:`select_attn_implementation`.
    """
    import os

    dev = _device_type(device)
    prec = resolve_precision(precision, dev)
    notes: list[str] = []
    if compile == "auto":
        scope = "model" if dev == "cuda" else "none"
        if scope == "model" and expected_steps is not None and expected_steps < MIN_STEPS_FOR_COMPILE:
            scope = "none"
            notes.append(
                f"torch.compile skipped: {expected_steps} steps < {MIN_STEPS_FOR_COMPILE}, compile time would not pay"
            )
    elif isinstance(compile, bool):
        scope = "model" if compile else "none"
    elif compile in ("model", "encoder", "none"):
        scope = str(compile)
    else:
        raise UserError(f"train.compile: use auto, true, false, model, encoder or none, got {compile!r}")
    if gradient_checkpointing == "auto":
        ckpt = False
    elif isinstance(gradient_checkpointing, bool):
        ckpt = gradient_checkpointing
    else:
        raise UserError(
            f"train.gradient_checkpointing: use true, false or auto, got {gradient_checkpointing!r}"
        )
    if ckpt and scope != "none":
        notes.append("torch.compile skipped: gradient checkpointing is on")
        scope = "none"
    if n_frames != FULL_FRAMES:
        notes.append(f"encoder context shortened to {n_frames} frames ({n_frames / 100:.2f} s)")
    if num_workers is not None:
        workers = num_workers
    else:
        workers = min(8, max(1, (os.cpu_count() or 2) - 1)) if dev == "cuda" else 0
    return FastPathPlan(
        device=dev,
        precision=prec,
        attn_implementation=attn_implementation or select_attn_implementation(dev, prec),
        optim=hf_optim_name(dev),
        compile_scope=scope,
        gradient_checkpointing=ckpt,
        n_frames=n_frames,
        dataloader_num_workers=workers,
        notes=notes,
    )


def apply_fast_path(model: Any, plan: FastPathPlan) -> Any:
    """Apply a plan to a model in place: attention kernel, context, checkpointing, compile."""
    if getattr(model.config, "_attn_implementation", None) != plan.attn_implementation:
        model.set_attn_implementation(plan.attn_implementation)
    if plan.n_frames != encoder_frames(model):
        shorten_encoder_context(model, plan.n_frames)
    # Training never reads the decoder's KV cache; building one anyway costs time and makes
    # torch.compile guard (and recompile) on per-layer cache state. generate() still caches.
    model.config.use_cache = False
    if plan.gradient_checkpointing:
        set_checkpointing(model, True)
    elif is_checkpointing(model):
        set_checkpointing(model, False)
    if plan.device == "cuda":
        # fp32 matmuls outside autocast (generate()'s encoder pass in evaluation) on TF32 cores
        torch.backends.cuda.matmul.allow_tf32 = True
    if plan.compile_scope == "model":
        compile_model(model)
    elif plan.compile_scope == "encoder":
        compile_encoder(model)
    return model


def training_args_overrides(plan: FastPathPlan) -> dict[str, Any]:
    """``Seq2SeqTrainingArguments`` keyword arguments that realise ``plan`` in the HF Trainer.

    Precision, optimizer, checkpointing (under the installed transformers' name for it,
    :func:`whisper_tune.train.compat.checkpointing_args`) and the data loader. ``torch.compile``
    is applied to the model by :func:`apply_fast_path` (in place, so names and checkpoints are
    unchanged), not through ``torch_compile``; a compiled model gets fixed-size batches (the
    last partial one dropped) so it does not recompile for it.
    """
    workers = plan.dataloader_num_workers
    return {
        "bf16": plan.precision == "bf16",
        "fp16": plan.precision == "fp16",
        "optim": plan.optim,
        **checkpointing_args(plan.gradient_checkpointing),
        "dataloader_num_workers": workers,
        "dataloader_pin_memory": plan.device == "cuda",
        "dataloader_persistent_workers": workers > 0,
        "dataloader_prefetch_factor": 4 if workers > 0 else None,
        "dataloader_drop_last": plan.compile_scope != "none",
        "torch_compile": False,
        # No host-device sync per step, so the CPU queues step n+1 (batch fetch included) while
        # the GPU runs step n: the Trainer's NaN/inf loss filter reads the loss every step, and
        # a blocking host-to-device copy waits for the queued work.
        "logging_nan_inf_filter": plan.device != "cuda",
        **({"accelerator_config": {"non_blocking": True}} if plan.device == "cuda" else {}),
    }
