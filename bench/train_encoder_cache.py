"""Seconds per training sample: full fine-tune vs frozen encoder vs cached encoder outputs.

Why: the CPU demo's strategy (``train.strategy: decoder`` + ``train.cache_encoder_outputs``)
is chosen by measurement. This times, on one model shape with random weights (speed does
not depend on the values), 30 s inputs ([80, 3000] features) and ~24 label tokens:

  full      forward + backward through encoder and decoder (the seed's recipe)
  frozen    encoder under no_grad, decoder trained (strategy "decoder", no cache)
  encode    the encoder forward alone (what building the cache costs, once per clip)
  cached    decoder trained on stored float16 encoder outputs (every later epoch)

    python bench/train_encoder_cache.py --shape tiny --threads 2 --batch 8
    taskset -c 0,1 python bench/train_encoder_cache.py --shape tiny --threads 2   # 2 clean cores

It needs only torch + transformers (no whisper_tune install), so it also runs on a bare
machine.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

import torch

SHAPES = {
    "test": (64, 2, 4, 128),
    "tiny": (384, 4, 6, 1536),
    "base": (512, 6, 8, 2048),
    "small": (768, 12, 12, 3072),
}


def make_model(shape: str) -> Any:
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    d, n, h, ffn = SHAPES[shape]
    cfg = WhisperConfig(
        vocab_size=51864,
        num_mel_bins=80,
        d_model=d,
        encoder_layers=n,
        decoder_layers=n,
        encoder_attention_heads=h,
        decoder_attention_heads=h,
        encoder_ffn_dim=ffn,
        decoder_ffn_dim=ffn,
        decoder_start_token_id=50257,
        pad_token_id=50256,
        eos_token_id=50256,
        bos_token_id=50256,
    )
    torch.manual_seed(0)
    return WhisperForConditionalGeneration(cfg)


def bench(shape: str, batch: int, reps: int, device: str) -> dict[str, float]:
    model = make_model(shape).to(device)
    model.train()
    feats = torch.randn(batch, 80, 3000, device=device)
    labels = torch.randint(0, 50000, (batch, 24), device=device)

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    def timed(fn: Any) -> float:
        fn()  # warm-up
        sync()
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        sync()
        return (time.perf_counter() - t0) / reps / batch

    def make_step(params: list[torch.nn.Parameter], **inputs: Any) -> Any:
        opt = torch.optim.AdamW(params, lr=1e-5)

        def step() -> None:
            loss = model(labels=labels, **inputs).loss
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        return step

    out: dict[str, float] = {}
    out["full"] = timed(make_step(list(model.parameters()), input_features=feats))
    encoder = model.get_encoder()
    for p in encoder.parameters():
        p.requires_grad_(False)
    dec_params = [p for p in model.parameters() if p.requires_grad]
    out["frozen"] = timed(make_step(dec_params, input_features=feats))
    hidden: list[torch.Tensor] = []

    @torch.no_grad()
    def encode() -> None:
        hidden[:] = [encoder(feats).last_hidden_state.to(torch.float16)]

    out["encode"] = timed(encode)
    cached = hidden[0].float()
    out["cached"] = timed(make_step(dec_params, encoder_outputs=(cached,)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", default="tiny", choices=sorted(SHAPES))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--epochs", type=int, default=3, help="for the per-epoch-average line")
    args = ap.parse_args()
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
        "load_avg": os.getloadavg()[0],
        "s_per_sample": {k: round(v, 4) for k, v in res.items()},
    }
    print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
