"""Why is a run's first evaluation 3-4x slower than the next? One fresh process per variant.

Why: on one H200 the shipped 5,000-clip job's only evaluation (500 clips, batch 512, 39 new
tokens, random whisper-small at 816 frames) took 6.2 s, where the same evaluation warm takes
1.5-1.9 s; a host profile put 3.8 s of the first one in the decode loop's
``scaled_dot_product_attention`` calls. The suspect is the SDPA backend's per-shape set-up (the
KV length grows by one every token, so every token is a new shape): e.g. cuDNN attention
building a graph for each. Each variant runs in its own process (the one-off cost is per
process), evaluating twice through the product's ``WhisperTrainer.evaluate``:

- ``default``: SDPA picks its backend (the product before ``trainer._eval_sdpa_backends``);
- ``no_cudnn``: inside ``sdpa_kernel([FLASH, EFFICIENT, MATH])``;
- ``cudnn``: inside ``sdpa_kernel([CUDNN, MATH])`` (does cuDNN alone reproduce the cost?);
- ``static``: ``cache_implementation="static"`` (one KV shape for the whole decode);
- ``product``: the product as it is now (whatever ``train/trainer.py`` does around generate).

Every variant but ``product`` switches the product's own backend choice off. (The first call of
this probe, 2026-12-01, left it on, so its ``cudnn`` and ``static`` rows ran under the product's
choice too; its ``default`` and ``no_cudnn`` rows are valid.)

    PYTHONPATH=src:bench python bench/gpu_first_eval_probe.py --out $OUT/probe.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

VARIANTS = ("default", "no_cudnn", "cudnn", "static", "product")


def _context(variant: str) -> Any:
    from torch.nn.attention import SDPBackend, sdpa_kernel

    if variant == "no_cudnn":
        return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH])
    if variant == "cudnn":
        return sdpa_kernel([SDPBackend.CUDNN_ATTENTION, SDPBackend.MATH])
    return contextlib.nullcontext()


def child(variant: str, n_eval: int, batch: int, frames: int, gen_len: int) -> dict[str, Any]:
    """Two evaluations in this (fresh) process under ``variant``: seconds of each."""
    import torch

    import _lib as lib
    from whisper_tune.models.random_init import make_random_whisper
    from whisper_tune.train import fastpath as fp
    from whisper_tune.train import trainer as product

    t0 = time.time()
    if variant != "product" and hasattr(product, "_eval_sdpa_backends"):
        # the product's own backend choice off: an inner sdpa_kernel() would override the variant's
        product._eval_sdpa_backends = lambda: contextlib.nullcontext()
    with torch.device("cuda"):
        model, processor = make_random_whisper("small")
    plan = fp.plan_fast_path("cuda", "bf16", n_frames=frames, compile="none", num_workers=2)
    fp.apply_fast_path(model, plan)
    if variant == "static":
        model.generation_config.cache_implementation = "static"
    ds = lib.random_eval_set(n_eval, frames)
    row: dict[str, Any] = {"variant": variant, "clips": n_eval, "eval_batch": batch, "n_frames": frames}
    row["max_new_tokens"] = gen_len
    with tempfile.TemporaryDirectory() as out:
        tr = lib.eval_trainer(model, processor, plan, ds, batch, gen_len, out)
        row["setup_s"] = round(time.time() - t0, 2)
        for name in ("first", "second"):
            t = time.time()
            with _context(variant):
                m = tr.evaluate()
            row[f"{name}_evaluate_s"] = round(time.time() - t, 2)
            row[f"{name}_generate_s"] = m.get("eval_generate_runtime")
            row[f"{name}_samples_per_s"] = m.get("eval_samples_per_second")
    row["torch"] = torch.__version__
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--n-eval", type=int, default=500)
    ap.add_argument("--eval-batch", type=int, default=512)
    ap.add_argument("--frames", type=int, default=816)
    ap.add_argument("--gen-len", type=int, default=39)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        row = child(args.child, args.n_eval, args.eval_batch, args.frames, args.gen_len)
        print("ROW " + json.dumps(row), flush=True)
        return 0
    rows = []
    for variant in [v for v in args.variants.split(",") if v]:
        cmd = [sys.executable, __file__, "--child", variant, "--n-eval", str(args.n_eval)]
        cmd += [
            "--eval-batch",
            str(args.eval_batch),
            "--frames",
            str(args.frames),
            "--gen-len",
            str(args.gen_len),
        ]
        t = time.time()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
        found = [ln[4:] for ln in proc.stdout.splitlines() if ln.startswith("ROW ")]
        row = json.loads(found[-1]) if found else {"variant": variant, "error": proc.stderr[-1500:]}
        row["process_s"] = round(time.time() - t, 1)
        rows.append(row)
        print(json.dumps(row), flush=True)
        if args.out:
            Path(args.out).write_text(json.dumps({"rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
