"""Serving benchmark: the Ray Serve endpoint (HF and CTranslate2 backends) vs an in-process
Transformers ``pipeline`` on the same machine and the same clips.

Why: "is serving fast enough, and what does the HTTP + batching layer cost or buy?" needs
numbers from one machine under one load shape. For each backend the app is deployed on
loopback and hit by N clients at concurrency 1, 8 and 32 (each request one short banking
utterance, synthesized offline with espeak-ng); the baseline transcribes the same clips
in-process with ``transformers.pipeline`` at batch 1 and batch 8.

Reports throughput in audio seconds per wall second (RTFx), requests/s, and latency p50/p95;
writes JSON (``--out``) and prints a markdown table.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/serve.py --model tiny.en --requests 16
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

SR = 16000
SENTENCES = [
    "I would like to check my account balance please.",
    "Can you freeze my debit card, I think I lost it yesterday.",
    "What is the APR on my credit card?",
    "I sent money with Zelle but it never arrived.",
    "Please dispute the charge from the grocery store.",
    "How do I set up direct deposit for my paycheck?",
    "My online banking password is locked.",
    "I want to increase my credit limit.",
]


@dataclass
class Row:
    system: str
    concurrency: str
    requests: int
    audio_s: float
    wall_s: float
    audio_s_per_s: float
    requests_per_s: float
    p50_ms: float
    p95_ms: float
    errors: int


def percentile(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def load_clips(clips_dir: Path) -> list[np.ndarray]:
    """WAV files saved by ``--save-clips`` (for machines without espeak-ng, e.g. the GPU one)."""
    from whisper_tune.serve.audio import decode_audio_bytes

    files = sorted(clips_dir.glob("*.wav"))
    if not files:
        sys.exit(f"{clips_dir}: no .wav files")
    return [decode_audio_bytes(f.read_bytes()) for f in files]


def make_clips(voices: list[str]) -> list[np.ndarray]:
    from whisper_tune.serve.audio import decode_audio_bytes

    if shutil.which("espeak-ng") is None:
        sys.exit("bench/serve.py needs espeak-ng for offline speech (apt-get install espeak-ng)")
    clips = []
    for i, text in enumerate(SENTENCES):
        voice = voices[i % len(voices)]
        wav = subprocess.run(
            ["espeak-ng", "-v", voice, "--stdout", text], check=True, capture_output=True
        ).stdout
        clips.append(decode_audio_bytes(wav))
    return clips


def wav_bytes(x: np.ndarray) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, x, SR, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def row(system: str, conc: str, latencies: list[float], audio_s: float, wall: float, errors: int) -> Row:
    n = len(latencies)
    return Row(
        system=system,
        concurrency=conc,
        requests=n,
        audio_s=round(audio_s, 2),
        wall_s=round(wall, 3),
        audio_s_per_s=round(audio_s / wall, 2),
        requests_per_s=round(n / wall, 3),
        p50_ms=round(1000 * percentile(latencies, 0.5), 1),
        p95_ms=round(1000 * percentile(latencies, 0.95), 1),
        errors=errors,
    )


def bench_endpoint(url: str, clips: list[np.ndarray], concurrency: int, n_requests: int, label: str) -> Row:
    import httpx

    bodies = [wav_bytes(c) for c in clips]
    durs = [len(c) / SR for c in clips]
    latencies: list[float] = []
    errors = 0
    audio = 0.0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    with httpx.Client(timeout=600, limits=limits) as client:

        def one(i: int) -> tuple[float, bool, float]:
            k = i % len(bodies)
            t0 = time.perf_counter()
            r = client.post(
                url, files={"file": (f"c{k}.wav", bodies[k], "audio/wav")}, data={"response_format": "json"}
            )
            if r.status_code != 200:
                print(f"  {label}: HTTP {r.status_code}: {r.text[:200]}", file=sys.stderr)
            return time.perf_counter() - t0, r.status_code == 200, durs[k]

        t0 = time.perf_counter()
        with cf.ThreadPoolExecutor(concurrency) as pool:
            for lat, ok, d in pool.map(one, range(n_requests)):
                if ok:
                    latencies.append(lat)
                    audio += d
                else:
                    errors += 1
        wall = time.perf_counter() - t0
    return row(label, str(concurrency), latencies, audio, wall, errors)


def bench_pipeline(
    model_spec: str, clips: list[np.ndarray], n_requests: int, batch_size: int, device: str, dtype: str
) -> Row:
    import torch
    from transformers import pipeline

    from whisper_tune.models import load_model

    model, processor = load_model(
        model_spec,
        dtype=dtype if dtype == "auto" else getattr(torch, dtype),
        device=device,
        attn_implementation="sdpa",
    )
    asr = pipeline(
        "automatic-speech-recognition",
        model=model,
        tokenizer=processor.tokenizer,
        feature_extractor=processor.feature_extractor,
        device=torch.device(device),
    )
    # plain 16 kHz arrays: the pipeline pops keys from dict inputs, so dicts cannot be reused
    inputs = [clips[i % len(clips)] for i in range(n_requests)]
    asr([inputs[0]], batch_size=1)  # warm-up
    latencies: list[float] = []
    t0 = time.perf_counter()
    for b in range(0, n_requests, batch_size):
        chunk = inputs[b : b + batch_size]
        tb = time.perf_counter()
        asr(chunk, batch_size=batch_size)
        latencies += [time.perf_counter() - tb] * len(chunk)  # each request waits for its whole batch
    wall = time.perf_counter() - t0
    audio = sum(len(clips[i % len(clips)]) / SR for i in range(n_requests))
    kind = str(model.dtype).removeprefix("torch.")
    return row(
        f"transformers pipeline ({device} {kind}, in-process)",
        f"batch {batch_size}",
        latencies,
        audio,
        wall,
        0,
    )


def bench_faster_whisper(
    model_spec: str, clips: list[np.ndarray], n_requests: int, device: str, compute_type: str, batched: bool
) -> Row:
    """faster-whisper in-process on the same clips (the issue's yardstick), greedy, one clip at a time.

    ``batched``: through ``BatchedInferencePipeline`` (batch 8 over a clip's VAD chunks; a short
    clip is one chunk), else ``WhisperModel.transcribe``. The model is the CTranslate2 export
    ``serve --backend ct2`` runs (``inference.loader.ct2_dir_for``)."""
    from faster_whisper import BatchedInferencePipeline, WhisperModel

    from whisper_tune.inference.loader import ct2_dir_for, resolve_model_dir

    ct = compute_type if compute_type != "auto" else ("int8" if device == "cpu" else "float16")
    model = WhisperModel(str(ct2_dir_for(resolve_model_dir(model_spec))), device=device, compute_type=ct)
    pipe = BatchedInferencePipeline(model) if batched else None

    def one(x: np.ndarray) -> str:
        if pipe is not None:
            segments, _ = pipe.transcribe(x, batch_size=8, beam_size=1, language="en")
        else:
            segments, _ = model.transcribe(x, beam_size=1, language="en")
        return "".join(s.text for s in segments)  # the generator decodes as it is consumed

    inputs = [clips[i % len(clips)] for i in range(n_requests)]
    one(inputs[0])  # warm-up
    latencies: list[float] = []
    t0 = time.perf_counter()
    for x in inputs:
        tb = time.perf_counter()
        one(x)
        latencies.append(time.perf_counter() - tb)
    wall = time.perf_counter() - t0
    audio = sum(len(x) / SR for x in inputs)
    name = "BatchedInferencePipeline" if batched else "WhisperModel.transcribe"
    return row(f"faster-whisper {name} ({device} {ct}, in-process)", "sequential", latencies, audio, wall, 0)


def precision(health_url: str) -> str:
    import httpx

    return str(httpx.get(health_url, timeout=60).json().get("precision", ""))


def machine() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    try:
        import ctranslate2

        info["ctranslate2"] = ctranslate2.__version__
    except ImportError:
        pass
    return info


def to_markdown(rows: list[Row]) -> str:
    head = "| system | concurrency | requests | audio s / s | requests / s | p50 ms | p95 ms | errors |"
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r.system} | {r.concurrency} | {r.requests} | {r.audio_s_per_s} | {r.requests_per_s} | "
            f"{r.p50_ms:.0f} | {r.p95_ms:.0f} | {r.errors} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from whisper_tune.serve.cli import INLINE_MODEL_FLAGS

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny.en")
    ap.add_argument("--backends", default="hf,ct2")
    ap.add_argument("--concurrency", default="1,8,32")
    ap.add_argument(
        "--requests", type=int, default=32, help="requests per concurrency level (at least the level)"
    )
    ap.add_argument("--max-batch-size", type=int, default=8)
    ap.add_argument("--batch-wait-ms", type=float, default=10.0)
    ap.add_argument(
        "--inline-model", choices=tuple(INLINE_MODEL_FLAGS), default="auto", help="ServeOptions.inline_model"
    )
    ap.add_argument("--baseline-batch-sizes", default="1,8")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument(
        "--faster-whisper",
        action="store_true",
        help="also time faster-whisper in-process (WhisperModel and BatchedInferencePipeline) on the clips",
    )
    ap.add_argument("--voices", default="en-us,en-gb,en-us+f3,en-gb-scotland")
    ap.add_argument("--clips-dir", type=Path, default=None, help="read the clips from WAVs here instead")
    ap.add_argument("--save-clips", type=Path, default=None, help="write the clips as WAVs here and stop")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda (both backends and the baseline)")
    ap.add_argument(
        "--dtype", default="auto", help="HF backend and baseline: auto | float16 | bfloat16 | ..."
    )
    ap.add_argument(
        "--compute-type", default="auto", help="CT2: auto (int8 CPU, float16 GPU) | int8_float16 | ..."
    )
    ap.add_argument("--out", default="bench_serve.json")
    ap.add_argument(
        "--note", default="", help="free text stored in the JSON (e.g. 'CPU shared with other jobs')"
    )
    args = ap.parse_args(argv)

    import httpx
    import ray
    from ray import serve

    from whisper_tune.inference import BackendOptions
    from whisper_tune.net import free_loopback_port
    from whisper_tune.serve.app import ServeOptions, build_app

    clips = load_clips(args.clips_dir) if args.clips_dir else make_clips(args.voices.split(","))
    if args.save_clips:
        args.save_clips.mkdir(parents=True, exist_ok=True)
        for i, clip in enumerate(clips):
            (args.save_clips / f"clip{i:02d}.wav").write_bytes(wav_bytes(clip))
        print(f"wrote {len(clips)} clips to {args.save_clips}")
        return 0
    mean_clip = sum(len(c) for c in clips) / len(clips) / SR
    levels = [int(c) for c in args.concurrency.split(",") if c]
    rows: list[Row] = []
    device = args.device if args.device != "auto" else ("cuda" if machine()["cuda"] else "cpu")

    if not args.no_baseline:
        for bs in [int(b) for b in args.baseline_batch_sizes.split(",") if b]:
            rows.append(bench_pipeline(args.model, clips, args.requests, bs, device, args.dtype))
            print(to_markdown(rows[-1:]).splitlines()[-1], flush=True)
    if args.faster_whisper:
        for batched in (False, True):
            rows.append(
                bench_faster_whisper(args.model, clips, args.requests, device, args.compute_type, batched)
            )
            print(to_markdown(rows[-1:]).splitlines()[-1], flush=True)

    kinds: dict[str, str] = {}
    failures: dict[str, str] = {}
    stats: dict[str, Any] = {}
    from whisper_tune.localray import LocalRayOptions, start_local_ray

    start_local_ray(LocalRayOptions(dashboard=False, log_to_driver=False))  # every socket on loopback
    try:
        for attempt in range(3):  # a free port can be taken between the probe and Serve's bind
            port = free_loopback_port()
            try:
                serve.start(http_options={"host": "127.0.0.1", "port": port})
                break
            except Exception as e:
                print(f"serve.start on port {port} failed ({e}); retrying", file=sys.stderr)
                serve.shutdown()
                if attempt == 2:
                    raise
        for backend in [b for b in args.backends.split(",") if b]:
            opts = ServeOptions(
                model=args.model,
                backend=backend,
                max_batch_size=args.max_batch_size,
                batch_wait_s=args.batch_wait_ms / 1000.0,
                inline_model=INLINE_MODEL_FLAGS[args.inline_model],
                max_ongoing_requests=max(64, 2 * max(levels)),
                max_queued_requests=4 * max(levels),
                request_timeout_s=600,
                num_gpus=0.0 if device == "cpu" else None,
                backend_options=BackendOptions(
                    device=device,
                    dtype=args.dtype,
                    compute_type=args.compute_type,
                    batch_size=args.max_batch_size,
                ),
            )
            try:
                serve.run(build_app(opts), name=f"bench-{backend}", route_prefix=f"/{backend}")
            except Exception as e:  # e.g. CTranslate2 without a usable cuBLAS: report, go on
                failures[backend] = f"{type(e).__name__}: {e}"[:2000]
                print(f"serve {backend}: deployment failed: {failures[backend]}", file=sys.stderr, flush=True)
                serve.delete(f"bench-{backend}")
                continue
            url = f"http://127.0.0.1:{port}/{backend}/v1/audio/transcriptions"
            bench_endpoint(url, clips, 1, 2, "warm-up")
            kinds[backend] = precision(f"http://127.0.0.1:{port}/{backend}/healthz")
            for c in levels:
                n = max(args.requests, c)
                label = f"serve {backend} ({device} {kinds.get(backend, '')})".replace(" )", ")")
                rows.append(bench_endpoint(url, clips, c, n, label))
                print(to_markdown(rows[-1:]).splitlines()[-1], flush=True)
            stats[backend] = httpx.get(
                f"http://127.0.0.1:{port}/{backend}/healthz?stats=1", timeout=60
            ).json()
            serve.delete(f"bench-{backend}")
    finally:
        serve.shutdown()
        ray.shutdown()

    result = {
        "model": args.model,
        "machine": machine(),
        "mean_clip_s": round(mean_clip, 2),
        "max_batch_size": args.max_batch_size,
        "note": args.note,
        "rows": [asdict(r) for r in rows],
        "failed_backends": failures,
        "replica_stats": stats,  # cumulative over all levels: features vs model time in the replica
        "batch_wait_ms": args.batch_wait_ms,
        "inline_model": args.inline_model,
    }
    Path(args.out).write_text(json.dumps(result, indent=2))
    print()
    print(
        f"model {args.model}, {len(clips)} espeak-ng clips (mean {mean_clip:.1f} s), device {device}, {machine()}"
    )
    print(to_markdown(rows))
    for backend, why in failures.items():
        print(f"\nbackend {backend} did not start: {why}")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
