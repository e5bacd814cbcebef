"""The energy gate (``DecodeOptions.gate``) and the prompt cap, on the shared decode loop.

A fake model answers "hello" for every window it is given and records what it was given, so
a test sees which windows reached the model; the real decode loop (``HFBackend``) runs around it.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch

from whisper_tune.inference import (
    PROMPT_MAX_TOKENS,
    BackendOptions,
    DecodeOptions,
    FeatureBank,
    HFBackend,
    InvalidOptionError,
    SpeechGate,
)

SR = 16000


@pytest.fixture(scope="module")
def proc() -> Any:
    from whisper_tune.models.random_init import make_processor

    return make_processor()


class HelloWhisper(torch.nn.Module):
    """generate() -> "hello" for every row; records batch sizes and prompts."""

    def __init__(self, tokenizer: Any) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.tok = tokenizer
        self.config = SimpleNamespace(max_target_positions=448, max_source_positions=1500)
        self.generation_config = SimpleNamespace(is_multilingual=False)
        self.rows = 0
        self.prompts: list[list[int]] = []

    def generate(self, input_features: torch.Tensor, max_new_tokens: int, **kwargs: Any) -> torch.Tensor:
        self.rows += int(input_features.shape[0])
        if "prompt_ids" in kwargs:
            self.prompts.append([int(t) for t in kwargs["prompt_ids"].tolist()])
        ids = self.tok(" hello", add_special_tokens=False).input_ids
        return torch.tensor([ids] * int(input_features.shape[0]))


def backend(proc: Any) -> HFBackend:
    return HFBackend(HelloWhisper(proc.tokenizer), proc, "hello", BackendOptions(batch_size=4))


def tone(seconds: float, amp: float = 0.1) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def run(b: HFBackend, audios: list[np.ndarray], gate: SpeechGate | None, **kw: Any) -> list[Any]:
    return b.transcribe_bank(FeatureBank(audios, cache=False), DecodeOptions(gate=gate, **kw))


def test_gate_thresholds() -> None:
    g = SpeechGate()
    assert not g.passes(np.zeros(10 * SR, np.float32))  # digital silence
    assert not g.passes(np.full(SR, 1e-4, np.float32))  # -80 dBFS: dither, a muted line
    assert not g.passes(np.concatenate([np.zeros(SR), tone(0.05), np.zeros(SR)]))  # a 50 ms click
    assert g.passes(np.concatenate([np.zeros(SR), tone(0.2), np.zeros(SR)]))
    assert g.passes(tone(1.0, amp=0.002))  # about -57 dBFS: quiet, but above the floor
    assert g.active_seconds(tone(1.0)) == pytest.approx(1.0)
    assert g.too_short(tone(0.05)) and not g.too_short(tone(0.1))
    assert not g.passes(np.zeros(0, np.float32))
    with pytest.raises(InvalidOptionError, match="floor_dbfs"):
        SpeechGate(floor_dbfs=3.0)
    with pytest.raises(InvalidOptionError, match="min_active_s"):
        SpeechGate(min_active_s=-1.0)


def test_silence_and_crumbs_return_empty_text_without_reaching_the_model(proc: Any) -> None:
    b = backend(proc)
    silence = np.zeros(600 * SR, np.float32)  # ten minutes: 20+ windows, none decoded
    clips = [silence, tone(0.05, amp=0.5), tone(2.0)]
    out = run(b, clips, SpeechGate(), timestamps=True)
    assert [t.text for t in out] == ["", "", "hello"]
    assert [len(t.segments) for t in out[:2]] == [0, 0] and out[2].segments
    assert out[0].duration == pytest.approx(600.0)  # the file's length is still reported
    assert b.model.rows == 1  # only the tone's window was decoded
    assert b.stats["windows"] == 1


def test_only_the_silent_windows_of_a_long_file_are_skipped(proc: Any) -> None:
    b = backend(proc)
    x = np.concatenate([tone(20.0), np.zeros(40 * SR, np.float32), tone(20.0)])
    pieces = FeatureBank([x]).pieces()
    voiced = sum(SpeechGate().passes(p.audio) for p in pieces)
    assert 0 < voiced < len(pieces)  # the file has both kinds of window
    out = run(b, [x], SpeechGate())
    assert b.model.rows == voiced
    assert out[0].text == " ".join(["hello"] * voiced)


def test_without_a_gate_every_clip_is_decoded(proc: Any) -> None:
    """Evaluation's default: no gate, so a silent test utterance still gets the model's hypothesis."""
    b = backend(proc)
    clips = [np.zeros(5 * SR, np.float32), tone(0.05)]
    assert DecodeOptions().gate is None and BackendOptions().decode.gate is None
    assert [t.text for t in run(b, clips, None)] == ["hello", "hello"]
    assert b.model.rows == 2


def test_transcribe_batch_uses_the_backend_gate(proc: Any) -> None:
    """The server's path: the gate comes from ``BackendOptions.decode``, per-request options keep it."""
    opts = BackendOptions(batch_size=4, decode=DecodeOptions(gate=SpeechGate()))
    b = HFBackend(HelloWhisper(proc.tokenizer), proc, "hello", opts)
    out = b.transcribe_batch([np.zeros(SR, np.float32), tone(1.0)], None, "Zelle", False)
    assert [t.text for t in out] == ["", "hello"]
    assert b.model.rows == 1


def test_prompt_is_cut_to_its_last_tokens(proc: Any) -> None:
    """A 20,000-character prompt: the model gets <|startofprev|> + the last 223 tokens (224 in all)."""
    b = backend(proc)
    words = [f"word{i}" for i in range(3000)]
    prompt = " ".join(words)
    assert len(prompt) > 20_000
    run(b, [tone(1.0)], None, prompt=prompt)
    (sent,) = b.model.prompts
    assert len(sent) == PROMPT_MAX_TOKENS + 1 == 224
    assert sent[0] == b.startofprev
    full = proc.tokenizer.encode(" " + prompt, add_special_tokens=False)
    assert sent[1:] == full[-PROMPT_MAX_TOKENS:]  # truncated from the left, as OpenAI documents
    assert proc.tokenizer.decode(sent[1:]).strip().endswith(words[-1])
    short = backend(proc)
    run(short, [tone(1.0)], None, prompt="Zelle, APR")
    assert short.model.prompts[0][1:] == proc.tokenizer.encode(" Zelle, APR", add_special_tokens=False)


def test_warmup_reaches_the_model_even_with_a_gate(proc: Any) -> None:
    """The warm-up decodes half a second of zeros: the gate must not skip it (cold first request)."""
    opts = BackendOptions(batch_size=4, decode=DecodeOptions(gate=SpeechGate()))
    b = HFBackend(HelloWhisper(proc.tokenizer), proc, "hello", opts)
    b.warmup()
    assert b.model.rows == 1 and b.stats["batches"] == 1
    assert b.opts.decode.gate == SpeechGate()  # requests still get the gate
