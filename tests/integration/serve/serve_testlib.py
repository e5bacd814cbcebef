"""Helpers shared by the serve integration tests (imported by name: test dirs are not packages)."""

from __future__ import annotations

import io
import shutil
import subprocess
from dataclasses import dataclass

import numpy as np
import pytest
import soundfile as sf

SR = 16000
API_KEY = "test-key-0123456789"


@dataclass
class ServeEnv:
    base: str  # http://127.0.0.1:PORT

    def url(self, app: str, path: str = "") -> str:
        return f"{self.base}/{app}{path}"


def speech(text: str, voice: str = "en-us") -> np.ndarray:
    """16 kHz mono float32 speech from espeak-ng (offline)."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    wav = subprocess.run(["espeak-ng", "-v", voice, "--stdout", text], check=True, capture_output=True).stdout
    from whisper_tune.serve.audio import decode_audio_bytes

    return decode_audio_bytes(wav)


def wav_bytes(x: np.ndarray, sr: int = SR) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()
