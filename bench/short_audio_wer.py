"""Time-to-tuned-model at equal WER: the seed recipe at 30 s vs the fast path at a short context.

Why: a shortened encoder context is only a win if the fine-tuned model is as accurate. This
fine-tunes real tiny.en weights (packed by ``bench/short_audio_prep.py``: int8 rows,
dequantized here, the same start for both recipes) on a synthesized banking corpus with

  seed: fp16 + GradScaler, batch 16, gradient checkpointing, eager attention, 30 s inputs;
  fast: ``whisper_tune.train.fastpath`` (bf16, SDPA, fused AdamW, torch.compile, no
        checkpointing) with the encoder cut to the longest clip + 64 frames;

evaluating greedy transcripts of the held-out test split after every epoch (evaluation time
is not counted as training time). Token ids come back as JSON; WER is scored on the CPU
machine with the project's normalizer (``--score``).

    # GPU machine (carry .carry/perf):
    PYTHONPATH=src:.carry/perf/site python bench/short_audio_wer.py --data .carry/perf/b --out $OUT/b.json
    # here:
    PYTHONPATH=src python bench/short_audio_wer.py --score b.json --processor /tmp/whisper_tune_short_audio_processor
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def load_split(
    data: Path, split: str, n_frames: int, device: str
) -> tuple[torch.Tensor, list[list[int]], list[str]]:
    items = json.loads((data / f"{split}.json").read_text())
    blob = np.load(data / f"{split}_feats.npy")
    feats = torch.empty(len(items), 80, n_frames)
    off = 0
    for i, it in enumerate(items):
        size = 80 * it["frames"]
        q = torch.from_numpy(blob[off : off + size].reshape(80, it["frames"]).astype(np.float32))
        off += size
        x = q * it["scale"] + it["lo"]
        keep = min(n_frames, it["frames"])
        feats[i].fill_(it["lo"])  # Whisper's log-mel of zero padding is the clip's floor
        feats[i, :, :keep] = x[:, :keep]
    return feats.to(device), [it["labels"] for it in items], [it["text"] for it in items]


def load_model(data: Path, device: str) -> Any:
    import sys

    from transformers import GenerationConfig, WhisperConfig, WhisperForConditionalGeneration

    sys.path.insert(0, str(Path(__file__).parent))
    from short_audio_prep import dequantize_state_dict

    cfg = WhisperConfig.from_json_file(str(data / "config.json"))
    model = WhisperForConditionalGeneration(cfg)
    sd = dequantize_state_dict(torch.load(data / "weights_q8.pt", weights_only=True))
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert set(missing) <= {"proj_out.weight"} and not unexpected, (missing, unexpected)
    model.proj_out.weight = model.model.decoder.embed_tokens.weight
    model.generation_config = GenerationConfig.from_pretrained(str(data))
    torch.nn.Module.to(model, torch.device(device))
    return model


def batch_labels(labels: list[list[int]], idx: list[int], sot: int, device: str) -> torch.Tensor:
    seqs = [labels[i][1:] if labels[i][0] == sot else labels[i] for i in idx]
    out = torch.full((len(seqs), max(len(s) for s in seqs)), -100, dtype=torch.long)
    for j, s in enumerate(seqs):
        out[j, : len(s)] = torch.tensor(s)
    return out.to(device)


@torch.no_grad()
def transcribe(
    model: Any, feats: torch.Tensor, dtype: torch.dtype | None, batch: int = 32
) -> list[list[int]]:
    from whisper_tune.train.fastpath import uncompiled

    model.eval()
    out: list[list[int]] = []
    with uncompiled(model):
        for s in range(0, feats.shape[0], batch):
            with torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None):
                ids = model.generate(feats[s : s + batch], max_new_tokens=96, num_beams=1)
            out.extend(ids.tolist())
    model.train()
    return out


def run_recipe(name: str, args: argparse.Namespace, data: Path, results: dict[str, Any]) -> None:
    from whisper_tune.train import fastpath as fp

    torch._dynamo.reset()
    torch.manual_seed(0)
    model = load_model(data, "cuda")
    sot = int(model.generation_config.decoder_start_token_id)
    if name == "seed":
        frames, batch, lr, epochs = 3000, 16, args.lr, args.seed_epochs
        dtype: torch.dtype | None = torch.float16
        model.set_attn_implementation("eager")
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
        opt: Any = torch.optim.AdamW(model.parameters(), lr=lr)
        scaler: Any = torch.amp.GradScaler("cuda")
    else:
        frames = fp.choose_encoder_frames(args.max_seconds, args.margin_frames)
        plan = fp.plan_fast_path("cuda", "auto", n_frames=frames, compile=args.fast_compile)
        fp.apply_fast_path(model, plan)
        batch, lr, epochs = args.fast_batch, args.lr * args.fast_batch / 16, args.fast_epochs
        dtype = fp.autocast_dtype(plan.precision)
        opt = fp.fused_adamw(model.parameters(), lr=lr, device="cuda")
        scaler = None
    train_x, train_y, _ = load_split(data, "train", frames, "cuda")
    test_x, _, _ = load_split(data, "test", frames, "cuda")
    n = train_x.shape[0]
    warm = 10
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm))
    g = torch.Generator().manual_seed(0)
    rec: dict[str, Any] = {"frames": frames, "batch": batch, "lr": lr, "epochs": []}
    t_train = 0.0
    step = 0
    for epoch in range(1, epochs + 1):
        perm = torch.randperm(n, generator=g).tolist()
        nb = n // batch  # drop the last partial batch (fixed shapes for the compiled model)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        losses = []
        for b in range(nb):
            idx = perm[b * batch : (b + 1) * batch]
            y = batch_labels(train_y, idx, sot, "cuda")
            with torch.autocast("cuda", dtype=dtype):
                loss = model(input_features=train_x[idx], labels=y).loss
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            else:
                loss.backward()
                opt.step()
            opt.zero_grad(set_to_none=True)
            sched.step()
            step += 1
            losses.append(loss.detach())
        torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        t_train += dt
        mean_loss = float(torch.stack(losses).float().mean())
        hyps = transcribe(model, test_x, dtype)
        rec["epochs"].append(
            {
                "epoch": epoch,
                "steps": step,
                "epoch_s": dt,
                "train_s": t_train,
                "loss": mean_loss,
                "hyps": hyps,
            }
        )
        print(
            f"{name}: epoch {epoch} steps {step} epoch {dt:6.1f}s cum {t_train:6.1f}s loss {mean_loss:.3f}",
            flush=True,
        )
        if not math.isfinite(mean_loss):
            break
    results[name] = rec


def gpu_main(args: argparse.Namespace) -> int:
    from whisper_tune.train import fastpath as fp

    data = Path(args.data)
    results: dict[str, Any] = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    # the untuned starting point, at 30 s and at the short context
    model = load_model(data, "cuda")
    for frames in (
        (3000, fp.choose_encoder_frames(args.max_seconds, args.margin_frames)) if not args.no_untuned else ()
    ):
        if frames != fp.encoder_frames(model):
            fp.shorten_encoder_context(model, frames)
        x, _, _ = load_split(data, "test", frames, "cuda")
        results[f"untuned_{frames}"] = {"frames": frames, "hyps": transcribe(model, x, None)}
    del model
    for name in args.recipes.split(","):
        run_recipe(name, args, data, results)
        Path(args.out).write_text(json.dumps(results))
    Path(args.out).write_text(json.dumps(results))
    return 0


def score(args: argparse.Namespace) -> int:
    import jiwer
    from transformers import WhisperProcessor

    try:
        from whisper_tune.evaluate import get_normalizer

        norm = get_normalizer("whisper_en")
    except Exception:  # noqa: BLE001 - fall back to a basic normaliser if evaluate is not ready
        import re

        def norm(s: str) -> str:
            return re.sub(r"\s+", " ", re.sub(r"[^a-z0-9' ]", " ", s.lower())).strip()

    proc = WhisperProcessor.from_pretrained(args.processor)
    refs = [it["text"] for it in json.loads((Path(args.data) / "test.json").read_text())]
    res = json.loads(Path(args.score).read_text())

    def wer(hyps: list[list[int]]) -> float:
        texts = proc.batch_decode(hyps, skip_special_tokens=True)
        r = [norm(x) for x in refs]
        h = [norm(x) for x in texts]
        return float(jiwer.wer(r, h))

    table: dict[str, Any] = {"device": res.get("device")}
    for key, val in res.items():
        if key.startswith("untuned_"):
            table[key] = {"frames": val["frames"], "wer": wer(val["hyps"])}
            print(f"{key}: WER {100 * table[key]['wer']:.2f}%")
        elif isinstance(val, dict) and "epochs" in val:
            rows = []
            for ep in val["epochs"]:
                rows.append(
                    {k: ep[k] for k in ("epoch", "steps", "epoch_s", "train_s", "loss")}
                    | {"wer": wer(ep["hyps"])}
                )
                print(
                    f"{key} frames={val['frames']} bs={val['batch']} epoch {ep['epoch']}: train {ep['train_s']:6.1f}s WER {100 * rows[-1]['wer']:.2f}%"
                )
            table[key] = {k: val[k] for k in ("frames", "batch", "lr")} | {"epochs": rows}
    if "seed" in table and "fast" in table:
        target = table["seed"]["epochs"][-1]["wer"]
        seed_t = table["seed"]["epochs"][-1]["train_s"]
        hit = next((e for e in table["fast"]["epochs"] if e["wer"] <= target), None)
        table["time_to_seed_wer"] = {
            "seed_final_wer": target,
            "seed_train_s": seed_t,
            "fast_epoch_reaching_it": hit["epoch"] if hit else None,
            "fast_train_s": hit["train_s"] if hit else None,
            "speedup_incl_compile": seed_t / hit["train_s"] if hit else None,
        }
        print(json.dumps(table["time_to_seed_wer"], indent=1))
    Path(args.table).write_text(json.dumps(table, indent=1))
    print(f"wrote {args.table}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=".carry/perf/b")
    ap.add_argument("--out", default="short_audio_wer_raw.json")
    ap.add_argument("--recipes", default="seed,fast")
    ap.add_argument(
        "--lr", type=float, default=1e-5, help="seed learning rate (batch 16); fast scales it linearly"
    )
    ap.add_argument("--seed-epochs", type=int, default=5)
    ap.add_argument("--fast-epochs", type=int, default=10)
    ap.add_argument("--fast-batch", type=int, default=32)
    ap.add_argument("--fast-compile", default="model", help="model | encoder | none (torch.compile scope)")
    ap.add_argument("--max-seconds", type=float, default=8.0)
    ap.add_argument("--margin-frames", type=int, default=64)
    ap.add_argument("--no-untuned", action="store_true", help="skip the untuned baseline transcripts")
    ap.add_argument("--score", default="", help="score a raw JSON from the GPU run (CPU side)")
    ap.add_argument("--processor", default="/tmp/whisper_tune_short_audio_processor")
    ap.add_argument("--table", default="bench/results/h100_short_audio_wer.json")
    args = ap.parse_args()
    if args.score:
        return score(args)
    return gpu_main(args)


if __name__ == "__main__":
    raise SystemExit(main())
