"""Helpers for the training tests: synthetic clips + manifest, and a small job config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

TEXTS = [
    "freeze my card please",
    "what is my balance",
    "send money with zelle",
    "what is the apr on this card",
    "i lost my debit card",
    "transfer fifty dollars to savings",
]


def write_corpus(root: Path, n: int, name: str, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    audio_dir = root / "audio" / name
    audio_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        sr = 16000
        dur = 0.5 + 0.25 * (i % 3)
        t = np.arange(int(sr * dur)) / sr
        wav = 0.3 * np.sin(2 * np.pi * (200 + 40 * i) * t) + 0.02 * rng.standard_normal(t.size)
        path = audio_dir / f"{name}_{i}.wav"
        sf.write(path, wav.astype(np.float32), sr)
        lines.append({"audio_filepath": str(path), "text": TEXTS[i % len(TEXTS)], "duration": dur})
    manifest = root / f"{name}.jsonl"
    manifest.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return manifest


def job_dict(
    model_dir: Path, corpus: dict[str, Path], storage: Path, **sections: dict[str, Any]
) -> dict[str, Any]:
    base: dict[str, Any] = {
        "model": {"name": str(model_dir)},
        # the eval clips stand in for the real-speech guard: the guard path runs, fast
        "data": {"train": str(corpus["train"]), "eval": str(corpus["eval"]), "guard": str(corpus["eval"])},
        "train": {
            "learning_rate": 1e-3,
            "per_device_batch_size": 2,
            "max_steps": 4,
            "eval_steps": 2,
            "save_steps": 2,
            "logging_steps": 1,
            "generation_max_length": 8,
        },
        "scaling": {"num_workers": 1, "use_gpu": False},
        "run": {"storage_path": str(storage), "name": "t", "num_to_keep": 2},
    }
    for key, value in sections.items():
        base[key] = {**base.get(key, {}), **value}
    return base
