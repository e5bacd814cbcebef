"""Seconds per training sample: full fine-tune vs frozen encoder vs cached encoder outputs.

Why: the CPU demo's strategy (``train.strategy: decoder`` + ``train.cache_encoder_outputs``)
is chosen by measurement, of the product's own pieces: the strategies come from
``whisper_tune.train.strategies.apply_strategy``, the cache from
``whisper_tune.train.encoder_cache`` (``build_encoder_cache`` writing float16 ``.npy`` files,
``CachedEncoderDataset`` + ``CachedEncoderCollator`` reading them back into batches). On one
model shape with random weights (speed does not depend on the values), 30 s inputs
([80, 3000] features) and ~24 label tokens:

  full      forward + backward through encoder and decoder (strategy "full", the seed's)
  frozen    encoder frozen, decoder trained (strategy "decoder", no cache)
  encode    building the encoder cache (once per clip: encoder forward + the file written)
  cached    decoder trained on the cached encoder outputs (every later epoch)

    python bench/train_encoder_cache.py --shape tiny --threads 2 --batch 8
    taskset -c 0,1 python bench/train_encoder_cache.py --shape tiny --threads 2   # 2 clean cores

It needs only torch + transformers and the repo's tree (``bench/_lib.py`` puts ``src/`` on
the path), so it also runs on a bare machine.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

import _lib as lib
from whisper_tune.models.random_init import SHAPES
from whisper_tune.train.config import TrainSection
from whisper_tune.train.encoder_cache import (
    CachedEncoderCollator,
    CachedEncoderDataset,
    build_encoder_cache,
    cache_fingerprint,
)
from whisper_tune.train.strategies import apply_strategy

LABEL_LEN = 24


class _Clips(torch.utils.data.Dataset):
    """``batch`` items as the data pipeline yields them: features + labels (+ id)."""

    def __init__(self, feats: torch.Tensor, labels: torch.Tensor) -> None:
        self.feats, self.labels = feats, labels

    def __len__(self) -> int:
        return self.feats.shape[0]

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"input_features": self.feats[i].numpy(), "labels": self.labels[i].tolist(), "id": str(i)}


def bench(shape: str, batch: int, reps: int, device: str) -> dict[str, float]:
    model = lib.bare_whisper(shape)
    feats = torch.randn(batch, model.config.num_mel_bins, 3000)
    labels = torch.randint(0, 50000, (batch, LABEL_LEN))

    def make_step(m: Any, **inputs: Any) -> Any:
        opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-5)

        def step() -> None:
            loss = m(labels=labels.to(device), **inputs).loss
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        return step

    def per_sample(fn: Any) -> float:
        return lib.time_per_call(fn, reps, device) / batch

    out: dict[str, float] = {}
    full, _ = apply_strategy(model, TrainSection(strategy="full"))
    full.to(device).train()
    out["full"] = per_sample(make_step(full, input_features=feats.to(device)))
    frozen, _ = apply_strategy(full, TrainSection(strategy="decoder"))
    out["frozen"] = per_sample(make_step(frozen, input_features=feats.to(device)))

    clips = _Clips(feats, labels)
    with tempfile.TemporaryDirectory(prefix="wt-enc-cache-") as tmp:
        fingerprint = cache_fingerprint(shape, [str(i) for i in range(batch)])
        t0 = time.perf_counter()
        for rep in range(reps + 1):  # a fresh folder each time: a complete cache would be reused
            if rep == 1:
                t0 = time.perf_counter()
            build_encoder_cache(
                frozen, clips, Path(tmp) / str(rep), fingerprint, batch_size=batch, device=device
            )
        lib.sync(device)
        out["encode"] = (time.perf_counter() - t0) / reps / batch
        cached = CachedEncoderDataset(clips, Path(tmp) / "0")
        collate = CachedEncoderCollator(lambda rows: rows, int(frozen.config.decoder_start_token_id))
        enc = collate([cached[i] for i in range(batch)])["encoder_outputs"]
        frozen.train()
        out["cached"] = per_sample(make_step(frozen, encoder_outputs=(enc[0].to(device),)))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", default="tiny", choices=sorted(SHAPES))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--epochs", type=int, default=3, help="for the per-epoch-average line")
    ap.add_argument("--out", default="", help="also write the result JSON here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    res = bench(args.shape, args.batch, args.reps, args.device)
    e = args.epochs
    res["cached_avg_per_epoch"] = (res["encode"] + e * res["cached"]) / e
    res["frozen_avg_per_epoch"] = res["frozen"]
    info = {
        "shape": args.shape,
        "batch": args.batch,
        "threads": args.threads,
        "device": args.device,
        "load_avg": lib.environment().get("load_avg"),
        "s_per_sample": {k: round(v, 4) for k, v in res.items()},
    }
    print(json.dumps(info, indent=2))
    if args.out:
        lib.write_json(args.out, info, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
