"""Training throughput: the seed's recipe vs whisper-tune's fast path, in one process.

Why: the fast path is only worth its complexity if it is measured side by side with the
recipe it replaces, on the same card, model shape and inputs. For each shape (random init:
speed does not depend on the weights) this runs

  (a) seed: fp16 autocast + GradScaler, batch 16, gradient checkpointing, eager attention,
      AdamW (foreach);
  (b) fast: ``whisper_tune.train.fastpath`` — bf16 autocast, SDPA, fused AdamW, batch sized
      to memory, no checkpointing, the model torch.compiled;

with 30 s inputs ([80, 3000] log-mel features, precomputed as the data pipeline caches them)
and 20-40 label tokens, fed through a real multi-worker DataLoader. ``--short-audio`` adds
(c) the fast path with the encoder context shortened to the clips' length + margin.

Per run it reports samples/s, MFU (DESIGN.md formula, 989e12 peak), peak GPU memory, and
the data loader's share of wall time (time blocked waiting for a batch and copying it, with
the GPU idle because each step ends in a synchronize), warm-up steps excluded.

    PYTHONPATH=src python bench/train_throughput.py --shapes tiny,base,small \
        --short-audio --out bench/results/h100_train_throughput.json
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from whisper_tune.models.random_init import make_random_whisper  # noqa: E402
from whisper_tune.train import fastpath as fp  # noqa: E402

SEED_BATCH = 16


class SyntheticFeatures(Dataset):
    """Precomputed-feature stand-in: a pool of random log-mel tensors + random-length labels."""

    def __init__(self, n_items: int, n_mels: int, vocab: int, label_min: int, label_max: int, pool: int = 64):
        g = torch.Generator().manual_seed(0)
        self.pool = [torch.randn(n_mels, fp.FULL_FRAMES, generator=g).clamp_(-1.5, 1.5) for _ in range(pool)]
        self.labels = [
            torch.randint(
                0,
                min(vocab, 50257),
                (int(torch.randint(label_min, label_max + 1, (1,), generator=g)),),
                generator=g,
            )
            for _ in range(n_items)
        ]
        self.n = n_items

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"input_features": self.pool[i % len(self.pool)], "labels": self.labels[i]}


class Collate:
    """Stack features (cut to the encoder's frames, as the data helper's collator does) and pad labels with -100."""

    def __init__(self, n_frames: int, pad_labels_to: int = 0):
        self.n_frames = n_frames
        self.pad_labels_to = pad_labels_to

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        feats = torch.stack([fp.cut_features(it["input_features"], self.n_frames) for it in items])
        length = max(max(len(it["labels"]) for it in items), self.pad_labels_to)
        labels = torch.full((len(items), length), -100, dtype=torch.long)
        for j, it in enumerate(items):
            labels[j, : len(it["labels"])] = it["labels"]
        return {"input_features": feats, "labels": labels}


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
    samples_per_s: float
    step_s_median: float
    mean_label_len: float
    fwd_flops_per_sample: float
    mfu: float
    peak_mem_gib: float
    data_wait_s: float
    data_wait_fraction: float
    warmup_s: float
    batch_estimate: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


def _loader(ds: Dataset, batch: int, n_frames: int, workers: int, pad_labels_to: int = 0) -> DataLoader:
    return DataLoader(
        ds,
        batch_size=batch,
        shuffle=True,
        drop_last=True,
        num_workers=workers,
        pin_memory=True,
        persistent_workers=workers > 0,
        prefetch_factor=4 if workers > 0 else None,
        collate_fn=Collate(n_frames, pad_labels_to),
    )


def _profile_breakdown(step: Any, n: int = 2) -> dict[str, float]:
    """CUDA time per kernel family over ``n`` steps (ms per step), from torch.profiler."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(n):
            step()
        torch.cuda.synchronize()
    families = {
        "matmul": ("gemm", "nvjet", "cutlass", "sm90_xmma", "cublas", "matmul"),
        "attention": ("flash", "fmha", "attention", "cudnn_generated", "sdpa"),
        "conv": ("conv", "implicit"),
        "optimizer": ("adam", "multi_tensor", "foreach"),
        "fused_triton": ("triton",),
        "cross_entropy": ("log_softmax", "nll_loss", "cross_entropy", "softmax"),
    }
    out: dict[str, float] = {k: 0.0 for k in [*families, "other"]}
    others: list[tuple[float, str]] = []
    for ev in prof.key_averages():
        t = getattr(ev, "device_time_total", None)
        if t is None:
            t = getattr(ev, "cuda_time_total", 0.0)
        if not t or ev.key.startswith(("aten::", "cuda", "Memcpy", "Memset")) and "Memcpy" not in ev.key:
            continue
        name = ev.key.lower()
        fam = next((f for f, keys in families.items() if any(k in name for k in keys)), "other")
        out[fam] += t / 1000.0 / n
        if fam == "other":
            others.append((t / 1000.0 / n, ev.key[:90]))
    for t, key in sorted(others, reverse=True)[:8]:
        print(f"    other {t:7.2f} ms  {key}", flush=True)
    return {k: round(v, 2) for k, v in out.items()}


def run_one(shape: str, recipe: str, args: argparse.Namespace, n_frames: int = fp.FULL_FRAMES) -> RunResult:
    """One timed run. ``recipe``: ``seed`` or ``fast``, optionally with ``+`` modifiers:
    ``sdpa`` (seed only: SDPA instead of eager attention), ``cudnn`` (prefer cuDNN SDPA), ``fixedlabels`` (labels padded to one length, static compile),
    ``enccompile`` (compile the encoder only), ``nocompile``, ``bsN`` (fixed batch), ``bf16res``
    (experimental: bf16 encoder position table, so the encoder's residual stream is bf16), ``prof``
    (kernel-family breakdown from torch.profiler)."""
    dev = torch.device("cuda")
    base_recipe, *mods_list = recipe.split("+")
    mods = set(mods_list)
    fixed_batch = next((int(m[2:]) for m in mods if m.startswith("bs")), 0)
    fixed_labels = "fixedlabels" in mods
    torch._dynamo.reset()  # runs must not share compiled graphs (or the recompile limit)
    model, _ = make_random_whisper(shape)
    notes: list[str] = []
    estimate = None
    pad_labels_to = 0
    if base_recipe == "seed":
        precision, batch = "fp16", fixed_batch or SEED_BATCH
        seed_attn = "sdpa" if "sdpa" in mods else "eager"
        model.set_attn_implementation(seed_attn)
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
        model.to(dev).train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
        scaler: torch.amp.GradScaler | None = torch.amp.GradScaler("cuda")
        compiled, ckpt, attn = "none", True, seed_attn
    else:
        plan = fp.plan_fast_path(
            "cuda",
            "auto",
            n_frames=n_frames,
            compile="none"
            if args.no_compile or "nocompile" in mods
            else "encoder"
            if "enccompile" in mods
            else "auto",
            num_workers=args.workers,
        )
        precision = plan.precision
        compile_scope = plan.compile_scope
        plan.compile_scope = "none"  # size the batch on the eager model first
        model.to(dev)
        fp.apply_fast_path(model, plan)
        model.train()
        if "bf16res" in mods:  # experiment: bf16 position table -> bf16 encoder residual stream
            model.get_encoder().embed_positions.to(torch.bfloat16)
            notes.append("encoder embed_positions in bf16 (bf16 residual stream; experimental)")
        if fixed_batch or args.fast_batch:
            batch = fixed_batch or args.fast_batch
        else:
            estimate = fp.estimate_batch_size(
                model,
                n_frames=n_frames,
                label_len=args.label_max,
                precision=precision,
                max_batch=args.max_batch,
            )
            batch = estimate.batch_size
        if fixed_labels and compile_scope == "model":
            pad_labels_to = -(-args.label_max // 8) * 8
            model.compile(dynamic=False)
            notes.append(f"labels padded to {pad_labels_to}, static shapes")
        elif compile_scope == "model":
            fp.compile_model(model)
        elif compile_scope == "encoder":
            fp.compile_encoder(model)
        opt = fp.fused_adamw(model.parameters(), lr=1e-5, device=dev)
        scaler = None
        compiled, ckpt, attn = compile_scope, plan.gradient_checkpointing, plan.attn_implementation
        notes += plan.notes
    steps = args.warmup + args.steps + (2 if "prof" in mods else 0)
    ds = SyntheticFeatures(
        batch * steps + batch,
        model.config.num_mel_bins,
        model.config.vocab_size,
        args.label_min,
        args.label_max,
    )
    loader = _loader(ds, batch, n_frames, args.workers, pad_labels_to)
    if "cudnn" in mods:
        from torch.nn.attention import SDPBackend, sdpa_kernel

        order = [SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION]
        order += [SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]
        ctx: Any = sdpa_kernel(order, set_priority=True)
        notes.append("SDPA backend priority: cuDNN first")
    else:
        import contextlib

        ctx = contextlib.nullcontext()
    with ctx:
        return _timed(
            shape,
            recipe,
            args,
            model,
            opt,
            scaler,
            loader,
            ds,
            dev,
            precision,
            batch,
            n_frames,
            attn,
            ckpt,
            compiled,
            estimate,
            notes,
            "prof" in mods,
        )


def _timed(
    shape: str,
    recipe: str,
    args: argparse.Namespace,
    model: Any,
    opt: Any,
    scaler: Any,
    loader: DataLoader,
    ds: Dataset,
    dev: torch.device,
    precision: str,
    batch: int,
    n_frames: int,
    attn: str,
    ckpt: bool,
    compiled: str,
    estimate: Any,
    notes: list[str],
    profile_it: bool,
) -> RunResult:
    dtype = fp.autocast_dtype(precision)
    steps = args.warmup + args.steps
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    it = iter(loader)
    step_times: list[float] = []
    waits: list[float] = []
    label_tokens = 0
    samples = 0
    t_warm0 = time.perf_counter()
    t_start = t_warm0
    warmup_s = 0.0
    for step in range(steps):
        if step == args.warmup:
            torch.cuda.synchronize()
            t_start = time.perf_counter()
            warmup_s = t_start - t_warm0
        t0 = time.perf_counter()
        b = next(it)
        x = b["input_features"].to(dev, non_blocking=True)
        y = b["labels"].to(dev, non_blocking=True)
        t1 = time.perf_counter()
        with torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = model(input_features=x, labels=y).loss
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()
        opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        t2 = time.perf_counter()
        if step >= args.warmup:
            waits.append(t1 - t0)
            step_times.append(t2 - t0)
            samples += x.shape[0]
            label_tokens += int((y != -100).sum())
    wall = time.perf_counter() - t_start
    if profile_it:

        def one_step() -> None:
            b = next(it)
            x = b["input_features"].to(dev, non_blocking=True)
            y = b["labels"].to(dev, non_blocking=True)
            with torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None):
                loss = model(input_features=x, labels=y).loss
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        breakdown = _profile_breakdown(one_step)
        notes.append("cuda ms/step by kernel family: " + json.dumps(breakdown))
        print(f"  profile {shape} {recipe}: {breakdown}", flush=True)
    if not torch.isfinite(loss.detach().float()):
        notes.append(f"non-finite loss at the last step: {float(loss)}")
    mean_label = label_tokens / max(samples, 1)
    flops = fp.whisper_forward_flops(model.config, mean_label, n_frames)
    sps = samples / wall
    res = RunResult(
        shape=shape,
        recipe=recipe,
        n_frames=n_frames,
        batch_size=batch,
        precision=precision,
        attn=attn,
        gradient_checkpointing=ckpt,
        compiled=compiled,
        steps_timed=args.steps,
        samples_per_s=sps,
        step_s_median=statistics.median(step_times),
        mean_label_len=mean_label,
        fwd_flops_per_sample=flops,
        mfu=fp.model_flops_utilization(sps, flops),
        peak_mem_gib=torch.cuda.max_memory_allocated() / 2**30,
        data_wait_s=sum(waits),
        data_wait_fraction=sum(waits) / wall,
        warmup_s=warmup_s,
        batch_estimate=estimate.to_dict() if estimate else None,
        notes=notes,
    )
    return res


def _fmt(r: RunResult) -> str:
    return (
        f"{r.shape:6s} {r.recipe:10s} frames={r.n_frames:4d} bs={r.batch_size:4d} {r.precision} {r.attn:5s} "
        f"ckpt={int(r.gradient_checkpointing)} compile={r.compiled:7s} | {r.samples_per_s:8.1f} samples/s "
        f"MFU {100 * r.mfu:5.1f}% | peak {r.peak_mem_gib:5.1f} GiB | data wait {100 * r.data_wait_fraction:4.1f}% "
        f"| warm-up {r.warmup_s:5.1f}s"
    )


def _ratios(results: list[RunResult]) -> dict[str, dict[str, float]]:
    ratios: dict[str, dict[str, float]] = {}
    for shape in sorted({r.shape for r in results}):
        by = {r.recipe: r for r in results if r.shape == shape}
        ratios[shape] = {}
        if "seed" in by and "fast" in by:
            ratios[shape]["fast_over_seed"] = by["fast"].samples_per_s / by["seed"].samples_per_s
        if "seed" in by and "fast-short" in by:
            ratios[shape]["fast_short_over_seed"] = by["fast-short"].samples_per_s / by["seed"].samples_per_s
        if "fast" in by and "fast-short" in by:
            ratios[shape]["fast_short_over_fast"] = by["fast-short"].samples_per_s / by["fast"].samples_per_s
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
    report = {
        "device": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "transformers": __import__("transformers").__version__,
        "python": platform.python_version(),
        "command": " ".join(
            ["python", "bench/train_throughput.py", *(argv if argv is not None else sys.argv[1:])]
        ),
        "peak_flops": fp.H100_BF16_DENSE_PEAK,
        "complete": final,
        "results": [asdict(r) for r in results],
        "ratios": ratios,
        "errors": errors,
    }
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=1))
        if final:
            print(f"wrote {args.out}")


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
    ap.add_argument("--out", default="", help="JSON results path")
    ap.add_argument(
        "--recipes",
        default="",
        help="comma list overriding the runs per shape, e.g. fast,fast+cudnn,fast+fullcompile,fast+prof "
        "(modifiers: cudnn, fullcompile, eagerenc, bsN, prof; short: prefix 'short:' for the short context)",
    )
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("error: this benchmark needs a CUDA GPU", file=sys.stderr)
        return 2
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    results: list[RunResult] = []
    errors: list[dict[str, str]] = []
    for shape in [s.strip() for s in args.shapes.split(",") if s.strip()]:
        short_frames = fp.choose_encoder_frames(args.clip_seconds, args.margin_frames)
        recipes: list[tuple[str, str, int]] = []
        if args.recipes:
            for spec in [x.strip() for x in args.recipes.split(",") if x.strip()]:
                short = spec.startswith("short:")
                spec = spec.removeprefix("short:")
                label = ("fast-short" + spec[4:]) if short and spec.startswith("fast") else spec
                recipes.append((label, spec, short_frames if short else fp.FULL_FRAMES))
        else:
            if not args.skip_seed:
                recipes.append(("seed", "seed", fp.FULL_FRAMES))
            recipes.append(("fast", "fast", fp.FULL_FRAMES))
            if args.short_audio:
                recipes.append(("fast-short", "fast", short_frames))
        for recipe, spec, frames in recipes:
            try:
                r = run_one(shape, spec, args, frames)
            except Exception as exc:  # keep the other runs: one failure must not lose the batch
                print(f"{shape} {recipe}: FAILED: {type(exc).__name__}: {exc}", flush=True)
                errors.append({"shape": shape, "recipe": recipe, "error": f"{type(exc).__name__}: {exc}"})
                gc.collect()
                torch.cuda.empty_cache()
                continue
            gc.collect()
            torch.cuda.empty_cache()
            r.recipe = recipe
            results.append(r)
            print(_fmt(r), flush=True)
            _write_report(args, argv, results, errors)
    _write_report(args, argv, results, errors, final=True)
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
