"""The automatic GPU plan: ZeRO stage, batch size, precision, compile, context and eval length.

Why: a config that hard-codes DeepSpeed ZeRO-2 and batch 32 (what ``configs/small-gpu.yaml``
used to ship) ran ``whisper-tune train`` at 81 samples/s on one H200 where the same job with
no ZeRO and batch 128 ran at 647 and compiled at 943: ZeRO on one GPU costs ~8x, and a fixed
batch leaves most of the card idle. The right values follow from numbers a worker can read
(GPU count and memory, the model's parameter count and shape, the data's clip and label
lengths, the run's length), so ``auto`` in the config means: decide them here, from a memory
estimate, and say why. Every choice carries its reason; the plan is printed by rank 0 and
written to the run's ``plan.json``. An explicit setting in the config always wins.

The memory model (per GPU, bytes) is calibrated on measured peaks (one H200/H100, bf16
autocast, SDPA, no checkpointing, 30 s inputs): whisper-small batch 88 peaked at 64.9 GiB
uncompiled, large-v3-turbo batch 32 at 91.8 GiB and large-v3 batch 32 at 116.6 GiB. That gives
about 43 bytes per (encoder layer x encoder position x width) and 9 bytes per (decoder layer x
encoder position x width) for the cross-attention keys/values, plus the AdamW states below.
Nothing here touches CUDA: the GPU facts come in as numbers, so the plan is unit-tested on CPU.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from whisper_tune.train.config import JobConfig
from whisper_tune.train.fastpath import FULL_FRAMES, choose_encoder_frames, resolve_precision

__all__ = [
    "ENC_ACT_BYTES",
    "GpuFacts",
    "GpuPlan",
    "ModelFacts",
    "activation_bytes",
    "auto_context",
    "batch_of",
    "generation_length_of",
    "make_plan",
    "state_bytes",
]

GIB = 2**30
ENC_ACT_BYTES = 43.0  # saved activations per encoder layer x position x width (bf16 autocast, SDPA)
CROSS_ACT_BYTES = 9.0  # per decoder layer x encoder position x width (cross-attention K/V)
DEC_ACT_BYTES = 60.0  # per decoder layer x label token x width
LOGIT_BYTES = 10.0  # per label token x vocabulary entry (bf16 logits, fp32 loss, its gradient)
MEMORY_FRACTION = 0.88  # of the card the plan fills; the rest is allocator slack and fragmentation
RESERVE_BYTES = 2 * GIB  # CUDA context, cuBLAS/cuDNN workspaces, NCCL buffers
MAX_AUTO_BATCH = 128  # measured: batch 112 vs 88 at 30 s gave 264.7 vs 263.1 samples/s (saturated)
MAX_EVAL_BATCH = 512  # predict-with-generate is launch-bound per token: one big batch beats two
MIN_STEPS_PER_EPOCH = 32  # a bigger batch than this allows trades too many optimizer steps away
SHORTEN_BELOW = 0.8  # shorten the context when it keeps at most this share of the 3000 frames
# torch.compile, measured in `whisper-tune train` on one H200 (whisper-small, 816 frames, batch 128,
# one graph: full-width label batches): 684.7 -> 1061.7 samples/s per step (35 % of the step time
# saved), and the first two steps took 32.4 s compiled vs 4.0 s eager (28 s of compile).
COMPILE_SPEEDUP = 0.35  # share of each step's time saved by torch.compile
COMPILE_COST_S = 16.0  # one-off compile seconds: this + COMPILE_S_PER_LAYER per layer (small: 28 s)
COMPILE_S_PER_LAYER = 0.5
EAGER_MFU = 0.2  # uncompiled share of peak, for the step-time estimate (measured 19.3 % above)
DEFAULT_PEAK = 300e12  # FLOP/s assumed for a GPU missing from PEAKS
# Dense bf16 tensor-core peaks (vendor data sheets), matched as substrings of the device name.
PEAKS: tuple[tuple[str, float], ...] = (
    ("H100 PCIe", 756e12),
    ("H100", 989e12),
    ("H200", 989e12),
    ("GH200", 989e12),
    ("A100", 312e12),
    ("L40S", 362e12),
    ("L4", 121e12),
)


def batch_of(t: Any) -> int:
    """``train.per_device_batch_size`` as a number (``auto`` not resolved: the default 8)."""
    return t.per_device_batch_size if isinstance(t.per_device_batch_size, int) else 8


def generation_length_of(t: Any) -> int:
    """``train.generation_max_length`` as a number (``auto`` not resolved: Whisper's 225)."""
    return t.generation_max_length if isinstance(t.generation_max_length, int) else 225


@dataclass(frozen=True)
class GpuFacts:
    """What the plan needs to know about the GPUs of a job (all GPUs alike)."""

    name: str
    count: int  # GPUs in the job (Ray Train workers, one GPU each)
    memory_bytes: int  # per GPU
    bf16: bool = True
    host_memory_bytes: int | None = None  # per node, for CPU offload

    @property
    def peak_flops(self) -> float:
        for key, value in PEAKS:
            if key.lower() in self.name.lower():
                return value
        return DEFAULT_PEAK

    @classmethod
    def probe(cls, world_size: int, device: str) -> GpuFacts | None:
        """The facts of this worker's CUDA device (None on CPU)."""
        import torch

        if not device.startswith("cuda") or not torch.cuda.is_available():
            return None
        props = torch.cuda.get_device_properties(torch.device(device))
        host = None
        try:
            import os

            host = int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
        except (ValueError, OSError, AttributeError):
            pass
        bf16 = bool(torch.cuda.is_bf16_supported())
        return cls(props.name, max(1, world_size), int(props.total_memory), bf16, host)


@dataclass(frozen=True)
class ModelFacts:
    """The model's size and shape, as the memory estimate uses them."""

    params: int
    trainable: int
    d_model: int
    encoder_layers: int
    decoder_layers: int
    vocab: int
    encoder_trainable: bool = True

    @classmethod
    def from_model(cls, model: Any) -> ModelFacts:
        c = model.config
        params = sum(p.numel() for p in model.parameters())
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        enc = model.get_encoder() if hasattr(model, "get_encoder") else None
        enc_train = enc is None or any(p.requires_grad for p in enc.parameters())
        return cls(
            int(params),
            int(trainable),
            int(c.d_model),
            int(c.encoder_layers),
            int(c.decoder_layers),
            int(c.vocab_size),
            bool(enc_train),
        )


def state_bytes(m: ModelFacts, zero: str, world: int) -> float:
    """Per-GPU bytes of weights, gradients and AdamW state under a DeepSpeed preset (or none).

    none (DDP): fp32 weights + fp32 grads + Adam m, v (16 bytes per trainable parameter, 4 per
    frozen) plus a bf16 copy autocast makes. ZeRO under bf16: bf16 weights and grads plus fp32
    master weights and Adam (12 bytes), the latter sharded over ``world`` (ZeRO-1/2; ZeRO-3 also
    shards weights and grads); ``_offload`` keeps the 12 bytes in host memory instead.
    """
    p, t = float(m.params), float(m.trainable)
    n = max(1, world)
    if zero == "none":
        return 4 * p + 12 * t + 2 * p
    opt = 0.0 if zero.endswith("_offload") else 12 * t / n
    if zero.startswith("zero3"):
        return (2 * p + 2 * t) / n + opt + 2 * p / max(1, m.encoder_layers)  # + one gathered layer
    grads = 2 * t / n if zero.startswith("zero2") else 2 * t
    return 2 * p + grads + opt


def activation_bytes(m: ModelFacts, n_frames: int, label_len: float) -> float:
    """Bytes of saved activations per sample for one training step (no checkpointing)."""
    te = n_frames // 2
    enc = m.encoder_layers * te * m.d_model * ENC_ACT_BYTES if m.encoder_trainable else te * m.d_model * 8
    cross = m.decoder_layers * te * m.d_model * CROSS_ACT_BYTES
    dec = m.decoder_layers * label_len * m.d_model * DEC_ACT_BYTES
    return enc + cross + dec + label_len * m.vocab * LOGIT_BYTES


def auto_context(longest_s: float, margin_frames: int) -> tuple[int, str]:
    """(frames, reason) for ``train.short_audio: auto``: shorten only when it saves enough."""
    frames = choose_encoder_frames(longest_s, margin_frames)
    if frames <= SHORTEN_BELOW * FULL_FRAMES:
        return frames, (
            f"longest clip {longest_s:.2f} s: encoder context {frames} frames "
            f"({frames / FULL_FRAMES:.0%} of the 30 s window's encoder work)"
        )
    return (
        FULL_FRAMES,
        f"longest clip {longest_s:.2f} s: a shorter context would save under {1 - SHORTEN_BELOW:.0%}",
    )


@dataclass
class Choice:
    value: Any
    reason: str
    source: str = "auto"  # "auto" (decided here) or "config" (the user's explicit setting)


@dataclass
class GpuPlan:
    """The resolved settings of a run and why; ``apply`` writes them into a copy of the job."""

    choices: dict[str, Choice] = field(default_factory=dict)
    memory: dict[str, Any] = field(default_factory=dict)  # GiB: budget, states, per sample, peak

    def value(self, key: str) -> Any:
        return self.choices[key].value

    def to_dict(self) -> dict[str, Any]:
        return {"choices": {k: asdict(v) for k, v in self.choices.items()}, "memory": self.memory}

    def summary(self) -> str:
        lines = ["GPU plan (plan.json in the run dir):"]
        for key, c in self.choices.items():
            lines.append(f"  {key:<24} {c.value!s:<14} [{c.source}] {c.reason}")
        return "\n".join(lines)

    def apply(self, job: JobConfig) -> JobConfig:
        """A copy of ``job`` with every ``auto`` the plan resolved replaced by its value."""
        keys = ("per_device_batch_size", "eval_batch_size", "deepspeed", "precision", "generation_max_length")
        train = replace(job.train, **{k: self.value(k) for k in keys if k in self.choices})
        return replace(job, train=train)


def _batch_fit(budget: float, states: float, per_sample: float) -> int:
    return int(max(0.0, budget - states) // max(per_sample, 1.0))


def _round_batch(b: int) -> int:
    return b - b % 8 if b >= 16 else max(1, b)


def make_plan(
    job: JobConfig,
    gpu: GpuFacts | None,
    model: ModelFacts,
    *,
    n_frames: int,
    context_reason: str,
    n_train: int,
    label_len: float,
    longest_label: int,
    bnb_available: bool | None = None,
) -> GpuPlan:
    """Decide every ``auto`` of ``job.train`` for ``gpu`` (None: CPU) and ``model``.

    ``n_frames`` is the encoder context already chosen (:func:`auto_context` or the config),
    ``label_len`` the mean label length in tokens, ``longest_label`` the longest one.
    """
    t = job.train
    plan = GpuPlan()
    ch = plan.choices
    world = gpu.count if gpu is not None else max(1, job.scaling.num_workers)
    ch["encoder_frames"] = Choice(n_frames, context_reason, "auto" if t.short_audio == "auto" else "config")

    if t.precision == "auto":
        prec = ("bf16" if gpu.bf16 else "fp16") if gpu is not None else resolve_precision("auto", "cpu")
        why = (
            "bf16 autocast, no loss scaling"
            if prec == "bf16"
            else ("fp16: no bf16 on this GPU" if gpu else "CPU")
        )
        ch["precision"] = Choice(prec, why)
    else:
        ch["precision"] = Choice(t.precision, "set in the config", "config")

    per_sample = activation_bytes(model, n_frames, label_len)
    budget = (gpu.memory_bytes * MEMORY_FRACTION - RESERVE_BYTES) if gpu is not None else 0.0
    explicit_batch = t.per_device_batch_size if t.per_device_batch_size != "auto" else None
    probe_batch = explicit_batch or 8

    if t.deepspeed != "auto":
        zero, zreason, zsrc = t.deepspeed, "set in the config", "config"
    elif gpu is None:
        zero, zreason, zsrc = "none", "CPU workers: plain DDP", "auto"
    else:
        zero, zreason = _choose_zero(job, gpu, model, budget, per_sample, probe_batch, bnb_available)
        zsrc = "auto"
    optim = None
    if zero == "adamw_8bit":
        zero, optim = "none", "adamw_bnb_8bit"
    ch["deepspeed"] = Choice(zero, zreason, zsrc)
    states = state_bytes(model, zero if zero in _PRESET_NAMES else "none", world)
    if optim:
        states -= 6.0 * model.trainable  # 8-bit Adam moments: 2 instead of 8 bytes per parameter
        ch["optim"] = Choice(optim, "AdamW state does not fit in fp32: bitsandbytes 8-bit AdamW")

    if explicit_batch is not None:
        batch = explicit_batch
        ch["per_device_batch_size"] = Choice(batch, "set in the config", "config")
    elif gpu is None:
        batch = 8
        ch["per_device_batch_size"] = Choice(batch, "CPU: time, not memory, limits the batch")
    else:
        fit = _batch_fit(budget, states, per_sample)
        cap_steps = max(8, n_train // max(1, world * MIN_STEPS_PER_EPOCH))
        batch = _round_batch(max(1, min(fit, MAX_AUTO_BATCH, cap_steps)))
        limit = (
            "memory"
            if fit <= min(MAX_AUTO_BATCH, cap_steps)
            else (
                f">= {MIN_STEPS_PER_EPOCH} steps per epoch"
                if cap_steps < MAX_AUTO_BATCH
                else "cap (GPU saturated)"
            )
        )
        why = f"{limit}: {fit} fit ({per_sample / GIB:.2f} GiB per sample at {n_frames} frames)"
        ch["per_device_batch_size"] = Choice(batch, why)
    # Not done: a bigger batch for a compiled run (its peaks sat ~15 % under the eager estimate).
    # Measured on one H200, large-v3-turbo at 30 s compiled: batch 40 ran 59.5 samples/s at 97 GiB,
    # batch 48 15.4 samples/s at 114.6 GiB (the allocator at the card's edge). Memory sets the batch.
    if t.eval_batch_size is not None:
        ch["eval_batch_size"] = Choice(t.eval_batch_size, "set in the config", "config")
    else:
        ev = batch
        if gpu is not None:  # decoding is launch-bound: fewer, bigger batches; KV cache + encoder pass fit
            gen = (
                model.decoder_layers * 4.0 * (n_frames // 2 + 64) * model.d_model
                + n_frames // 2 * model.d_model * 24
            )
            ev = max(
                batch, min(MAX_EVAL_BATCH, 4 * batch, _round_batch(int((budget - 6 * model.params) // gen)))
            )
        ch["eval_batch_size"] = Choice(
            ev, "generation keeps no activations for backward: up to 4x the train batch"
        )

    if t.generation_max_length == "auto":
        gen = min(448, math.ceil(1.25 * longest_label) + 16)
        ch["generation_max_length"] = Choice(gen, f"longest label {longest_label} tokens x 1.25 + 16")
    else:
        ch["generation_max_length"] = Choice(t.generation_max_length, "set in the config", "config")

    steps = _expected_steps(job, n_train, batch, world)
    ch["compile"] = _choose_compile(job, gpu, model, n_frames, label_len, batch, steps)
    peak = states + batch * per_sample
    plan.memory = {
        "budget_gib": round(budget / GIB, 2),
        "states_gib": round(states / GIB, 2),
        "per_sample_gib": round(per_sample / GIB, 3),
        "estimated_peak_gib": round(peak / GIB, 2),
        "expected_steps": steps,
    }
    return plan


_PRESET_NAMES = ("none", "zero1", "zero2", "zero3", "zero2_offload", "zero3_offload")


def _choose_zero(
    job: JobConfig,
    gpu: GpuFacts,
    model: ModelFacts,
    budget: float,
    per_sample: float,
    probe_batch: int,
    bnb_available: bool | None,
) -> tuple[str, str]:
    """The cheapest way to fit ``probe_batch`` samples (else 1): DDP, 8-bit AdamW, ZeRO-2/3, offload."""
    n = gpu.count
    no_zero3 = job.train.strategy == "lora" or job.train.cache_encoder_outputs
    for probe in dict.fromkeys((probe_batch, 1)):
        act = probe * per_sample
        need = (state_bytes(model, "none", n) + act) / GIB
        if state_bytes(model, "none", n) + act <= budget:
            small = _batch_fit(budget, state_bytes(model, "none", n), per_sample) < 32
            if n > 1 and small and state_bytes(model, "zero2", n) + act <= budget:
                return "zero2", f"{n} GPUs: sharding the optimizer state leaves room for a batch >= 32"
            return "none", (
                f"weights + AdamW + batch {probe} need {need:.1f} of {budget / GIB:.1f} GiB: no ZeRO "
                "(on one GPU ZeRO-2 measured ~8x slower, 81 vs 647 samples/s)"
            )
        if n == 1:
            if bnb_available is None:
                bnb_available = importlib.util.find_spec("bitsandbytes") is not None
            if bnb_available and state_bytes(model, "none", n) - 6.0 * model.trainable + act <= budget:
                return "adamw_8bit", f"fp32 AdamW needs {need:.1f} GiB > {budget / GIB:.1f}; 8-bit AdamW fits"
            order = ["zero2_offload", "zero3_offload"]
        else:
            order = ["zero2", "zero3", "zero2_offload", "zero3_offload"]
        for zero in order:
            if zero.startswith("zero3") and no_zero3:
                continue
            if state_bytes(model, zero, n) + act <= budget:
                return (
                    zero,
                    f"no ZeRO needs {need:.1f} GiB per GPU > {budget / GIB:.1f}; {zero} fits batch {probe}",
                )
    last = "zero2_offload" if no_zero3 else "zero3_offload"
    return (
        last,
        f"not even batch 1 fits in {budget / GIB:.1f} GiB: {last}; turn on train.gradient_checkpointing",
    )


def _expected_steps(job: JobConfig, n_train: int, batch: int, world: int) -> int:
    t = job.train
    if t.max_steps > 0:
        return t.max_steps
    per_step = batch * t.gradient_accumulation_steps * max(1, world)
    return max(1, math.ceil(t.num_epochs * math.ceil(n_train / per_step)))


def _choose_compile(
    job: JobConfig,
    gpu: GpuFacts | None,
    model: ModelFacts,
    n_frames: int,
    label_len: float,
    batch: int,
    steps: int,
) -> Choice:
    c = job.train.compile
    if c != "auto":
        return Choice(c, "set in the config", "config")
    if gpu is None:
        return Choice("none", "CPU: compile time is not won back in a fine-tune")
    if job.train.gradient_checkpointing:
        return Choice("none", "gradient checkpointing is on")
    flops = 3.0 * _forward_flops(model, n_frames, label_len) * batch
    step_s = flops / (gpu.peak_flops * EAGER_MFU)
    saved = COMPILE_SPEEDUP * step_s * steps
    cost = COMPILE_COST_S + COMPILE_S_PER_LAYER * (model.encoder_layers + model.decoder_layers)
    why = (
        f"{steps} steps x ~{step_s:.2f} s: compiling saves ~{saved:.0f} s vs ~{cost:.0f} s to compile "
        f"(break-even ~{math.ceil(cost / max(COMPILE_SPEEDUP * step_s, 1e-9))} steps)"
    )
    return Choice("model" if saved > cost else "none", why)


def _forward_flops(m: ModelFacts, n_frames: int, label_len: float) -> float:
    """Forward FLOPs per sample (matmuls + attention; the benchmarks' formula, per-side depths)."""
    d, te, lab = float(m.d_model), float(n_frames // 2), float(label_len)
    enc = m.encoder_layers * (24 * d * d * te + 4 * d * te * te) + 1440 * te * d + 6 * te * d * d
    dec = m.decoder_layers * (28 * d * d * lab + 4 * d * d * te + 4 * d * lab * te + 4 * d * lab * lab)
    return enc + dec + 2 * d * m.vocab * lab
