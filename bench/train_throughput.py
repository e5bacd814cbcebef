"""Training throughput of the product's Trainer path: the seed's recipe vs the fast-path plan.

Why: the fast path is only worth its complexity if it is measured side by side with the
recipe it replaces, on the same card, model shape and inputs, and through the code a
training run executes. For each shape (random init: speed does not depend on the weights)
this runs the HF ``Seq2SeqTrainer`` exactly as the training recipe builds it
(``whisper_tune.train.trainer.training_arguments`` + ``WhisperTrainer``, the plan applied by
``whisper_tune.train.fastpath.apply_fast_path``) under two plans:

  (a) seed: fp16 + GradScaler, batch 16, gradient checkpointing, eager attention,
      AdamW (foreach): the seed's recipe written as a ``FastPathPlan``;
  (b) fast: ``plan_fast_path`` for the device: bf16 autocast, SDPA, fused AdamW, no
      checkpointing, the model torch.compiled; batch sized to memory (``bench/_lib.py``);

with 30 s inputs ([80, 3000] log-mel features, precomputed as the data pipeline caches them)
and 20-40 label tokens, fed through the Trainer's own DataLoader (workers, pinned memory and
prefetching as the plan sets them). ``--short-audio`` adds (c) the fast path with the encoder
context shortened to the clips' length + margin.

Timing is the product's ``Throughput`` callback (the one that writes a run's
``fast_path.json``): warm-up steps excluded, each step synchronised. Per run it reports
samples/s (wall, including the gaps between steps: data loading, the Trainer's bookkeeping),
step-only samples/s, MFU (``bench/_lib.py``'s FLOP formula over the device's bf16 peak from
its table, or ``--peak-flops``), peak GPU memory, and the share of wall time outside steps.

    PYTHONPATH=src python bench/train_throughput.py --shapes tiny,base,small \
        --short-audio --out bench/results/h100_train_throughput.json
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import json
import math
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from transformers import TrainerCallback

import _lib as lib
from whisper_tune.train import fastpath as fp
from whisper_tune.train.callbacks import Throughput

SEED_BATCH = 16
PROFILED_STEPS = 2


@dataclass
class RunResult:
    shape: str
    recipe: str
    n_frames: int
    batch_size: int
    precision: str
    attn: str
    gradient_checkpointing: bool
    compiled: str
    steps_timed: int
    samples_per_s: float  # wall: steps + the gaps between them
    step_samples_per_s: float  # steps only
    step_s_median: float
    mean_label_len: float
    fwd_flops_per_sample: float
    mfu: float | None
    peak_mem_gib: float
    data_wait_s: float  # wall time outside steps (batch fetch, Trainer bookkeeping)
    data_wait_fraction: float
    warmup_s: float
    timed_path: str = "Seq2SeqTrainer (whisper_tune.train.trainer)"
    batch_estimate: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


class StepTimer(Throughput):
    """The product's Throughput callback, also keeping each timed step and the warm-up time."""

    def __init__(self, global_batch: int, warmup: int) -> None:
        super().__init__(global_batch, None, warmup=warmup)
        self.durations: list[float] = []
        self.warmup_s = 0.0
        self._t0 = 0.0

    def on_train_begin(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        self._t0 = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        before = self.step_time
        super().on_step_end(args, state, control, **kwargs)
        if self.step_time != before:
            self.durations.append(self.step_time - before)
        if state.global_step == self.warmup:
            self.warmup_s = time.perf_counter() - self._t0


class ProfileSteps(TrainerCallback):
    """CUDA time per kernel family over steps ``first .. first + n - 1`` (ms per step)."""

    FAMILIES = {
        "matmul": ("gemm", "nvjet", "cutlass", "sm90_xmma", "cublas", "matmul"),
        "attention": ("flash", "fmha", "attention", "cudnn_generated", "sdpa"),
        "conv": ("conv", "implicit"),
        "optimizer": ("adam", "multi_tensor", "foreach"),
        "fused_triton": ("triton",),
        "cross_entropy": ("log_softmax", "nll_loss", "cross_entropy", "softmax"),
    }

    def __init__(self, first: int, n: int) -> None:
        self.first, self.n = first, n
        self.prof: Any = None
        self.breakdown: dict[str, float] = {}

    def on_step_begin(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        if state.global_step + 1 == self.first:
            from torch.profiler import ProfilerActivity, profile

            self.prof = profile(activities=[ProfilerActivity.CUDA])
            self.prof.__enter__()

    def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        if self.prof is not None and state.global_step == self.first + self.n - 1:
            torch.cuda.synchronize()
            self.prof.__exit__(None, None, None)
            self.breakdown = self._families()
            self.prof = None

    def _families(self) -> dict[str, float]:
        out: dict[str, float] = {k: 0.0 for k in [*self.FAMILIES, "other"]}
        others: list[tuple[float, str]] = []
        for ev in self.prof.key_averages():
            t = getattr(ev, "device_time_total", None)
            if t is None:  # older torch
                t = getattr(ev, "cuda_time_total", 0.0)
            if not t or ev.key.startswith(("aten::", "cuda", "Memcpy", "Memset")) and "Memcpy" not in ev.key:
                continue
            name = ev.key.lower()
            fam = next((f for f, keys in self.FAMILIES.items() if any(k in name for k in keys)), "other")
            out[fam] += t / 1000.0 / self.n
            if fam == "other":
                others.append((t / 1000.0 / self.n, ev.key[:90]))
        for t, key in sorted(others, reverse=True)[:8]:
            print(f"    other {t:7.2f} ms  {key}", flush=True)
        return {k: round(v, 2) for k, v in out.items()}


def run_one(shape: str, recipe: str, args: argparse.Namespace, n_frames: int = fp.FULL_FRAMES) -> RunResult:
    """One timed run. ``recipe``: ``seed`` or ``fast``, optionally with ``+`` modifiers:
    ``sdpa`` (seed only: SDPA instead of eager attention), ``cudnn`` (prefer cuDNN SDPA),
    ``fixedlabels`` (labels padded to one length, static compile), ``enccompile`` (compile the
    encoder only), ``nocompile``, ``bsN`` (fixed batch), ``bf16res`` (experimental: bf16 encoder
    position table, so the encoder's residual stream is bf16), ``prof`` (kernel-family
    breakdown from torch.profiler over 2 extra steps before the timed ones)."""
    dev = args.device
    base_recipe, *mods_list = recipe.split("+")
    mods = set(mods_list)
    fixed_batch = next((int(m[2:]) for m in mods if m.startswith("bs")), 0)
    torch._dynamo.reset()  # runs must not share compiled graphs (or the recompile limit)
    model, _ = lib.random_whisper(shape)
    model.to(dev)
    notes: list[str] = []
    estimate = None
    pad_labels_to = 0
    if base_recipe == "seed":
        plan = lib.seed_plan(dev, n_frames, args.workers, "sdpa" if "sdpa" in mods else "eager")
        fp.apply_fast_path(model, plan)
        batch = fixed_batch or SEED_BATCH
    else:
        scope = (
            "none"
            if args.no_compile or "nocompile" in mods
            else "encoder"
            if "enccompile" in mods
            else "auto"
        )
        plan = fp.plan_fast_path(dev, "auto", n_frames=n_frames, compile=scope, num_workers=args.workers)
        fp.apply_fast_path(model, dataclasses.replace(plan, compile_scope="none"))  # size the batch eagerly
        if "bf16res" in mods:  # experiment: bf16 position table -> bf16 encoder residual stream
            model.get_encoder().embed_positions.to(torch.bfloat16)
            notes.append("encoder embed_positions in bf16 (bf16 residual stream; experimental)")
        if fixed_batch or args.fast_batch:
            batch = fixed_batch or args.fast_batch
        else:
            estimate = lib.estimate_batch_size(
                model,
                n_frames=n_frames,
                label_len=args.label_max,
                precision=plan.precision,
                max_batch=args.max_batch,
            )
            batch = estimate.batch_size
        if "fixedlabels" in mods and plan.compile_scope == "model":
            pad_labels_to = -(-args.label_max // 8) * 8
            model.compile(dynamic=False)
            notes.append(f"labels padded to {pad_labels_to}, static shapes")
        else:
            fp.apply_fast_path(model, plan)  # now with the plan's compile scope
    notes += plan.notes
    n_prof = PROFILED_STEPS if "prof" in mods and dev == "cuda" else 0
    total = args.warmup + n_prof + args.steps
    ds = lib.SyntheticFeatures(
        batch * total + batch,
        model.config.num_mel_bins,
        model.config.vocab_size,
        args.label_min,
        args.label_max,
    )
    timer = StepTimer(batch, warmup=args.warmup + n_prof)
    profiler = ProfileSteps(args.warmup + 1, n_prof) if n_prof else None
    ctx: Any = contextlib.nullcontext()
    if "cudnn" in mods:
        from torch.nn.attention import SDPBackend, sdpa_kernel

        order = [SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION]
        ctx = sdpa_kernel([*order, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH], set_priority=True)
        notes.append("SDPA backend priority: cuDNN first")
    if dev == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    job = lib.trainer_job(
        batch, max_steps=total, total_steps=total, gradient_checkpointing=plan.gradient_checkpointing
    )
    with ctx:
        train_out = lib.run_product_trainer(
            model,
            plan,
            job,
            ds,
            lib.FeatureCollate(n_frames, pad_labels_to),
            [timer, *([profiler] if profiler else [])],
        )
    if profiler is not None:
        notes.append("cuda ms/step by kernel family: " + json.dumps(profiler.breakdown))
        print(f"  profile {shape} {recipe}: {profiler.breakdown}", flush=True)
    loss = float(train_out.training_loss)
    if not math.isfinite(loss):
        notes.append(f"non-finite training loss: {loss}")
    found = timer.summary() or {"wall_samples_per_s": 0.0, "step_samples_per_s": 0.0}
    wall = timer.wall
    mean_label = ds.mean_label_len()
    flops = lib.whisper_forward_flops(model.config, mean_label, n_frames)
    sps = float(found["wall_samples_per_s"])
    peak = lib.peak_flops(lib.environment()["device"], args.peak_flops)
    return RunResult(
        shape=shape,
        recipe=recipe,
        n_frames=n_frames,
        batch_size=batch,
        precision=plan.precision,
        attn=plan.attn_implementation,
        gradient_checkpointing=plan.gradient_checkpointing,
        compiled="static" if pad_labels_to else plan.compile_scope,
        steps_timed=timer.steps,
        samples_per_s=sps,
        step_samples_per_s=float(found["step_samples_per_s"]),
        step_s_median=statistics.median(timer.durations) if timer.durations else 0.0,
        mean_label_len=mean_label,
        fwd_flops_per_sample=flops,
        mfu=lib.model_flops_utilization(sps, flops, peak),
        peak_mem_gib=torch.cuda.max_memory_allocated() / 2**30 if dev == "cuda" else 0.0,
        data_wait_s=wall - timer.step_time,
        data_wait_fraction=(wall - timer.step_time) / wall if wall > 0 else 0.0,
        warmup_s=timer.warmup_s,
        batch_estimate=estimate.to_dict() if estimate else None,
        notes=notes,
    )


def _fmt(r: RunResult) -> str:
    mfu = f"{100 * r.mfu:5.1f}%" if r.mfu is not None else "  n/a"
    return (
        f"{r.shape:6s} {r.recipe:10s} frames={r.n_frames:4d} bs={r.batch_size:4d} {r.precision} {r.attn:5s} "
        f"ckpt={int(r.gradient_checkpointing)} compile={r.compiled:7s} | {r.samples_per_s:8.1f} samples/s "
        f"MFU {mfu} | peak {r.peak_mem_gib:5.1f} GiB | outside steps {100 * r.data_wait_fraction:4.1f}% "
        f"| warm-up {r.warmup_s:5.1f}s"
    )


def _ratios(results: list[RunResult]) -> dict[str, dict[str, float]]:
    ratios: dict[str, dict[str, float]] = {}
    for shape in sorted({r.shape for r in results}):
        by = {r.recipe: r for r in results if r.shape == shape}
        ratios[shape] = {}
        for a, b, key in (
            ("fast", "seed", "fast_over_seed"),
            ("fast-short", "seed", "fast_short_over_seed"),
            ("fast-short", "fast", "fast_short_over_fast"),
        ):
            if a in by and b in by and by[b].samples_per_s > 0:
                ratios[shape][key] = by[a].samples_per_s / by[b].samples_per_s
    return ratios


def _write_report(
    args: argparse.Namespace,
    argv: list[str] | None,
    results: list[RunResult],
    errors: list[dict[str, str]],
    final: bool = False,
) -> None:
    """Print the ratios (at the end) and (re)write the JSON after every run, so a cut-off keeps data."""
    ratios = _ratios(results)
    if final:
        print("\nratios:", json.dumps(ratios, indent=1, sort_keys=True))
    env = lib.environment()
    report = {
        **env,
        "command": " ".join(
            ["python", "bench/train_throughput.py", *(argv if argv is not None else sys.argv[1:])]
        ),
        "timed_path": "Seq2SeqTrainer (whisper_tune.train.trainer), plan from whisper_tune.train.fastpath",
        "peak_flops": lib.peak_flops(env["device"], args.peak_flops),
        "complete": final,
        "results": [asdict(r) for r in results],
        "ratios": ratios,
        "errors": errors,
    }
    if args.out:
        lib.write_json(args.out, report)
        if final:
            print(f"wrote {args.out}")


def _recipes(args: argparse.Namespace) -> list[tuple[str, str, int]]:
    """(label, recipe spec, frames) for every run of a shape."""
    short_frames = fp.choose_encoder_frames(args.clip_seconds, args.margin_frames)
    found: list[tuple[str, str, int]] = []
    if args.recipes:
        for spec in [x.strip() for x in args.recipes.split(",") if x.strip()]:
            short = spec.startswith("short:")
            spec = spec.removeprefix("short:")
            label = ("fast-short" + spec[4:]) if short and spec.startswith("fast") else spec
            found.append((label, spec, short_frames if short else fp.FULL_FRAMES))
        return found
    if not args.skip_seed:
        found.append(("seed", "seed", fp.FULL_FRAMES))
    found.append(("fast", "fast", fp.FULL_FRAMES))
    if args.short_audio:
        found.append(("fast-short", "fast", short_frames))
    return found


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--shapes", default="tiny,base,small", help="comma list of random_init shapes")
    ap.add_argument("--steps", type=int, default=10, help="timed steps per run")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps per run (compile happens here)")
    ap.add_argument("--workers", type=int, default=6, help="DataLoader workers")
    ap.add_argument("--fast-batch", type=int, default=0, help="fixed fast-path batch (0 = sized to memory)")
    ap.add_argument("--max-batch", type=int, default=128, help="cap for the memory-sized batch")
    ap.add_argument("--no-compile", action="store_true", help="fast path without torch.compile")
    ap.add_argument("--skip-seed", action="store_true")
    ap.add_argument("--label-min", type=int, default=20)
    ap.add_argument("--label-max", type=int, default=40)
    ap.add_argument(
        "--short-audio", action="store_true", help="also run the fast path at a shortened encoder context"
    )
    ap.add_argument("--clip-seconds", type=float, default=8.0, help="longest clip for --short-audio")
    ap.add_argument("--margin-frames", type=int, default=64)
    ap.add_argument(
        "--peak-flops", type=float, default=0.0, help="MFU denominator (default: the device's table entry)"
    )
    ap.add_argument(
        "--device", default="cuda", help="cuda (the benchmark) or cpu (a smoke run of the script)"
    )
    ap.add_argument("--out", default="", help="JSON results path")
    ap.add_argument(
        "--recipes",
        default="",
        help="comma list overriding the runs per shape, e.g. seed+sdpa,fast+nocompile,fast+enccompile,fast+prof "
        "(modifiers: sdpa, cudnn, fixedlabels, enccompile, nocompile, bsN, bf16res, prof; prefix 'short:' for "
        "the short context)",
    )
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print(
            "error: this benchmark needs a CUDA GPU (--device cpu only smoke-tests the script)",
            file=sys.stderr,
        )
        return 2
    if args.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    results: list[RunResult] = []
    errors: list[dict[str, str]] = []
    for shape in [s.strip() for s in args.shapes.split(",") if s.strip()]:
        for recipe, spec, frames in _recipes(args):
            try:
                r = run_one(shape, spec, args, frames)
            except Exception as exc:  # keep the other runs: one failure must not lose the batch
                print(f"{shape} {recipe}: FAILED: {type(exc).__name__}: {exc}", flush=True)
                errors.append({"shape": shape, "recipe": recipe, "error": f"{type(exc).__name__}: {exc}"})
                continue
            finally:
                gc.collect()
                if args.device == "cuda":
                    torch.cuda.empty_cache()
            r.recipe = recipe
            results.append(r)
            print(_fmt(r), flush=True)
            _write_report(args, argv, results, errors)
    _write_report(args, argv, results, errors, final=True)
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
