"""Acoustic channel: telephone band-limit + mu-law, additive noise at a chosen SNR, levels.

Why: bank calls arrive over the phone network (8 kHz sampling, ~300-3400 Hz pass band,
G.711 mu-law 8-bit companding) and often with background noise. Clean TTS alone teaches
a model nothing about that channel. Everything here is plain numpy (+ soxr for
resampling) and driven by an explicit ``numpy.random.Generator`` so a clip's channel is
reproducible from its seed; no noise recordings are downloaded: the noise is synthesised
(pink, brown, mains hum, babble made from other TTS speakers).
"""

from __future__ import annotations

import numpy as np
import soxr

__all__ = [
    "NOISE_TYPES",
    "active_extent",
    "telephone",
    "bandpass",
    "mulaw_encode",
    "mulaw_decode",
    "colored_noise",
    "hum",
    "babble",
    "make_noise",
    "mix_at_snr",
    "measured_snr_db",
    "trim_and_pad",
    "set_peak_dbfs",
    "to_pcm16",
]

NOISE_TYPES: tuple[str, ...] = ("pink", "brown", "white", "hum", "babble")
SR = 16000
PHONE_SR = 8000


def bandpass(x: np.ndarray, sr: int, lo: float, hi: float, rolloff_hz: float = 100.0) -> np.ndarray:
    """Zero-phase FFT band-pass with raised-cosine edges of ``rolloff_hz`` (no scipy needed)."""
    n = len(x)
    if n == 0:
        return x.astype(np.float32)
    nfft = 1 << (n - 1).bit_length()
    spec = np.fft.rfft(x, nfft)
    f = np.fft.rfftfreq(nfft, 1.0 / sr)
    gain = np.ones_like(f)
    gain[f < lo - rolloff_hz] = 0.0
    m = (f >= lo - rolloff_hz) & (f < lo)
    gain[m] = 0.5 - 0.5 * np.cos(np.pi * (f[m] - (lo - rolloff_hz)) / rolloff_hz)
    gain[f > hi + rolloff_hz] = 0.0
    m = (f > hi) & (f <= hi + rolloff_hz)
    gain[m] = 0.5 + 0.5 * np.cos(np.pi * (f[m] - hi) / rolloff_hz)
    return np.fft.irfft(spec * gain, nfft)[:n].astype(np.float32)


def mulaw_encode(x: np.ndarray, mu: int = 255) -> np.ndarray:
    """Float [-1, 1] -> 8-bit mu-law codes 0..255 (the G.711 curve, continuous form)."""
    x = np.clip(x, -1.0, 1.0)
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    return np.round((y + 1.0) / 2.0 * mu).astype(np.uint8)


def mulaw_decode(codes: np.ndarray, mu: int = 255) -> np.ndarray:
    y = codes.astype(np.float32) / mu * 2.0 - 1.0
    return (np.sign(y) * ((1.0 + mu) ** np.abs(y) - 1.0) / mu).astype(np.float32)


def telephone(x: np.ndarray, sr: int = SR, lo: float = 300.0, hi: float = 3400.0) -> np.ndarray:
    """16 kHz -> 8 kHz, band-pass ``lo``-``hi``, mu-law 8-bit round trip, back to 16 kHz.

    The result has (almost) no energy above 4 kHz, as a real narrow-band call.
    """
    if len(x) == 0:
        return x.astype(np.float32)
    narrow = soxr.resample(x.astype(np.float32), sr, PHONE_SR, quality="HQ")
    narrow = bandpass(narrow, PHONE_SR, lo, hi)
    peak = float(np.max(np.abs(narrow))) or 1.0
    scale = 0.9 / peak if peak > 0.9 else 1.0  # keep mu-law from clipping
    narrow = mulaw_decode(mulaw_encode(narrow * scale)) / scale
    return soxr.resample(narrow, PHONE_SR, sr, quality="HQ").astype(np.float32)


def colored_noise(n: int, rng: np.random.Generator, exponent: float) -> np.ndarray:
    """Noise with power spectral density ~ 1/f**exponent (0 white, 1 pink, 2 brown), unit RMS."""
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    white = rng.standard_normal(n)
    spec = np.fft.rfft(white)
    f = np.fft.rfftfreq(n)
    f[0] = f[1] if len(f) > 1 else 1.0
    spec = spec / f ** (exponent / 2.0)
    y = np.fft.irfft(spec, n)
    y = y - y.mean()
    return (y / (np.sqrt(np.mean(y**2)) + 1e-12)).astype(np.float32)


def hum(n: int, rng: np.random.Generator, sr: int = SR) -> np.ndarray:
    """Mains hum (50 or 60 Hz with odd/even harmonics) plus a little hiss, unit RMS."""
    t = np.arange(n) / sr
    base = rng.choice([50.0, 60.0])
    y = np.zeros(n)
    for k, amp in ((1, 1.0), (2, 0.5), (3, 0.35), (5, 0.2), (7, 0.1)):
        y += amp * np.sin(2 * np.pi * base * k * t + rng.uniform(0, 2 * np.pi))
    y += 0.05 * rng.standard_normal(n)
    return (y / (np.sqrt(np.mean(y**2)) + 1e-12)).astype(np.float32)


def babble(n: int, sources: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Crowd-like babble: several other speakers' utterances, looped, offset and summed, unit RMS."""
    if not sources:
        raise ValueError("babble needs at least one source utterance")
    y = np.zeros(n, dtype=np.float64)
    for src in sources:
        src = np.asarray(src, dtype=np.float64)
        if len(src) == 0:
            continue
        reps = int(np.ceil((n + len(src)) / len(src))) + 1
        looped = np.tile(src, reps)
        off = int(rng.integers(0, len(src)))
        seg = looped[off : off + n]
        rms = np.sqrt(np.mean(seg**2)) + 1e-12
        y += seg / rms * rng.uniform(0.6, 1.0)
    return (y / (np.sqrt(np.mean(y**2)) + 1e-12)).astype(np.float32)


def make_noise(
    kind: str, n: int, rng: np.random.Generator, babble_sources: list[np.ndarray] | None = None
) -> np.ndarray:
    """Unit-RMS noise of ``kind`` (one of :data:`NOISE_TYPES`)."""
    if kind == "pink":
        return colored_noise(n, rng, 1.0)
    if kind == "brown":
        return colored_noise(n, rng, 2.0)
    if kind == "white":
        return colored_noise(n, rng, 0.0)
    if kind == "hum":
        return hum(n, rng)
    if kind == "babble":
        return babble(n, babble_sources or [], rng)
    raise ValueError(f"unknown noise type {kind!r}; known: {', '.join(NOISE_TYPES)}")


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """speech + noise scaled so that 10*log10(P_speech / P_noise) == snr_db over the clip."""
    if len(noise) != len(speech):
        raise ValueError(f"noise length {len(noise)} != speech length {len(speech)}")
    ps = float(np.mean(speech.astype(np.float64) ** 2))
    pn = float(np.mean(noise.astype(np.float64) ** 2))
    if ps == 0 or pn == 0:
        return speech.astype(np.float32)
    gain = np.sqrt(ps / (pn * 10 ** (snr_db / 10.0)))
    return (speech + gain * noise).astype(np.float32)


def measured_snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    """SNR of ``noisy`` against the ``clean`` reference it was made from."""
    noise = noisy.astype(np.float64) - clean.astype(np.float64)
    return float(10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean(noise**2)))


def active_extent(x: np.ndarray, sr: int = SR, threshold_db: float = -40.0) -> tuple[int, int]:
    """``(start, end)`` samples of ``x`` from its first to its last 10 ms frame above
    ``threshold_db`` of the loudest frame's RMS (20 ms margin before, 30 ms after); ``(0, 0)``
    for digital silence, the whole clip when it is shorter than a frame."""
    frame = int(0.01 * sr)
    nfr = len(x) // frame
    if nfr == 0:
        return 0, len(x)
    fr = x[: nfr * frame].reshape(nfr, frame)
    rms = np.sqrt(np.mean(fr.astype(np.float64) ** 2, axis=1))
    ref = float(rms.max())
    if ref <= 0:
        return 0, 0
    active = np.nonzero(rms > ref * 10 ** (threshold_db / 20.0))[0]
    return max(0, int(active[0] - 2) * frame), min(len(x), int(active[-1] + 3) * frame)


def trim_and_pad(
    x: np.ndarray,
    sr: int = SR,
    lead_s: float = 0.15,
    trail_s: float = 0.2,
    threshold_db: float = -40.0,
) -> np.ndarray:
    """Cut leading/trailing silence (``active_extent``), then pad ``lead_s``/``trail_s`` of
    silence, so every clip starts and ends the same way."""
    if len(x) == 0:
        return x.astype(np.float32)
    start, end = active_extent(x, sr, threshold_db)
    core = x[start:end]
    lead = np.zeros(int(lead_s * sr), dtype=np.float32)
    trail = np.zeros(int(trail_s * sr), dtype=np.float32)
    return np.concatenate([lead, core.astype(np.float32), trail])


def set_peak_dbfs(x: np.ndarray, peak_dbfs: float) -> np.ndarray:
    """Scale so the absolute peak sits at ``peak_dbfs`` (e.g. -3.0); silence stays silence."""
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    if peak == 0:
        return x.astype(np.float32)
    return (x * (10 ** (peak_dbfs / 20.0) / peak)).astype(np.float32)


def to_pcm16(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, -1.0, 1.0) * 32767.0).round().astype(np.int16)
