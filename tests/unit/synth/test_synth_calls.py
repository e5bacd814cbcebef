"""Synthetic calls without TTS: the script, turn placement, channels, SRT and manifests.

A fake engine speaks each line as a tone whose length grows with the text, so the layout
(no overlap, agent left / customer right, lengths, files) is checked in milliseconds; the
real voices are exercised in tests/integration/synth/test_synth_calls_tts.py.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from whisper_tune.data.synth import calls, corpus
from whisper_tune.data.synth.calls import CallsConfig, render_call, srt_time, synthesize_calls
from whisper_tune.data.synth.dialogue import AGENT, CUSTOMER, luhn_complete, script
from whisper_tune.data.synth.tts import SR, Speaker
from whisper_tune.errors import UserError
from whisper_tune.scoring.redact import redact_text


class _Tone:
    """A deterministic stand-in for a TTS engine: 60 ms of tone per word."""

    def synthesize(self, text: str, speaker: Speaker) -> np.ndarray:
        n = int(0.06 * SR * max(1, len(text.split())))
        f = 200.0 if speaker.engine == "piper" else 300.0
        return (0.5 * np.sin(2 * np.pi * f * np.arange(n) / SR)).astype(np.float32)


@pytest.fixture
def fake_engines(monkeypatch: pytest.MonkeyPatch) -> dict[str, bool]:
    engines = {"piper": False, "espeak": True}
    monkeypatch.setattr(corpus, "_ENGINES", {"espeak": _Tone()})
    monkeypatch.setattr(calls, "available_engines", lambda: (engines, {}))
    monkeypatch.setattr(calls, "espeak_voices", lambda: ["en-us", "en-gb"])
    monkeypatch.setattr(calls, "espeak_variants", lambda: ["m1", "f2"])
    monkeypatch.setattr(calls, "_init", lambda engines: None)
    return engines


def _lines(seed: int, close_after: int) -> list:
    gen = script(random.Random(seed))
    out = []
    line, can_close = next(gen)
    closable = 0
    while True:
        out.append(line)
        closable += can_close
        try:
            line, can_close = gen.send(can_close and closable >= close_after)
        except StopIteration:
            return out


def test_script_is_seeded_alternates_and_closes_on_request() -> None:
    a, b = _lines(3, 3), _lines(3, 3)
    assert [x.text for x in a] == [x.text for x in b]
    assert [x.text for x in _lines(4, 3)] != [x.text for x in a]
    assert a[0].speaker == AGENT and a[0].kind == "greeting"
    assert a[-1].kind == "closing" and a[-2].speaker == CUSTOMER
    assert all(x.speaker != y.speaker for x, y in zip(a, a[1:], strict=False))  # turns alternate
    assert len(_lines(3, 6)) == len(a) + 6  # each of 3 extra exchange: a request and a response
    assert all(x.text and x.spoken and "{" not in x.spoken for x in a)


def test_verification_answers_carry_pii_that_redaction_masks() -> None:
    answers = [x for s in range(40) for x in _lines(s, 1) if x.kind == "answer"]
    texts = " ".join(x.text for x in answers)
    assert "@" in texts and "-" in texts  # e-mail addresses and phone numbers occur
    for x in answers:
        if "@" in x.text:
            assert "[EMAIL]" in redact_text(x.text) and "@" not in redact_text(x.text)
            assert " dot " in x.spoken and " at " in x.spoken


def test_luhn_complete() -> None:
    assert luhn_complete("411111111111111") == "4111111111111111"
    assert luhn_complete("453201511283036") == "4532015112830366"


def test_srt_time() -> None:
    assert srt_time(0) == "00:00:00,000"
    assert srt_time(3725.0456) == "01:02:05,046"


def test_config_errors_name_the_option() -> None:
    with pytest.raises(UserError, match="--calls"):
        CallsConfig(out="x", calls=0)
    with pytest.raises(UserError, match="--call-minutes"):
        CallsConfig(out="x", minutes=(3.0, 1.0))
    with pytest.raises(UserError, match="--call-sample-rate"):
        CallsConfig(out="x", sample_rate=44100)


def test_render_call_places_turns_on_their_channel_without_overlap(fake_engines: dict[str, bool]) -> None:
    cfg = CallsConfig(out="unused", minutes=(0.5, 0.5), seed=1)
    stereo, turns = render_call(0, cfg, fake_engines)
    assert stereo.ndim == 2 and stereo.shape[1] == 2
    duration = len(stereo) / SR
    assert 25.0 <= duration <= 60.0  # target 30 s, the closing exchange after it
    for a, b in zip(turns, turns[1:], strict=False):
        assert b.start >= a.end + cfg.pause_s[0] - 1e-6  # overlap-free, a pause between turns
    for tr in turns:
        mid = int((tr.start + tr.end) / 2 * SR)
        here = np.abs(stereo[mid - 400 : mid + 400]).mean(axis=0)
        assert here[tr.channel] > 20 * here[1 - tr.channel]  # speech only on the speaker's channel
        assert tr.channel == (0 if tr.speaker == AGENT else 1)
    stereo2, turns2 = render_call(0, cfg, fake_engines)
    assert np.array_equal(stereo, stereo2) and turns == turns2


def test_synthesize_calls_writes_audio_srt_and_manifests(
    fake_engines: dict[str, bool], tmp_path: Path
) -> None:
    out = tmp_path / "calls"
    info = synthesize_calls(CallsConfig(out=str(out), calls=2, minutes=(0.5, 0.6), workers=1))
    assert len(info.calls) == 2 and not info.failed
    segs = [json.loads(x) for x in (out / "segments.jsonl").read_text().splitlines()]
    longform = [json.loads(x) for x in (out / "longform.jsonl").read_text().splitlines()]
    assert len(longform) == 2
    sides = [json.loads(x) for x in (out / "longform_channels.jsonl").read_text().splitlines()]
    assert [(r["call_id"], r["channel"], r["speaker"]) for r in sides] == [
        (c, k, who) for c in ("call_000000", "call_000001") for k, who in ((0, "agent"), (1, "customer"))
    ]
    for r in sides:  # one side of the stereo file, that speaker's turns in order
        mine = [x for x in segs if x["call_id"] == r["call_id"] and x["channel"] == r["channel"]]
        assert r["audio_filepath"] == mine[0]["audio_filepath"] and r["text"] == " ".join(
            x["text"] for x in mine
        )
        assert [(x["start"], x["end"]) for x in r["segments"]] == [(x["start"], x["end"]) for x in mine]
    for call in longform:  # the stereo call (decoded as its mix); the mono mix file beside it
        assert call["audio_filepath"] == f"audio/{call['call_id']}.wav"
        mix, sr = sf.read(out / f"audio/{call['call_id']}.mix.wav")
        assert sr == 8000 and mix.ndim == 1
        assert call["duration"] == pytest.approx(len(mix) / sr, abs=1e-3)
        mine = [s for s in segs if s["call_id"] == call["call_id"]]
        assert call["text"] == " ".join(s["text"] for s in mine)
        assert [(s["start"], s["end"]) for s in mine] == [(s["start"], s["end"]) for s in call["segments"]]
        stereo, sr2 = sf.read(out / mine[0]["audio_filepath"])
        assert sr2 == 8000 and stereo.shape[1] == 2
        assert all(0 <= s["start"] < s["end"] <= call["duration"] for s in mine)
        assert {s["channel"] for s in mine if s["speaker"] == "agent"} == {0}
        assert {s["channel"] for s in mine if s["speaker"] == "customer"} == {1}
        srt = (out / "srt" / f"{call['call_id']}.srt").read_text()
        cues = srt.strip().split("\n\n")
        assert len(cues) == len(mine)
        first = cues[0].splitlines()
        assert first[0] == "1" and first[1] == f"{srt_time(mine[0]['start'])} --> {srt_time(mine[0]['end'])}"
        assert first[2] == f"Agent: {mine[0]['text']}"
    assert json.loads((out / "calls.json").read_text())["calls"][0]["turns"] > 4
    with pytest.raises(UserError, match="--overwrite"):
        synthesize_calls(CallsConfig(out=str(out), calls=1))
