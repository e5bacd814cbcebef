"""Seconds per training sample on the CPU: fp32 vs bf16 autocast, whole encoder vs its top layers.

Why: ``train.precision: auto`` picks bf16 autocast on CPUs that do bf16 in hardware
(``whisper_tune.models.load.cpu_bf16_native``) and the demo trains the encoder only; this measures
both choices on the product's own pieces, in one process and one call: the model from
``models.random_init`` (speed does not depend on the weights), the trainable set from
``train.strategies.apply_strategy`` (``strategy: encoder``, optionally
``frozen_encoder_layers``), the precision from ``train.fastpath.resolve_precision`` and the
autocast the Trainer applies (``torch.autocast("cpu", bfloat16)``). 30 s inputs, ~24 label tokens.

    python bench/cpu_precision.py --shape tiny --threads 2 --batch 8 [--json bench/results/cpu2_precision.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

import torch

import _lib as lib  # noqa: F401  (puts src/ on the path)
from whisper_tune.models.load import cpu_bf16_native
from whisper_tune.models.random_init import make_random_whisper
from whisper_tune.train.config import TrainSection
from whisper_tune.train.fastpath import resolve_precision
from whisper_tune.train.strategies import apply_strategy


def seconds_per_sample(shape: str, batch: int, precision: str, frozen: int, steps: int) -> float:
    model, _ = make_random_whisper(shape, seed=0)
    model, _info = apply_strategy(model, TrainSection(strategy="encoder", frozen_encoder_layers=frozen))
    model.train()
    feats = torch.randn(batch, model.config.num_mel_bins, 3000)
    labels = torch.randint(0, 50000, (batch, 24))
    cast = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()
    times = []
    for _ in range(steps + 1):  # the first step warms up
        t0 = time.perf_counter()
        with cast:
            loss = model(input_features=feats, labels=labels).loss
        loss.backward()
        model.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t0)
    return min(times[1:]) / batch


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="tiny")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--json", default="")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows: list[dict[str, Any]] = []
    for precision, frozen in (("fp32", 0), ("bf16", 0), ("bf16", 2)):
        s = seconds_per_sample(args.shape, args.batch, precision, frozen, args.steps)
        rows.append({"precision": precision, "frozen_encoder_layers": frozen, "s_per_sample": round(s, 3)})
        print(f"{precision} frozen_encoder_layers={frozen}: {s:.3f} s/sample", flush=True)
    base = rows[0]["s_per_sample"]
    for r in rows:
        r["speedup_vs_fp32"] = round(base / r["s_per_sample"], 2)
    out = {
        "shape": args.shape,
        "threads": args.threads,
        "batch": args.batch,
        "cpu_bf16_native": cpu_bf16_native(),
        "auto_precision_here": resolve_precision("auto", "cpu"),
        "loadavg": os.getloadavg(),
        "torch": torch.__version__,
        "rows": rows,
    }
    print(json.dumps(out, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
