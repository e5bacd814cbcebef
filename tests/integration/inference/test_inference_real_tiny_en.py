"""Real tiny.en on espeak-ng speech: evaluate and the server's backend give identical transcripts,
for the Transformers backend and for the CTranslate2 export the server runs.

The unit test (tests/unit/inference/test_evaluate_matches_serve.py) does the same on a random
toy model; here the model really stops on its own, so the default token caps, the silence
splitter on real pauses (one call over 30 s) and the int8 CTranslate2 artifact are covered.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

pytestmark = pytest.mark.integration

SR = 16000
SENTENCES = [
    "Please freeze my debit card, it was stolen yesterday.",
    "What is the interest rate on my savings account?",
    "I would like to dispute a charge on my credit card statement.",
]


def _norm(text: str) -> str:
    return re.sub(r"[^a-z ]", "", text.lower())


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, str]]:
    """Three espeak-ng sentences (22.05 kHz WAV, so decoding resamples) and a 40 s call of them."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    d = tmp_path_factory.mktemp("speech")
    files = []
    for i, text in enumerate(SENTENCES):
        p = d / f"s{i}.wav"
        voice = "en-gb" if i == 1 else "en-us"
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(p), text], check=True, timeout=60)
        files.append(p)
    from whisper_tune.data.audio import load_audio

    pause = np.zeros(int(1.5 * SR), dtype=np.float32)
    parts: list[np.ndarray] = []
    said: list[str] = []
    while sum(len(x) for x in parts) < 40 * SR:
        for f, text in zip(files, SENTENCES, strict=True):
            parts += [load_audio(f), pause]
            said.append(text)
    call = d / "call.wav"
    sf.write(str(call), np.concatenate(parts), SR, subtype="PCM_16")
    return [*zip(files, SENTENCES, strict=True), (call, " ".join(said))]


@pytest.mark.parametrize("kind", ["hf", "ct2"])
def test_real_tiny_en_evaluate_matches_serve(
    kind: str, clips: list[tuple[Path, str]], tmp_path: Path
) -> None:
    from whisper_tune.data.manifest import Sample
    from whisper_tune.evaluate import evaluate
    from whisper_tune.models import ensure_hf_dir
    from whisper_tune.serve.app import ServeOptions, load_serve_backend
    from whisper_tune.serve.audio import decode_audio_bytes

    spec = ensure_hf_dir("tiny.en")  # the bundled weights, converted once and cached
    samples = [Sample(id=f.stem, audio=str(f), text=t) for f, t in clips]
    result = evaluate(spec, samples, tmp_path / "eval", device="cpu", backend=kind)
    evaluated = [u.hyp for u in result.utterances]

    backend: Any = load_serve_backend(ServeOptions(model=spec, backend=kind))  # serve's defaults
    assert backend.device == "cpu" and backend.precision == ("float32" if kind == "hf" else "int8")
    audios = [decode_audio_bytes(f.read_bytes(), name=f.name) for f, _ in clips]
    deadline = time.monotonic() + 600
    together = [t.text for t in backend.transcribe_batch(audios, None, None, False, deadline)]
    alone = [backend.transcribe_batch([a], None, None, False, deadline)[0].text for a in audios]

    assert together == evaluated
    assert alone == evaluated
    for sentence, hyp in zip(SENTENCES, evaluated, strict=False):
        words = set(_norm(sentence).split())
        assert len(words & set(_norm(hyp).split())) >= len(words) // 2, (sentence, hyp)
    assert _norm(evaluated[-1]).count("card") >= 2  # the 40 s call: both windows transcribed
    assert result.wer < 0.5, result.wer
