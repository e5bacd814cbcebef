"""Where a serving replica's time goes: the backends in-process, without HTTP or Ray Serve.

Why: bench/serve.py measures the endpoint end to end; when it trails the in-process
``transformers.pipeline``, this separates the backend itself (log-mel features vs the model)
from the Serve/HTTP layer, for each backend, batch size, feature device and thread count
(Serve replicas run with one intra-op thread unless given CPUs). It also reports how many
tokens each batch generated, since a batch runs until its longest row stops.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/serve_profile.py --model tiny.en --clips-dir DIR
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from serve import SR, load_clips, machine, make_clips  # noqa: E402


def run(backend: Any, clips: list[Any], n: int, bs: int) -> dict[str, Any]:
    inputs = [clips[i % len(clips)] for i in range(n)]
    backend.transcribe_batch(inputs[:bs])  # warm-up at this batch size (allocator, cuFFT plans)
    before = dict(backend.stats)
    t0 = time.perf_counter()
    texts = []
    for b in range(0, n, bs):
        texts += [t.text for t in backend.transcribe_batch(inputs[b : b + bs])]
    wall = time.perf_counter() - t0
    audio = sum(len(x) for x in inputs) / SR
    tokens = [len(backend.tokenizer.encode(t, add_special_tokens=False)) for t in texts]
    return {
        "batch": bs,
        "requests": n,
        "audio_s_per_s": round(audio / wall, 2),
        "features_s": round(backend.stats["features_s"] - before["features_s"], 3),
        "model_s": round(backend.stats["model_s"] - before["model_s"], 3),
        "wall_s": round(wall, 3),
        "max_tokens": max(tokens),
        "mean_tokens": round(sum(tokens) / len(tokens), 1),
        "distinct_texts": len(set(texts)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny.en")
    ap.add_argument("--clips-dir", type=Path, default=None)
    ap.add_argument("--backends", default="hf,ct2")
    ap.add_argument("--batches", default="1,8,32")
    ap.add_argument("--threads", default="1", help="torch intra-op threads to try (Serve replicas get 1)")
    ap.add_argument("--feature-devices", default="cpu,auto")
    ap.add_argument("--requests", type=int, default=128)
    ap.add_argument("--out", default="serve_profile.json")
    args = ap.parse_args(argv)

    import torch

    from whisper_tune.inference import BackendOptions, load_backend

    clips = load_clips(args.clips_dir) if args.clips_dir else make_clips(["en-us", "en-gb"])
    rows = []
    for kind in [b for b in args.backends.split(",") if b]:
        backend = load_backend(
            args.model, kind, BackendOptions(batch_size=max(map(int, args.batches.split(","))))
        )
        for threads in [int(t) for t in args.threads.split(",")]:
            torch.set_num_threads(threads)
            for fdev in args.feature_devices.split(","):
                backend.opts.feature_device = fdev
                for bs in [int(b) for b in args.batches.split(",")]:
                    backend.opts.batch_size = bs
                    r = {
                        "backend": f"{kind} ({backend.device} {backend.precision})",
                        "threads": threads,
                        "features_on": backend._feature_device(),
                        **run(backend, clips, args.requests, bs),
                    }
                    rows.append(r)
                    print(json.dumps(r), flush=True)
        del backend
    Path(args.out).write_text(json.dumps({"machine": machine(), "rows": rows}, indent=2))
    keys = [
        "backend",
        "threads",
        "features_on",
        "batch",
        "audio_s_per_s",
        "features_s",
        "model_s",
        "max_tokens",
    ]
    print("| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(str(r[k]) for k in keys) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
