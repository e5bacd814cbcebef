"""Pack real tiny.en weights + a synthesized banking corpus small enough to carry to a GPU machine.

Why: the equal-WER half of the short-audio benchmark needs real weights and real speech, but
the GPU machine can fetch nothing and a carried tree is capped at 64 MiB: tiny.en in fp16 is
~75 MB and 30 s float32 features are ~1 MB a clip. So this packs (1) tiny.en's weights with
every large matrix as int8 + one fp32 scale per row (dequantized on the GPU before training;
both recipes start from the same dequantized model, so the comparison stays fair), and
(2) log-mel features cut to each clip's own length and stored as uint8 with a per-clip
offset/scale. The 30 s padding is rebuilt exactly on the GPU: Whisper's log-mel of the
zero padding is the clip's floor value (``max - 8`` before normalisation), i.e. its minimum.

    PYTHONPATH=src python bench/short_audio_prep.py --corpus /path/to/corpus --out .carry/perf/b
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def quantize_state_dict(sd: dict[str, torch.Tensor], min_numel: int = 65536) -> dict[str, Any]:
    """Large 2-D float tensors -> int8 rows + fp32 row scales; the rest -> fp16/original."""
    out: dict[str, Any] = {}
    for k, v in sd.items():
        if k == "proj_out.weight":  # tied to model.decoder.embed_tokens.weight: re-tied on load
            continue
        if v.is_floating_point() and v.dim() == 2 and v.numel() >= min_numel:
            w = v.float()
            scale = w.abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / 127.0
            out[k] = {"q": torch.round(w / scale).to(torch.int8), "scale": scale.squeeze(1)}
        elif v.is_floating_point():
            out[k] = v.to(torch.float16) if v.numel() > 4096 else v.float()
        else:
            out[k] = v
    return out


def dequantize_state_dict(q: dict[str, Any]) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in q.items():
        if isinstance(v, dict):
            out[k] = v["q"].float() * v["scale"].float()[:, None]
        else:
            out[k] = v.float() if v.is_floating_point() else v
    return out


def pack_features(feats: np.ndarray, n_frames: int) -> tuple[np.ndarray, float, float]:
    """[80, 3000] normalised log-mel -> uint8 [80, n_frames] + (offset, scale)."""
    x = feats[:, :n_frames]
    lo = float(feats.min())
    hi = float(x.max())
    scale = max(hi - lo, 1e-6) / 255.0
    q = np.clip(np.round((x - lo) / scale), 0, 255).astype(np.uint8)
    return q, lo, scale


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--corpus", required=True, help="synthesized corpus dir (train.jsonl, test.jsonl, audio/)"
    )
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", default="tiny.en")
    ap.add_argument("--processor-out", default="/tmp/whisper_tune_short_audio_processor")
    ap.add_argument("--max-train", type=int, default=400)
    ap.add_argument("--max-seconds", type=float, default=8.0, help="keep clips up to this long")
    args = ap.parse_args()
    from whisper_tune.data.audio import load_audio
    from whisper_tune.models.load import load_model

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model, processor = load_model(args.model)
    torch.save(quantize_state_dict(model.state_dict()), out / "weights_q8.pt")
    model.config.to_json_file(out / "config.json")
    model.generation_config.to_json_file(out / "generation_config.json")
    # The processor stays here (decoding and WER are computed on this machine, not carried).
    processor.save_pretrained(args.processor_out)
    fe = processor.feature_extractor
    tok = processor.tokenizer
    prefix = tok(
        "", add_special_tokens=True
    ).input_ids  # <|startoftranscript|><|notimestamps|>...<|endoftext|>
    t0 = time.time()
    meta: dict[str, Any] = {
        "model": args.model,
        "max_seconds": args.max_seconds,
        "prefix_ids": prefix,
        "splits": {},
    }
    for split, cap in (("train", args.max_train), ("test", 10**9)):
        lines = (Path(args.corpus) / f"{split}.jsonl").read_text().splitlines()
        rows = [json.loads(line) for line in lines if line.strip()]
        rows = [r for r in rows if float(r["duration"]) <= args.max_seconds][:cap]
        blobs, items = [], []
        for r in rows:
            audio = load_audio(str(Path(args.corpus) / r["audio_filepath"]))
            feats = fe(audio, sampling_rate=16000, return_tensors="np").input_features[0]
            frames = min(3000, int(len(audio) / 160) + 1)
            q, lo, scale = pack_features(feats, frames)
            blobs.append(q.reshape(-1))
            labels = tok(r["text"]).input_ids
            items.append(
                {
                    "id": r["id"],
                    "text": r["text"],
                    "frames": frames,
                    "lo": lo,
                    "scale": scale,
                    "labels": labels,
                }
            )
        np.save(out / f"{split}_feats.npy", np.concatenate(blobs))
        (out / f"{split}.json").write_text(json.dumps(items))
        meta["splits"][split] = len(items)
        print(split, len(items), "clips, max frames", max(i["frames"] for i in items), flush=True)
    (out / "meta.json").write_text(json.dumps(meta))
    print(f"packed in {time.time() - t0:.0f}s; sizes:")
    for p in sorted(out.rglob("*")):
        if p.is_file():
            print(f"  {p.stat().st_size / 1e6:7.2f} MB {p.relative_to(out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
