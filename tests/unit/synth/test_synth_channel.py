"""Channel effects measured on the signal: phone band-limit, mu-law, SNR, noise colours, trimming."""

from __future__ import annotations

import numpy as np
import pytest

from whisper_tune.data.synth import channel as ch

SR = 16000


def _band_energy(x: np.ndarray, lo: float, hi: float, sr: int = SR) -> float:
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / sr)
    return float(spec[(f >= lo) & (f < hi)].sum())


def test_telephone_band_limits_white_noise() -> None:
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal(SR * 2)).astype(np.float32)
    y = ch.telephone(x)
    assert y.dtype == np.float32 and len(y) == len(x)
    total = _band_energy(y, 0, SR / 2)
    above_4k = _band_energy(y, 4000, SR / 2)
    below_200 = _band_energy(y, 0, 200)
    in_band = _band_energy(y, 400, 3300)
    assert above_4k / total < 1e-3  # < -30 dB above the 8 kHz Nyquist
    assert below_200 / total < 1e-2
    assert in_band / total > 0.9
    # the input had ~half its energy above 4 kHz: the channel really removed it
    assert _band_energy(x, 4000, SR / 2) / _band_energy(x, 0, SR / 2) > 0.4


def test_mulaw_round_trip() -> None:
    x = np.linspace(-1, 1, 10001, dtype=np.float32)
    codes = ch.mulaw_encode(x)
    assert codes.dtype == np.uint8 and codes.min() == 0 and codes.max() == 255
    y = ch.mulaw_decode(codes)
    # companding: small error for quiet samples, larger (but bounded) for loud ones
    quiet = np.abs(x) < 0.01
    assert np.max(np.abs(y[quiet] - x[quiet])) < 3e-4
    assert np.all(np.abs(y - x) <= 0.03 * np.abs(x) + 3e-4)  # relative error of 8-bit companding
    assert 250 <= len(np.unique(y)) <= 256  # 8-bit: 10,001 inputs collapse onto <= 256 levels


@pytest.mark.parametrize("kind", ch.NOISE_TYPES)
@pytest.mark.parametrize("snr", [0.0, 7.5, 20.0])
def test_mix_at_snr_is_measured_snr(kind: str, snr: float) -> None:
    rng = np.random.default_rng(1)
    t = np.arange(SR * 2) / SR
    speech = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    sources = [rng.standard_normal(5000).astype(np.float32) for _ in range(3)]
    noise = ch.make_noise(kind, len(speech), rng, sources)
    assert noise.shape == speech.shape
    assert abs(float(np.sqrt(np.mean(noise.astype(np.float64) ** 2))) - 1.0) < 1e-3
    noisy = ch.mix_at_snr(speech, noise, snr)
    assert abs(ch.measured_snr_db(speech, noisy) - snr) < 0.05


def _spectral_slope(x: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / SR)
    m = (f > 50) & (f < 4000)
    return float(np.polyfit(np.log10(f[m]), np.log10(spec[m] + 1e-20), 1)[0])


def test_noise_colours() -> None:
    rng = np.random.default_rng(2)
    n = SR * 4
    assert abs(_spectral_slope(ch.make_noise("white", n, rng))) < 0.2
    assert abs(_spectral_slope(ch.make_noise("pink", n, rng)) + 1.0) < 0.2
    assert abs(_spectral_slope(ch.make_noise("brown", n, rng)) + 2.0) < 0.2
    hum = ch.make_noise("hum", n, rng)
    spec = np.abs(np.fft.rfft(hum)) ** 2
    f = np.fft.rfftfreq(n, 1 / SR)
    peak_f = f[np.argmax(spec)]
    assert peak_f in (50.0, 60.0)
    with pytest.raises(ValueError, match="babble needs"):
        ch.make_noise("babble", n, rng, [])
    with pytest.raises(ValueError, match="unknown noise"):
        ch.make_noise("traffic", n, rng)


def test_noise_is_reproducible_from_seed() -> None:
    a = ch.make_noise("pink", 1000, np.random.default_rng([3, 7]))
    b = ch.make_noise("pink", 1000, np.random.default_rng([3, 7]))
    c = ch.make_noise("pink", 1000, np.random.default_rng([3, 8]))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_trim_and_pad_and_levels() -> None:
    tone = 0.5 * np.sin(2 * np.pi * 300 * np.arange(SR) / SR)
    x = np.concatenate([np.zeros(SR), tone, np.zeros(2 * SR)]).astype(np.float32)
    y = ch.trim_and_pad(x, lead_s=0.15, trail_s=0.2)
    active = np.nonzero(np.abs(y) > 1e-3)[0]
    assert abs(active[0] / SR - 0.15) <= 0.03
    assert abs((len(y) - active[-1]) / SR - 0.2) <= 0.04
    assert abs(len(y) / SR - 1.35) < 0.06
    z = ch.set_peak_dbfs(y, -6.0)
    assert abs(20 * np.log10(np.max(np.abs(z))) + 6.0) < 1e-3
    assert np.array_equal(ch.set_peak_dbfs(np.zeros(10, np.float32), -3), np.zeros(10))
    pcm = ch.to_pcm16(np.array([2.0, -2.0, 0.5], dtype=np.float32))
    assert pcm.dtype == np.int16 and pcm[0] == 32767 and pcm[1] == -32767
    assert len(ch.trim_and_pad(np.zeros(0, np.float32))) == 0


def test_mix_length_mismatch() -> None:
    with pytest.raises(ValueError, match="length"):
        ch.mix_at_snr(np.ones(10, np.float32), np.ones(9, np.float32), 10)
