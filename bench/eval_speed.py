"""Evaluation transcription speed: clips/s of a model on this machine (default tiny.en, CPU, batch 8).

Why: ``compare`` transcribes the test split twice (base and tuned); its cost decides how
big a test split the demo can afford. Every clip is padded to 30 s (3000 frames), so the
encoder cost per clip does not depend on the clip's length. Wall time alone is misleading
on a shared machine, so this also reports process CPU seconds and the load average:
``cpu_s / torch threads`` is roughly the wall time with the cores to itself.

    PYTHONPATH=src python bench/eval_speed.py --n 32 --batch-size 8 [--model tiny.en] [--json out.json]

Clips are espeak-ng sentences (banking), synthesized into a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SENTENCES = [
    "I would like to send money with Zelle.",
    "What is the APR on my credit card?",
    "Please freeze my debit card, it was stolen.",
    "Can you tell me my checking account balance?",
    "I want to dispute a charge of forty five dollars.",
    "How do I set up direct deposit for my paycheck?",
    "My overdraft fee was refunded last week.",
    "Transfer two hundred dollars from savings to checking.",
]


def _cpu_s() -> float:
    s = resource.getrusage(resource.RUSAGE_SELF)
    return s.ru_utime + s.ru_stime


def run(model_spec: str, n: int, batch_size: int, device: str) -> dict[str, Any]:
    import numpy as np
    import torch

    from whisper_tune.data import load_audio
    from whisper_tune.evaluate import FeatureBank, transcribe_bank
    from whisper_tune.inference import resolve_device
    from whisper_tune.models import load_model

    tmp = Path(tempfile.mkdtemp(prefix="wt-eval-bench-"))
    clips = []
    for i in range(min(n, len(SENTENCES))):
        subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(tmp / f"{i}.wav"), SENTENCES[i]], check=True)
        clips.append(load_audio(tmp / f"{i}.wav"))
    audios = [clips[i % len(clips)] for i in range(n)]
    dev = resolve_device(device)
    model, proc = load_model(model_spec, dtype="auto", device=dev)
    bank = FeatureBank(audios)
    load0 = os.getloadavg()
    c0, t0 = _cpu_s(), time.perf_counter()
    bank.features(proc)
    t_feat = time.perf_counter() - t0
    x = torch.from_numpy(np.stack(bank.features(proc)[:batch_size])).to(dev, next(model.parameters()).dtype)
    t1 = time.perf_counter()
    with torch.inference_mode():
        model.model.encoder(x)
    t_enc = time.perf_counter() - t1
    c2, t2 = _cpu_s(), time.perf_counter()
    hyps = transcribe_bank(model, proc, bank, batch_size=batch_size)
    t_tr = time.perf_counter() - t2
    cpu_tr = _cpu_s() - c2
    cpu = _cpu_s() - c0
    audio_s = sum(len(a) for a in audios) / 16000
    return {
        "model": model_spec,
        "device": dev,
        "dtype": str(next(model.parameters()).dtype),
        "clips": n,
        "batch_size": batch_size,
        "audio_s": round(audio_s, 1),
        "features_s": round(t_feat, 2),
        "encoder_one_batch_s": round(t_enc, 2),
        "transcribe_s": round(t_tr, 2),
        "clips_per_s": round(n / t_tr, 3),
        "rtfx": round(audio_s / t_tr, 2),
        "cpu_s": round(cpu, 1),
        "transcribe_cpu_s": round(cpu_tr, 1),
        # with the cores to itself, wall ~ CPU seconds / threads (torch's intra-op threads)
        "clips_per_s_uncontended_estimate": round(n / (cpu_tr / torch.get_num_threads()), 3),
        "torch_threads": torch.get_num_threads(),
        "loadavg_before": load0,
        "loadavg_after": os.getloadavg(),
        "sample": hyps[:2],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="tiny.en")
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    res = run(a.model, a.n, a.batch_size, a.device)
    print(json.dumps(res, indent=2))
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
