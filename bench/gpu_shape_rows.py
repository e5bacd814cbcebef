"""Larger-shape and evaluation rows of ``bench/gpu_pipeline_vs_seed.py`` (split out to keep that
script under 450 lines): the product's Trainer under the plan's batch vs the seed recipe at 30 s and
at the short context (``shape_rows``), and the product's evaluation alone (``eval_rows``).
"""

from __future__ import annotations

import gc
import json
import os
import time
from pathlib import Path
from typing import Any

import torch

import _lib as lib

__all__ = ["eval_rows", "shape_rows"]


def _timer(batch: int, warmup: int) -> Any:
    from train_throughput import StepTimer

    return StepTimer(batch, warmup=warmup)


def shape_rows(
    shape: str,
    peak: float | None,
    steps: int,
    only: str = "",
    compile_plan: bool = False,
    batch: int | None = None,
) -> list[dict[str, Any]]:
    """The plan's run (30 s and short context) and the seed recipe (30 s) for one shape.

    ``batch``: the plan rows at this batch instead of the plan's (``--shape-batch``)."""
    from whisper_tune.models.random_init import make_random_whisper
    from whisper_tune.train import fastpath as fp
    from whisper_tune.train.plan import GpuFacts, ModelFacts, make_plan

    rows = []
    batch_set = batch  # --shape-batch: the plan rows at this batch instead of the plan's
    job = lib.trainer_job(8, total_steps=10**6, deepspeed="auto", per_device_batch_size="auto", num_epochs=3)
    runs = (("seed", 3000), ("plan", 3000), ("plan", 816))
    for recipe, frames in [r for r in runs if not only or f"{r[0]}@{r[1]}" in only.split("+")]:
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        with torch.device("cuda"):
            model, _ = make_random_whisper(shape)
        facts = ModelFacts.from_model(model)
        if recipe == "seed":
            plan, batch, note = lib.seed_plan("cuda", workers=4), 16, {}
            fp.apply_fast_path(model, plan)
        else:
            gp = make_plan(job, GpuFacts.probe(1, "cuda:0"), facts, n_frames=frames, context_reason="bench",
                           n_train=5000, label_len=30.0, longest_label=40)  # fmt: skip
            batch = batch_set or int(gp.value("per_device_batch_size"))
            note = {k: c.value for k, c in gp.choices.items()} | {
                "estimated_peak_gib": gp.memory["estimated_peak_gib"]
            }
            scope = "model" if compile_plan else "none"
            plan = fp.plan_fast_path("cuda", "bf16", n_frames=frames, compile=scope, num_workers=4)
            fp.apply_fast_path(model, plan)
        ds = lib.SyntheticFeatures(batch * (steps + 4), int(model.config.num_mel_bins), 51864, 20, 40)
        timer = _timer(batch, warmup=3 if recipe == "plan" else 2)
        n = steps if recipe == "plan" else max(4, steps // 2)
        t_job = lib.trainer_job(batch, max_steps=n + timer.warmup, total_steps=n + timer.warmup)
        err = None
        t_run = time.time()
        try:
            lib.run_product_trainer(model, plan, t_job, ds, lib.FeatureCollate(frames), [timer])
        except torch.OutOfMemoryError as exc:
            err = f"OOM: {exc}"[:200]
        thr = timer.summary() or {}
        flops = lib.whisper_forward_flops(model.config, ds.mean_label_len(), frames)
        rows.append({
            "shape": shape, "recipe": recipe, "n_frames": frames, "batch": batch, "params": facts.params,
            "step_samples_per_s": thr.get("step_samples_per_s"), "wall_samples_per_s": thr.get("wall_samples_per_s"),
            "mfu_step": lib.model_flops_utilization(thr.get("step_samples_per_s") or 0, flops, peak),
            "peak_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2), "plan": note, "error": err,
            "compile": plan.compile_scope, "run_s (incl. warm-up/compile)": round(time.time() - t_run, 1),
            "cuda_alloc_conf": os.environ.get("PYTORCH_CUDA_ALLOC_CONF"),
        })  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
        del model, ds
    return rows


def eval_rows(
    n_eval: int, batches: list[int], frames: int = 816, gen_len: int = 39, profile_to: Path | None = None
) -> list[dict[str, Any]]:
    """The product's evaluation (``WhisperTrainer.evaluate``: predict-with-generate + WER) of a
    random whisper-small at the short context on ``n_eval`` clips, per eval batch size: eval
    samples/s and the seconds inside ``generate`` (the rest is data, decoding and scoring)."""
    import tempfile

    from whisper_tune.models.random_init import make_random_whisper
    from whisper_tune.train import fastpath as fp

    with torch.device("cuda"):
        model, processor = make_random_whisper("small")
    plan = fp.plan_fast_path("cuda", "bf16", n_frames=frames, compile="none", num_workers=2)
    fp.apply_fast_path(model, plan)
    ds = lib.random_eval_set(n_eval, frames)
    rows = []
    for b in batches:
        with tempfile.TemporaryDirectory() as out:
            tr = lib.eval_trainer(model, processor, plan, ds, b, gen_len, out)
            t_cold = time.time()
            if profile_to is not None:  # where the first evaluation's extra seconds go (host side)
                import cProfile
                import io
                import pstats

                prof = cProfile.Profile()
                m0 = prof.runcall(tr.evaluate)
                text = io.StringIO()
                pstats.Stats(prof, stream=text).sort_stats("cumulative").print_stats(60)
                profile_to.write_text(text.getvalue())
                profile_to = None
            else:
                m0 = tr.evaluate()  # warm-up: kernels, workers
            cold_s = time.time() - t_cold
            m = tr.evaluate()
        rows.append({
            "eval_batch": b, "clips": n_eval, "max_new_tokens": gen_len, "n_frames": frames,
            "eval_samples_per_s": m.get("eval_samples_per_second"), "eval_runtime_s": m.get("eval_runtime"),
            "generate_s": m.get("eval_generate_runtime"), "first_evaluate_s": round(cold_s, 2),
            "first_generate_s": m0.get("eval_generate_runtime"),
        })  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
    return rows
