"""Domain gain vs forgetting: WER of base/tuned weight mixes on domain, general, real and long-form sets.

Why: the export rule (train/guard_select.py) trades domain WER against real-speech (guard) WER
by interpolating weights (WiSE-FT). This benchmark measures the whole curve for one run, on the
product's own code paths (``models.interpolate`` for the mix, ``whisper_tune.evaluate`` for
short-clip WER), plus long-form WER of > 60 s recordings made by concatenating test clips and
decoded sequentially with timestamps (Transformers' long-form ``generate``), the way a user
transcribes a call. The Pareto table in docs/evaluate.md comes from here.

    python bench/forgetting_pareto.py --tuned demo_out/runs/demo/best \
        --set banking=demo_out/data/test.jsonl --set guard=GUARD/manifest.jsonl \
        --longform demo_out/data/test.jsonl --alphas 0,0.5,1 --out bench/results/pareto.json
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from whisper_tune.data import load_audio, load_manifest
from whisper_tune.evaluate import evaluate
from whisper_tune.models import load_model
from whisper_tune.models.interpolate import interpolate_weights
from whisper_tune.scoring import error_rates


def _longform_sets(manifest: str, n_recordings: int, min_s: float, seed: int) -> list[tuple[np.ndarray, str]]:
    """Recordings of >= min_s seconds: test clips joined with 0.4-0.9 s pauses (deterministic)."""
    samples = load_manifest(manifest).samples
    rng = random.Random(seed)
    order = list(range(len(samples)))
    rng.shuffle(order)
    out: list[tuple[np.ndarray, str]] = []
    i = 0
    while len(out) < n_recordings and i < len(order):
        pieces: list[np.ndarray] = []
        texts: list[str] = []
        total = 0.0
        while total < min_s and i < len(order):
            s = samples[order[i]]
            i += 1
            audio = load_audio(s.audio)
            pause = np.zeros(int(16000 * rng.uniform(0.4, 0.9)), dtype=np.float32)
            pieces += [audio, pause]
            texts.append(s.text.strip())
            total += (len(audio) + len(pause)) / 16000
        if total >= min_s:
            out.append((np.concatenate(pieces), " ".join(texts)))
    return out


def longform_wer(model: Any, processor: Any, recordings: list[tuple[np.ndarray, str]]) -> dict[str, Any]:
    """Sequential long-form decoding (timestamps drive the window shifts), greedy."""
    hyps, refs = [], []
    t0 = time.perf_counter()
    for audio, ref in recordings:
        feats = processor.feature_extractor(
            audio,
            sampling_rate=16000,
            return_tensors="pt",
            truncation=False,
            padding="longest",
            return_attention_mask=True,
        )
        with torch.no_grad():
            ids = model.generate(
                feats.input_features,
                attention_mask=feats.attention_mask,
                return_timestamps=True,
                condition_on_prev_tokens=False,
            )
        hyps.append(processor.batch_decode(ids, skip_special_tokens=True)[0])
        refs.append(ref)
    rates = error_rates(refs, hyps)
    return {
        "wer": float(rates["wer"]),
        "recordings": len(recordings),
        "audio_s": round(sum(len(a) for a, _ in recordings) / 16000, 1),
        "seconds": round(time.perf_counter() - t0, 1),
        "examples": [{"ref": r[:160], "hyp": h[:160]} for r, h in list(zip(refs, hyps, strict=True))[:2]],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="tiny.en")
    ap.add_argument("--tuned", required=True, help="the run's best/ (full-context HF dir)")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=MANIFEST")
    ap.add_argument("--longform", default=None, help="manifest whose clips are joined into > 60 s recordings")
    ap.add_argument("--longform-n", type=int, default=6)
    ap.add_argument("--longform-min-s", type=float, default=65.0)
    ap.add_argument("--alphas", default="0,0.35,0.5,0.75,1")
    ap.add_argument("--limit", type=int, default=None, help="clips per set (default all)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    sets = dict(s.split("=", 1) for s in args.set)
    base, processor = load_model(args.base)
    tuned, _ = load_model(args.tuned)
    recordings = (
        _longform_sets(args.longform, args.longform_n, args.longform_min_s, 0) if args.longform else []
    )
    rows: list[dict[str, Any]] = []
    for alpha in [float(a) for a in args.alphas.split(",")]:
        mix = interpolate_weights(base, tuned, alpha)
        row: dict[str, Any] = {"alpha": alpha}
        with tempfile.TemporaryDirectory() as tmp:
            mix.save_pretrained(tmp)
            processor.save_pretrained(tmp)
            for name, manifest in sets.items():
                t0 = time.perf_counter()
                res = evaluate(tmp, manifest, Path(tmp) / f"eval-{name}", limit=args.limit)
                row[name] = res.wer
                row[f"{name}_s"] = round(time.perf_counter() - t0, 1)
        if recordings:
            lf = longform_wer(mix, processor, recordings)
            row["longform"] = lf["wer"]
            row["longform_detail"] = lf
        print(
            json.dumps(
                {
                    k: (round(v, 4) if isinstance(v, float) else v)
                    for k, v in row.items()
                    if k != "longform_detail"
                }
            ),
            flush=True,
        )
        rows.append(row)
    out = {
        "base": args.base,
        "tuned": args.tuned,
        "sets": sets,
        "longform": {"manifest": args.longform, "n": len(recordings), "min_s": args.longform_min_s},
        "rows": rows,
        "machine": {"threads": torch.get_num_threads(), "cuda": torch.cuda.is_available()},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
