"""One worker's ``auto`` settings resolved: the GPU plan fed from the model, data and device.

Why: :mod:`whisper_tune.train.plan` decides from plain numbers (so it is tested on CPU with
fake GPUs); something must read those numbers from the live run -- the worker's CUDA device,
the model's parameters as the strategy will train them, the prepared data's clip and label
lengths, the host's memory -- and hand back the resolved job, the encoder context and whether
the features are held in memory. Every worker computes the same plan from the same inputs, so
they agree without talking to each other.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from whisper_tune.train import inputs, run_files
from whisper_tune.train.config import JobConfig
from whisper_tune.train.plan import Choice, GpuFacts, GpuPlan, ModelFacts, auto_context, make_plan
from whisper_tune.train.tensor_data import fits_in_memory, label_lengths

__all__ = ["Resolved", "model_facts", "record_plan", "resolve_job"]

HOST_SHARE = 0.25  # of the node's RAM (split over its workers) the in-memory features may take


@dataclass
class Resolved:
    job: JobConfig  # every auto replaced
    n_frames: int
    in_memory: bool  # features materialized as tensors (train/tensor_data.py)
    plan: GpuPlan


def model_facts(model: Any, strategy: str) -> ModelFacts:
    """:class:`ModelFacts` of ``model`` as ``strategy`` will train it (before it is applied)."""
    f = ModelFacts.from_model(model)
    enc = sum(p.numel() for p in model.get_encoder().parameters())
    dec = f.params - enc
    trainable = {"full": f.params, "encoder": enc, "decoder": dec}.get(strategy, max(1, f.params // 20))
    return ModelFacts(
        f.params,
        int(trainable),
        f.d_model,
        f.encoder_layers,
        f.decoder_layers,
        f.vocab,
        strategy in ("full", "encoder"),
    )


def _context(job: JobConfig, data: Any) -> tuple[int, str]:
    t = job.train
    if t.short_audio != "auto":
        frames = inputs.context_frames(job, data.train_data, data.eval_data, data.guard_data)
        return frames, "set in the config" if t.encoder_frames else f"short_audio: {t.short_audio}"
    if t.cache_encoder_outputs or job.data.pack_share > 0:
        return 3000, "cached encoder outputs / packed windows need the full 30 s context"
    guard = data.guard_data.durations if data.guard_data is not None else []
    durations = [float(x) for x in (*data.train_data.durations, *data.eval_data.durations, *guard) if x]
    if not durations:
        return 3000, "no clip durations known"
    return auto_context(max(durations), t.encoder_margin_frames)


def resolve_job(
    job: JobConfig, device: str, world_size: int, local_world_size: int, model: Any, data: Any
) -> Resolved:
    """The plan for this worker and the job with its ``auto`` values resolved."""
    n_frames, why = _context(job, data)
    gpu = GpuFacts.probe(world_size, device)
    lens = label_lengths(data.train) + label_lengths(data.eval)
    plan = make_plan(
        job,
        gpu,
        model_facts(model, job.train.strategy),
        n_frames=n_frames,
        context_reason=why,
        n_train=len(data.train),
        label_len=sum(lens) / max(1, len(lens)),
        longest_label=max(lens, default=32),
    )
    resolved = plan.apply(job)
    in_memory, mem_why = False, "CPU worker: streamed from the feature cache"
    if gpu is not None:
        plain = (type(data.train).__name__, type(data.eval).__name__)
        n_mels = int(model.config.num_mel_bins)
        budget = HOST_SHARE * (gpu.host_memory_bytes or 0) / max(1, local_world_size)
        size = (len(data.train) + len(data.eval)) * n_mels * n_frames * 2
        if job.train.cache_encoder_outputs or job.data.pack_share > 0 or "PackedDataset" in plain:
            mem_why = "encoder cache / packing: streamed"
        elif fits_in_memory(len(data.train) + len(data.eval), n_mels, n_frames, 2, budget):
            in_memory, mem_why = True, f"{size / 1e9:.2f} GB of fp16 features in RAM, batched by indexing"
        else:
            mem_why = f"{size / 1e9:.1f} GB of features > {budget / 1e9:.1f} GB RAM share: streamed"
    plan.choices["data_in_memory"] = Choice(in_memory, mem_why)
    if gpu is not None:
        plan.memory["gpu"] = gpu.name
        plan.memory["gpu_memory_gib"] = round(gpu.memory_bytes / 2**30, 1)
    plan.memory["host_cpus"] = os.cpu_count() or 1
    return Resolved(resolved, n_frames, in_memory, plan)


def record_plan(plan: GpuPlan | None, run_dir: Path) -> None:
    """Rank 0: print the plan (the launcher's console shows it) and write ``<run>/plan.json``."""
    if plan is None:
        return
    run_files.write_json(run_dir, run_files.PLAN_FILE, plan.to_dict())
    print(plan.summary(), flush=True)
