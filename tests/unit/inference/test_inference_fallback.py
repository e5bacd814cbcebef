"""OpenAI's temperature fallback and no-speech rule on the shared decode loop, the statistics
helpers, word sharing over segments, hotwords in the prompt and Silero VAD windows.

A scripted backend (``Backend`` with a ``_generate`` that answers from a table) runs the real
loop, so a test sees which windows were decoded again at which temperature."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from whisper_tune.inference import BackendOptions, DecodeOptions, FeatureBank, InvalidOptionError
from whisper_tune.inference.backend import Backend
from whisper_tune.inference.fallback import Decoded, compression_ratio, is_silent, needs_fallback, pick
from whisper_tune.inference.options import TEMPERATURE_LADDER, temperature_ladder
from whisper_tune.inference.segments import assign_words

SR = 16000


@pytest.fixture(scope="module")
def proc() -> Any:
    from whisper_tune.models.random_init import make_processor

    return make_processor()


class Scripted(Backend):
    """A window of ``s`` seconds answers ``script[nearest s](temperature)``; records the calls."""

    kind = "scripted"

    def __init__(self, proc: Any, script: dict[float, Any]) -> None:
        super().__init__(proc.tokenizer, proc.feature_extractor, "scripted", BackendOptions(batch_size=8))
        self.script = script
        self.calls: list[tuple[int, float]] = []
        self.hello = proc.tokenizer(" hello", add_special_tokens=False).input_ids

    def _model_is_multilingual(self) -> bool:
        return False

    def _generate(
        self,
        features: Any,
        language: Any,
        prompt_ids: Any,
        options: Any,
        max_new: int,
        temperature: float = 0.0,
    ) -> list[Decoded]:
        self.calls.append((int(features.shape[0]), temperature))
        out = []
        for f in features:
            seconds = float(np.mean(f.max(axis=0) > f.min() + 1e-3)) * 30.0  # frames above the padding
            avg, ns = self.script[min(self.script, key=lambda k: abs(k - seconds))](temperature)
            out.append(Decoded(list(self.hello), avg, ns))
        return out


def tone(amp: float, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * 300 * t)).astype(np.float32)


def test_statistics_and_rule() -> None:
    assert compression_ratio("") == 0.0
    assert compression_ratio("hello " * 40) > 2.4 > compression_ratio("Please enter your agent number.")
    opts = DecodeOptions(temperatures=TEMPERATURE_LADDER)
    assert needs_fallback(Decoded([1], avg_logprob=-1.5), opts)
    assert needs_fallback(Decoded([1], avg_logprob=-0.1, compression_ratio=3.0), opts)
    assert not needs_fallback(Decoded([1], avg_logprob=-0.1, compression_ratio=1.2), opts)
    silent = Decoded([1], avg_logprob=-1.5, no_speech_prob=0.9)
    assert is_silent(silent, opts) and not needs_fallback(silent, opts)  # silence is not retried
    tried = [
        Decoded([1], -2.0, temperature=0.0, compression_ratio=1.0),
        Decoded([2], -1.2, temperature=0.2, compression_ratio=3.0),
    ]
    best = pick(tried, opts)
    assert best.tokens == [1] and best.temperature == 0.2  # the passing ratio wins; last temperature reported


def test_temperature_ladder_follows_openai() -> None:
    assert temperature_ladder(0.0) == (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    assert temperature_ladder(0.7) == (0.7,)
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(InvalidOptionError):
            temperature_ladder(bad)
    with pytest.raises(InvalidOptionError):
        DecodeOptions(temperatures=())


def test_only_failing_windows_fall_back(proc: Any) -> None:
    # the 3 s window is unsure at 0 and 0.2 and fine from 0.4; the 1 s one is fine at once
    script = {
        1.0: lambda t: (-0.2, 0.01),
        3.0: lambda t: (-0.2 if t >= 0.4 else -1.8, 0.01),
    }
    b = Scripted(proc, script)
    bank = FeatureBank([tone(0.1, 1.0), tone(0.1, 3.0)], cache=False)
    out = b.transcribe_bank(bank, DecodeOptions(temperatures=TEMPERATURE_LADDER, timestamps=False))
    temps = sorted(t.segments[0].temperature for t in out)
    assert temps == [0.0, 0.4]
    assert b.calls == [(2, 0.0), (1, 0.2), (1, 0.4)]  # one batch, then the one failing window alone
    assert {round(t.segments[0].avg_logprob, 2) for t in out} == {-0.2}
    b.calls.clear()
    b.transcribe_bank(bank, DecodeOptions())  # evaluation's default: greedy, never falls back
    assert b.calls == [(2, 0.0)]


def test_silent_windows_are_dropped_only_when_asked(proc: Any) -> None:
    b = Scripted(proc, {1.0: lambda t: (-1.5, 0.95)})
    bank = FeatureBank([tone(0.1)], cache=False)
    kept = b.transcribe_bank(bank, DecodeOptions())
    assert kept[0].text.strip() == "hello" and kept[0].segments[0].no_speech_prob == 0.95
    dropped = b.transcribe_bank(bank, DecodeOptions(skip_silence=True, temperatures=TEMPERATURE_LADDER))
    assert dropped[0].text == "" and dropped[0].segments == []
    assert b.calls[-1][1] == 0.0 and len(b.calls) == 2  # silence: no fallback decode either


def test_hotwords_lead_the_prompt(proc: Any) -> None:
    b = Scripted(proc, {1.0: lambda t: (-0.1, 0.0)})
    ids = b._prompt_ids("Zelle transfer", "APR")
    enc = proc.tokenizer.encode
    assert ids == [
        b.startofprev,
        *enc(" APR", add_special_tokens=False),
        *enc(" Zelle transfer", add_special_tokens=False),
    ]
    assert b._prompt_ids(None, None) == [] and b._prompt_ids(" ", "") == []


def test_words_are_shared_out_by_token_count() -> None:
    words = [
        {"word": " Hello", "tokens": [1], "start": 0.0, "end": 0.3},
        {"word": " there", "tokens": [2, 3], "start": 0.3, "end": 0.6},
        {"word": "", "tokens": [], "start": 0.6, "end": 0.6},  # punctuation merged away
        {"word": " Bye.", "tokens": [4, 5], "start": 1.0, "end": 1.4},
    ]
    shared = assign_words([[1, 2, 3], [4, 5]], words)
    assert [[w["word"] for w in seg] for seg in shared] == [[" Hello", " there"], [" Bye."]]


def test_vad_windows_skip_silence() -> None:
    from whisper_tune.inference.vad import speech_windows

    silence = np.zeros(SR * 20, dtype=np.float32)
    assert speech_windows(silence, 30.0) == []
    rng = np.random.default_rng(0)
    t = np.arange(SR * 2) / SR
    # a voiced, amplitude-modulated 150 Hz buzz with harmonics: close enough to speech for Silero
    buzz = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 12)) * (
        0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)
    )
    voiced = (0.3 * buzz + 0.01 * rng.standard_normal(t.size)).astype(np.float32)
    audio = np.concatenate([silence, voiced, silence])
    windows = speech_windows(audio, 30.0)
    assert windows
    for start, w in windows:
        assert start >= 15.0 and start + len(w) / SR <= 25.0  # nothing from the long silences
    two = speech_windows(np.concatenate([silence, voiced, silence[: SR * 10], voiced]), 30.0)
    assert len(two) == 2 and two[1][0] > 30.0  # a 10 s pause splits, though both fit 30 s


def test_translate_reaches_generate_and_the_transcript(proc: Any) -> None:
    """``task`` end to end on a multilingual (stand-in) model: generate gets it, the result says it."""
    from test_inference_transcribe import FakeWhisper

    from whisper_tune.inference import HFBackend

    model = FakeWhisper(proc.tokenizer, multilingual=True)
    b = HFBackend(model, proc, "multi", BackendOptions(batch_size=2))
    t = tone(0.1, 1.0)
    out = b.transcribe_batch([t], "de", None, False, None, task="translate", temperatures=(0.5,))
    assert model.kwargs[-1]["task"] == "translate" and model.kwargs[-1]["language"] == "de"
    assert model.kwargs[-1]["do_sample"] is True and model.kwargs[-1]["temperature"] == 0.5
    assert out[0].task == "translate" and out[0].language == "german"
    assert len(model.kwargs) == DecodeOptions().best_of  # sampling: best_of draws, the likeliest kept
