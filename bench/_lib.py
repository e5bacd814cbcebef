"""Helpers shared by the benchmarks: models of real shapes, FLOPs and device peaks, batch sizing,
synthetic inputs, timing, machine facts and result JSON.

Why: the benchmarks must time the product's code (the fast-path plan, the Trainer the
recipe builds, the serving options), and everything around that (random models, a FLOP
count, an MFU denominator, a batch sized to memory, synthetic features, timing, the JSON
written) was copied from script to script, or lived in the product although no training
run uses it. It lives here once. Imports only torch/transformers at module level; the
repo's ``src/`` is put on ``sys.path`` when ``whisper_tune`` is not installed, so a script
runs on a GPU machine that has torch + transformers and the carried tree, and nothing else.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback

SRC = Path(__file__).resolve().parents[1] / "src"
try:
    import whisper_tune  # noqa: F401
except ImportError:  # the carried tree without an install: use its src/
    sys.path.insert(0, str(SRC))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

__all__ = [
    "PEAK_BF16_FLOPS",
    "BatchSizeEstimate",
    "FeatureCollate",
    "NoEvalNoSave",
    "SyntheticFeatures",
    "autocast_dtype",
    "bare_whisper",
    "cut_features",
    "environment",
    "estimate_batch_size",
    "fused_adamw",
    "model_flops_utilization",
    "peak_flops",
    "random_whisper",
    "run_product_trainer",
    "trainer_job",
    "seed_plan",
    "sync",
    "time_per_call",
    "whisper_forward_flops",
    "write_json",
]

FULL_FRAMES = 3000  # Whisper's 30 s window in mel frames (whisper_tune.train.fastpath.FULL_FRAMES)

# Dense (no sparsity) bf16 tensor-core peaks in FLOP/s from the vendors' data sheets (the MFU
# denominator), matched as substrings of torch.cuda.get_device_name(), first match first.
PEAK_BF16_FLOPS: tuple[tuple[str, float], ...] = (
    ("H100 PCIe", 756e12),
    ("H100", 989e12),  # SXM
    ("H200", 989e12),
    ("GH200", 989e12),
    ("A100", 312e12),
    ("L40S", 362e12),
    ("L4", 121e12),
)


def peak_flops(device_name: str, override: float | None = None) -> float | None:
    """The bf16 dense peak of a GPU by name (``override`` wins); None when not in the table."""
    if override:
        return float(override)
    for key, value in PEAK_BF16_FLOPS:
        if key.lower() in device_name.lower():
            return value
    return None


def whisper_forward_flops(config: Any, label_len: float, n_frames: int | None = None) -> float:
    """Forward FLOPs per sample for a Whisper ``config`` (matmuls and attention, 2 FLOPs per MAC).

    ``n_e (24 d^2 Te + 4 d Te^2) + 1440 Te d + 6 Te d^2 + n_d (28 d^2 L + 4 d^2 Te + 4 d L Te
    + 4 d L^2) + 2 d V L`` with n_e encoder and n_d decoder layers (4 vs 32 in large-v3-turbo), d
    width, Te encoder positions (``n_frames // 2``), L label tokens, V vocabulary: encoder, conv
    front-end, decoder self- and cross-attention (with the K/V projections of the encoder
    output), MLPs, output projection.
    """
    d = float(config.d_model)
    ne = float(config.encoder_layers)
    nd = float(getattr(config, "decoder_layers", config.encoder_layers))
    te = float((n_frames if n_frames is not None else 2 * config.max_source_positions) // 2)
    v = float(config.vocab_size)
    lab = float(label_len)
    return (
        ne * (24 * d * d * te + 4 * d * te * te)
        + 1440 * te * d
        + 6 * te * d * d
        + nd * (28 * d * d * lab + 4 * d * d * te + 4 * d * lab * te + 4 * d * lab * lab)
        + 2 * d * v * lab
    )


def model_flops_utilization(
    samples_per_s: float, forward_flops_per_sample: float, peak: float | None
) -> float | None:
    """MFU = samples/s x 3 x forward FLOPs / peak (forward + backward = 3 forwards); None without a peak."""
    if not peak:
        return None
    return samples_per_s * 3.0 * forward_flops_per_sample / peak


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype for a resolved precision (``None`` for fp32: no autocast)."""
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}[precision]


def fused_adamw(
    params: Iterable[Any], *, lr: float = 1e-5, device: str | torch.device = "cuda"
) -> torch.optim.AdamW:
    """AdamW with one fused kernel per step on CUDA (``fused=True``), foreach elsewhere; the
    optimizer the fast path asks the Trainer for (``optim="adamw_torch_fused"``)."""
    fused = torch.device(device).type == "cuda"
    return torch.optim.AdamW(
        [p for p in params if p.requires_grad], lr=lr, fused=fused, foreach=None if fused else True
    )


def cut_features(features: torch.Tensor, n_frames: int) -> torch.Tensor:
    """Cut (or zero-pad) mel features ``[..., n_mels, T]`` to exactly ``n_frames`` frames."""
    t = features.shape[-1]
    if t == n_frames:
        return features
    if t > n_frames:
        return features[..., :n_frames].contiguous()
    return torch.nn.functional.pad(features, (0, n_frames - t))


# --------------------------------------------------------------------------- models


def random_whisper(shape: str, seed: int = 0) -> tuple[Any, Any]:
    """(model, processor) of a real Whisper shape with random weights and the real tokenizer
    (``whisper_tune.models.random_init``; the tokenizer comes from the tiny.en weight package,
    or the 2 MB stand-in of it that docs/performance.md says how to carry)."""
    from whisper_tune.models.random_init import make_random_whisper

    return make_random_whisper(shape, seed=seed)


def bare_whisper(shape: str, seed: int = 0) -> Any:
    """A random Whisper of ``shape`` from its config alone (English vocabulary size, no tokenizer):
    for speed measurements on a machine that has nothing but torch + transformers."""
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    from whisper_tune.models.random_init import shape_config

    cfg = WhisperConfig(
        **shape_config(shape),
        decoder_start_token_id=50257,
        pad_token_id=50256,
        eos_token_id=50256,
        bos_token_id=50256,
    )
    torch.manual_seed(seed)
    return WhisperForConditionalGeneration(cfg)


def seed_plan(device: str, n_frames: int = FULL_FRAMES, workers: int = 0, attn: str = "eager") -> Any:
    """The seed's recipe as a ``FastPathPlan``, so it runs through the same Trainer path as the
    fast one: fp16 + GradScaler (fp32 off CUDA), eager attention, gradient checkpointing, AdamW
    (foreach), no compile."""
    from whisper_tune.train.fastpath import FastPathPlan

    return FastPathPlan(
        device=device,
        precision="fp16" if device == "cuda" else "fp32",
        attn_implementation=attn,
        optim="adamw_torch",
        compile_scope="none",
        gradient_checkpointing=True,
        n_frames=n_frames,
        dataloader_num_workers=workers,
        notes=["the seed's recipe"],
    )


# --------------------------------------------------------------------------- the product's Trainer path


class NoEvalNoSave(TrainerCallback):
    """A benchmark never evaluates or saves through the Trainer (it would at the last step)."""

    def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        control.should_evaluate = False
        control.should_save = False
        return control


def random_eval_set(n_eval: int, frames: int, label_len: int = 18) -> Any:
    """A seeded random evaluation set as the product's in-memory ``TensorFeatures`` (fp16 log-mel
    in [-1.5, 1.5], random label ids of ``label_len``), for timing evaluation passes."""
    from whisper_tune.train.tensor_data import TensorFeatures

    g = torch.Generator().manual_seed(0)
    feats = torch.randn(n_eval, 80, frames, generator=g).clamp_(-1.5, 1.5).half()
    labels = torch.randint(0, 50257, (n_eval, label_len), generator=g)
    return TensorFeatures(feats, labels, torch.full((n_eval,), label_len), [str(i) for i in range(n_eval)])


def eval_trainer(
    model: Any, processor: Any, plan: Any, ds: Any, batch: int, gen_len: int, out_dir: str
) -> Any:
    """The product's ``WhisperTrainer`` set up for evaluation only (eval batch ``batch``,
    ``gen_len`` new tokens, WER with the whisper_en normalizer) on ``ds``."""
    from whisper_tune.train.metrics_hook import make_compute_metrics
    from whisper_tune.train.tensor_data import TensorBatches
    from whisper_tune.train.trainer import WhisperTrainer, training_arguments

    job = trainer_job(8, max_steps=1, total_steps=1, eval_batch_size=batch, generation_max_length=gen_len)
    return WhisperTrainer(
        model=model,
        args=training_arguments(job, plan, output_dir=out_dir, use_gpu=True),
        eval_dataset=ds,
        data_collator=TensorBatches(50257, None),
        compute_metrics=make_compute_metrics(processor, "whisper_en"),
        processing_class=processor,
    )


def trainer_job(
    batch: int,
    *,
    max_steps: int = -1,
    num_epochs: float = 1.0,
    total_steps: int,
    gradient_checkpointing: bool = False,
    **train: Any,
) -> Any:
    """A ``JobConfig`` for a benchmark run: ``batch`` per step, no evaluation, saving or logging
    within ``total_steps`` (what the run will take); ``train`` adds other ``train.*`` keys."""
    from whisper_tune.train.config import JobConfig

    never = total_steps + 1
    section = {
        "per_device_batch_size": batch,
        "max_steps": max_steps,
        "num_epochs": num_epochs,
        "learning_rate": 1e-5,
        "eval_steps": never,
        "save_steps": never,
        "logging_steps": never,
        "gradient_checkpointing": gradient_checkpointing,
        "seed": 0,
        **train,
    }
    return JobConfig.from_mapping({"data": {"train": "synthetic", "eval": "synthetic"}, "train": section})


def run_product_trainer(
    model: Any, plan: Any, job: Any, train_ds: Any, collator: Any, callbacks: list[Any]
) -> Any:
    """Train ``model`` (the plan already applied) as a training run does: the recipe's
    ``training_arguments(job, plan)`` and ``WhisperTrainer``, in a temporary output dir.
    Returns the Trainer's ``TrainOutput``."""
    import tempfile

    from whisper_tune.train.trainer import WhisperTrainer, training_arguments

    with tempfile.TemporaryDirectory(prefix="wt-bench-") as out:
        trainer = WhisperTrainer(
            model=model,
            args=training_arguments(job, plan, output_dir=out, use_gpu=plan.device == "cuda"),
            train_dataset=train_ds,
            eval_dataset=torch.utils.data.Subset(train_ds, [0]),  # never used (NoEvalNoSave)
            data_collator=collator,
            callbacks=[*callbacks, NoEvalNoSave()],
        )
        return trainer.train()


# --------------------------------------------------------------------------- batch sizing


@dataclass
class BatchSizeEstimate:
    """How the batch size was sized to memory (all byte counts are peak allocator bytes)."""

    batch_size: int
    bytes_per_sample: float
    fixed_bytes: float
    optimizer_bytes: float
    total_bytes: float
    memory_fraction: float
    probes: dict[int, int] = field(default_factory=dict)
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def estimate_batch_size(
    model: Any,
    *,
    n_frames: int,
    label_len: int = 40,
    precision: str = "bf16",
    device: str | torch.device = "cuda",
    max_batch: int = 128,
    memory_fraction: float = 0.85,
    multiple: int = 8,
    probe_sizes: tuple[int, int] = (4, 8),
    default: int = 16,
) -> BatchSizeEstimate:
    """The largest batch (multiple of ``multiple``, <= ``max_batch``) whose training step fits.

    Runs forward+backward at two small probe batch sizes on the model as it is (attention,
    checkpointing and context already applied), fits ``peak = fixed + b x per_sample``, adds the
    AdamW state (8 bytes per trainable fp32 parameter) and solves for ``memory_fraction`` of the
    card. Gradients are cleared afterwards. Call it before compiling (the probes would trigger
    compiles). On CPU returns ``default`` (RAM is rarely the limit there; time is). Raises
    ``ValueError`` when not even one sample fits.
    """
    dev = torch.device(device)
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    optimizer_bytes = 8.0 * n_trainable
    if dev.type != "cuda":
        return BatchSizeEstimate(default, 0.0, 0.0, optimizer_bytes, 0.0, memory_fraction, reason="not CUDA")
    dtype = autocast_dtype(precision)
    vocab = int(model.config.vocab_size)
    n_mels = int(model.config.num_mel_bins)
    was_training = model.training
    model.train()
    peaks: dict[int, int] = {}
    for b in probe_sizes:
        model.zero_grad(set_to_none=True)
        torch.cuda.synchronize(dev)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(dev)
        feats = torch.randn(b, n_mels, n_frames, device=dev)
        labels = torch.randint(0, vocab, (b, label_len), device=dev)
        with torch.autocast(dev.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = model(input_features=feats, labels=labels).loss
        loss.backward()
        torch.cuda.synchronize(dev)
        peaks[b] = int(torch.cuda.max_memory_allocated(dev))
        del feats, labels, loss
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    torch.cuda.empty_cache()
    b1, b2 = probe_sizes
    per_sample = max((peaks[b2] - peaks[b1]) / float(b2 - b1), 1.0)
    fixed = peaks[b1] - b1 * per_sample
    total = float(torch.cuda.get_device_properties(dev).total_memory)
    fit = int((memory_fraction * total - fixed - optimizer_bytes) // per_sample)
    if fit < 1:
        raise ValueError(
            f"a training step at {n_frames} frames does not fit in {memory_fraction:.0%} of this GPU's "
            f"{total / 2**30:.0f} GiB even at batch 1: turn on gradient checkpointing or shorten the context"
        )
    batch = min(max_batch, fit)
    batch = max(multiple, batch - batch % multiple) if batch >= multiple else max(1, batch)
    reason = "capped at max_batch" if fit >= max_batch else "memory"
    return BatchSizeEstimate(batch, per_sample, fixed, optimizer_bytes, total, memory_fraction, peaks, reason)


# --------------------------------------------------------------------------- synthetic inputs


class SyntheticFeatures(torch.utils.data.Dataset):
    """Precomputed-feature stand-in: a pool of random 30 s log-mel tensors + random-length labels."""

    def __init__(self, n_items: int, n_mels: int, vocab: int, label_min: int, label_max: int, pool: int = 64):
        g = torch.Generator().manual_seed(0)
        self.pool = [torch.randn(n_mels, FULL_FRAMES, generator=g).clamp_(-1.5, 1.5) for _ in range(pool)]
        self.labels = [
            torch.randint(
                0,
                min(vocab, 50257),
                (int(torch.randint(label_min, label_max + 1, (1,), generator=g)),),
                generator=g,
            )
            for _ in range(n_items)
        ]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"input_features": self.pool[i % len(self.pool)], "labels": self.labels[i]}

    def mean_label_len(self) -> float:
        return sum(len(x) for x in self.labels) / max(1, len(self.labels))


class FeatureCollate:
    """Stack features cut to the encoder's frames (as the data pipeline's collator does) and pad
    labels with -100 (to at least ``pad_labels_to``, for fixed-shape experiments)."""

    def __init__(self, n_frames: int, pad_labels_to: int = 0):
        self.n_frames = n_frames
        self.pad_labels_to = pad_labels_to

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        feats = torch.stack([cut_features(it["input_features"], self.n_frames) for it in items])
        length = max(max(len(it["labels"]) for it in items), self.pad_labels_to)
        labels = torch.full((len(items), length), -100, dtype=torch.long)
        for j, it in enumerate(items):
            labels[j, : len(it["labels"])] = it["labels"]
        return {"input_features": feats, "labels": labels}


# --------------------------------------------------------------------------- timing and results


def sync(device: str | torch.device) -> None:
    """Wait for the device's queued work (CUDA), so a timer reads finished work."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def time_per_call(fn: Callable[[], Any], reps: int, device: str | torch.device, warmup: int = 1) -> float:
    """Mean seconds per call of ``fn`` over ``reps`` calls, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    sync(device)
    return (time.perf_counter() - t0) / max(1, reps)


def environment() -> dict[str, Any]:
    """What a result was measured on: device, library versions, Python, cores, load."""
    import transformers

    info: dict[str, Any] = {
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
    }
    info["load_avg"] = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    return info


def write_json(path: str | Path, data: Any, indent: int = 1) -> Path:
    """Write a result file (parents created; NaN/inf written as null, never as invalid JSON)."""

    def clean(x: Any) -> Any:
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        return x

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(clean(data), indent=indent, default=str))
    return out
