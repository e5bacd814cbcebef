"""Long recordings through ``prepare_dataset``: bad transcripts, channels, 8 kHz, a 3-hour file streamed."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from test_data_subtitles import srt_text
from wt_data_testutil import speechlike

from whisper_tune.data import WhisperCollator
from whisper_tune.data.longform import LongFormOptions
from whisper_tune.data.prepare import check_data, prepare_dataset

WriteWav = Callable[..., Path]


def _call(tmp: Path, write_wav: WriteWav, srt: str, seconds: float = 70.0, channels: int = 1) -> Path:
    write_wav(tmp / "call.wav", seconds=seconds, sr=8000, channels=channels)
    (tmp / "call.srt").write_text(srt)
    m = tmp / "train.jsonl"
    m.write_text(json.dumps({"audio_filepath": "call.wav", "srt": "call.srt"}) + "\n")
    return m


def _turns(
    n: int, start: float = 0.5, length: float = 4.0, gap: float = 1.0
) -> list[tuple[float, float, str]]:
    return [
        (start + i * (length + gap), start + i * (length + gap) + length, f"Turn {i} of the call.")
        for i in range(n)
    ]


def _examples(report: Any, reason: str) -> list[str]:
    return list(report.examples.get(reason, []))


def test_good_srt_becomes_windows_with_8k_source_rate(
    tmp_path: Path, write_wav: WriteWav, processor: Any
) -> None:
    m = _call(tmp_path, write_wav, srt_text(_turns(13)))  # 0.5 .. 64.5 s
    p = prepare_dataset(str(m), processor, long_form=LongFormOptions(timestamp_share=1.0, prev_share=0.0))
    lf = p.report.long_form
    assert (lf["recordings"], lf["segments_read"], lf["segments_used"], lf["windows"]) == (1, 13, 13, 3)
    assert lf["timestamped"] == 3 and p.report.n_skipped == 0
    assert p.report.sample_rates == {"8000": {"items": 3, "seconds": pytest.approx(sum(p.durations))}}
    assert (
        "## Source sample rates" in p.report.to_markdown() and "## Long recordings" in p.report.to_markdown()
    )
    item = p.dataset[1]
    assert item["input_features"].shape == (80, 3000) and p.samples[1].meta["source_sample_rate"] == 8000
    text = processor.tokenizer.decode(item["labels"], decode_with_timestamps=True)
    assert text.startswith(
        "<|startoftranscript|><|0.20|> Turn 6 of the call.<|4.20|><|5.20|> Turn 7"
    )  # 0.2 s lead-in
    assert max(p.durations) <= 30.0 and [s.meta["offset"] for s in p.samples] == [0.3, 30.3, 60.3]


def test_bad_cues_are_named_skips_and_good_segments_kept(
    tmp_path: Path, write_wav: WriteWav, processor: Any
) -> None:
    cues = [
        (1.0, 3.0, "Good morning, this is the bank."),
        (2.5, 4.0, "Overlapping cue."),  # overlaps the first by 0.5 s
        (5.0, 7.0, "   "),  # no text
        (9.0, 8.0, "Reversed times."),
        (10.0, 12.0, "I lost my card."),
        (6.0, 6.5, "Out of order."),  # starts before its predecessor
        (14.0, 16.0, "Can you block it?"),
        (69.0, 70.3, "Clamped to the end."),  # 0.3 s past a 70 s file: kept, clamped
        (75.0, 77.0, "Past the end."),
    ]
    srt = srt_text(cues) + "10\n00:00:20,000 -> 00:00:21\nbroken\n\n"
    m = _call(tmp_path, write_wav, srt)
    p = prepare_dataset(str(m), processor, long_form=LongFormOptions(timestamp_share=0.0, prev_share=0.0))
    r = p.report
    assert r.skipped == {
        "overlap": 1,
        "empty_text": 1,
        "bad_times": 1,
        "non_monotonic": 1,
        "past_end": 1,
        "malformed_cue": 1,
    }
    srt_path = tmp_path / "call.srt"
    assert _examples(r, "overlap")[0].startswith(
        f"{srt_path}:5 (cue 2): segment 2.500-4.000 s overlaps {srt_path}:1 (cue 1)"
    )
    assert _examples(r, "past_end")[0].startswith(
        f"{srt_path}:33 (cue 9): segment 75.000-77.000 s is past the end"
    )
    assert _examples(r, "non_monotonic")[0].startswith(f"{srt_path}:21 (cue 6)")
    assert _examples(r, "malformed_cue")[0].startswith(f"{srt_path}:37 (cue 10)")
    kept = " ".join(s.text for s in p.samples)
    for good in ("Good morning", "I lost my card.", "Can you block it?", "Clamped to the end."):
        assert good in kept
    assert r.long_form["segments_read"] == 10 and r.long_form["segments_used"] == 4
    assert max(s.meta["offset"] + s.duration for s in p.samples) <= 70.0


def test_segment_over_30s_split_or_skipped(tmp_path: Path, write_wav: WriteWav, processor: Any) -> None:
    long_turn = "I called last week about the card, and nobody answered, so I am calling again today, " * 2
    cues = [
        (0.0, 40.0, long_turn.strip()),
        (41.0, 44.0, "Thank you."),
        (45.0, 80.0, "an endless run on turn without stops"),
    ]
    m = _call(tmp_path, write_wav, srt_text(cues), seconds=90.0)
    p = prepare_dataset(str(m), processor, long_form=LongFormOptions(timestamp_share=1.0, prev_share=0.0))
    assert p.report.skipped == {"segment_too_long": 1}
    assert "has no punctuation" in _examples(p.report, "segment_too_long")[0]
    assert p.report.long_form["segments_split"] == 1 and max(p.durations) <= 30.0
    words = " ".join(s.text for s in p.samples).split()
    assert words[: len(long_turn.split())] == long_turn.split() and words[-2:] == ["Thank", "you."]


def _stereo_manifest(tmp_path: Path, write_wav: WriteWav, channel_field: bool = True) -> Path:
    left = speechlike(40.0, 8000, 1, amp=0.3, seed=1)
    right = speechlike(40.0, 8000, 1, amp=0.05, seed=2)
    write_wav(tmp_path / "stereo.flac", sr=8000, data=np.stack([left, right], axis=1))
    (tmp_path / "agent.srt").write_text(
        srt_text([(0.5, 4.0, "Agent speaking."), (10.0, 12.0, "Agent again.")])
    )
    (tmp_path / "cust.vtt").write_text("WEBVTT\n\n00:05.000 --> 00:09.000\n<v Customer>Customer speaking.\n")
    rows = [
        {"audio_filepath": "stereo.flac", "srt": "agent.srt", **({"channel": 0} if channel_field else {})},
        {"audio_filepath": "stereo.flac", "vtt": "cust.vtt", **({"channel": 1} if channel_field else {})},
    ]
    m = tmp_path / "calls.jsonl"
    m.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return m


def test_channels_split_and_mix(tmp_path: Path, write_wav: WriteWav, processor: Any) -> None:
    m = _stereo_manifest(tmp_path, write_wav)
    split = prepare_dataset(
        str(m), processor, long_form=LongFormOptions(channels="split", timestamp_share=0.0)
    )
    assert sorted((s.meta["channel"], s.text) for s in split.samples) == [
        ("0", "Agent speaking. Agent again."),
        ("1", "Customer speaking."),
    ]
    assert set(split.report.long_form["per_channel"]) == {"0", "1"}
    rms = [float(np.sqrt(np.mean(np.square(split.dataset.features(i))))) for i in range(2)]
    assert rms[0] != pytest.approx(rms[1], rel=1e-3)  # each stream read its own channel
    mix = prepare_dataset(str(m), processor, long_form=LongFormOptions(channels="mix", timestamp_share=0.0))
    assert [s.text for s in mix.samples] == [
        "Agent speaking. Customer speaking. Agent again."
    ]  # merged by time
    assert mix.samples[0].meta["channel"] == "mix"
    m2 = _stereo_manifest(tmp_path, write_wav, channel_field=False)
    r = check_data(str(m2), processor=processor, long_form=LongFormOptions(channels="split"))
    assert r.skipped == {"no_channel": 2} and r.usable == 0
    assert f"{m2}:1" in _examples(r, "no_channel")[0] and "needs 'channel'" in _examples(r, "no_channel")[0]


def test_mono_file_with_channels_split_is_a_named_skip(
    tmp_path: Path, write_wav: WriteWav, processor: Any
) -> None:
    m = _call(tmp_path, write_wav, srt_text(_turns(3)), seconds=20.0)
    r = check_data(str(m), processor=processor, long_form=LongFormOptions(channels="split"))
    assert r.skipped == {"mono_split": 1} and r.usable == 0
    msg = _examples(r, "mono_split")[0]
    assert msg.startswith(f"{m}:1: ") and "call.wav is mono" in msg and "channels: mix" in msg


def test_segment_manifest_rows(tmp_path: Path, write_wav: WriteWav, jsonl: Any, processor: Any) -> None:
    write_wav(tmp_path / "seg.wav", seconds=30.0, sr=16000, channels=2)
    rows: list[Any] = [
        {
            "audio_filepath": "seg.wav",
            "offset": 1.0,
            "duration": 2.0,
            "text": "Yes.",
            "channel": 0,
            "speaker": "agent",
        },
        {
            "audio_filepath": "seg.wav",
            "start": 4.0,
            "end": 6.0,
            "text": "Yes.",
            "channel": 0,
        },  # same text: kept
        {"audio_filepath": "seg.wav", "start": 2.0, "end": 5.0, "text": "Customer turn.", "channel": 1},
        {"audio_filepath": "seg.wav", "start": "soon", "end": 6.0, "text": "bad", "channel": 1},
        {"audio_filepath": "seg.wav", "start": 7.0, "text": "no end", "channel": 1},
        {
            "audio_filepath": "seg.wav",
            "start": 8.0,
            "end": 9.0,
            "text": "Ref.",
            "channel": 1,
            "srt": "ref.srt",
        },
    ]
    (tmp_path / "ref.srt").write_text(srt_text([(8.0, 9.0, "Ref."), (10.0, 11.0, "Not read again.")]))
    m = jsonl(tmp_path / "segments.jsonl", rows)
    p = prepare_dataset(str(m), processor, long_form=LongFormOptions(channels="split", timestamp_share=0.0))
    assert sorted((s.meta["channel"], s.text) for s in p.samples) == [
        ("0", "Yes. Yes."),
        ("1", "Customer turn. Ref."),  # the row's own segment; the srt beside it is not read
    ]
    assert p.report.skipped == {"bad_field": 1, "missing_field": 1}
    assert _examples(p.report, "bad_field")[0].startswith(f"{m}:4: ")


def test_prompted_windows_reach_the_collator_masked(
    tmp_path: Path, write_wav: WriteWav, processor: Any
) -> None:
    m = _call(tmp_path, write_wav, srt_text(_turns(13)))
    p = prepare_dataset(str(m), processor, long_form=LongFormOptions(timestamp_share=0.0, prev_share=1.0))
    assert p.report.long_form["prev_text"] == 2  # every window but the first
    batch = WhisperCollator(processor, 50257)([p.dataset[i] for i in range(len(p.dataset))])
    prev_id = processor.tokenizer.convert_tokens_to_ids("<|startofprev|>")
    assert batch["decoder_input_ids"][1, 0].item() == prev_id and batch["labels"][1, 0].item() == -100
    assert batch["decoder_input_ids"].shape == batch["labels"].shape
    sot = int((batch["decoder_input_ids"][1] == 50257).nonzero()[0])
    assert (batch["labels"][1, :sot] == -100).all() and (batch["labels"][1, sot:] != -100).any()


def test_three_hour_file_is_streamed_not_loaded(tmp_path: Path, processor: Any, monkeypatch: Any) -> None:
    sr, hours = 8000, 3.0
    path = tmp_path / "long.wav"
    rng = np.random.default_rng(0)
    with sf.SoundFile(str(path), "w", samplerate=sr, channels=1, subtype="PCM_16") as f:
        for _ in range(int(hours * 3600 / 60)):  # one minute at a time
            f.write((0.001 * rng.standard_normal(60 * sr)).astype(np.float32))
    speech = [(3600.0 * h + 5.0, 3600.0 * h + 9.0, f"Speech at hour {h}.") for h in (0, 1, 2)]
    speech.append((3 * 3600.0 - 10.0, 3 * 3600.0 - 6.0, "Near the very end."))
    with sf.SoundFile(str(path), "r+") as f:  # loud enough not to be 'silent'
        for a, b, _ in speech:
            f.seek(int(a * sr))
            f.write(speechlike(b - a, sr, seed=int(a)))
    (tmp_path / "long.srt").write_text(srt_text(speech))
    m = tmp_path / "train.jsonl"
    m.write_text(json.dumps({"audio_filepath": "long.wav", "srt": "long.srt"}) + "\n")
    read_frames: list[int] = []
    real_read = sf.SoundFile.read

    def spy(self: Any, frames: int = -1, *args: Any, **kwargs: Any) -> Any:
        read_frames.append(frames)
        return real_read(self, frames, *args, **kwargs)

    monkeypatch.setattr(sf.SoundFile, "read", spy)
    tracemalloc.start()
    p = prepare_dataset(str(m), processor, feature_cache=str(tmp_path / "cache"))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(p.dataset) == 4 and p.report.n_skipped == 0
    assert (
        sorted(read_frames) == [int(4.4 * sr)] * 4
    )  # each window (4 s + 2 x 0.2 s pad), by seek: nothing else
    assert peak < 40e6, f"peak {peak / 1e6:.0f} MB: the 3 h file (173 MB of samples) must not be loaded"
    assert p.dataset.features(3).shape == (80, 3000)  # from the cache


def test_offset_without_a_length_is_still_a_clip(
    tmp_path: Path, write_wav: WriteWav, jsonl: Any, processor: Any
) -> None:
    write_wav(tmp_path / "a.wav", seconds=2.0)
    m = jsonl(tmp_path / "m.jsonl", [{"audio_filepath": "a.wav", "text": "Block my card.", "offset": 0}])
    p = prepare_dataset(str(m), processor)
    assert p.report.usable == 1 and p.report.long_form == {} and p.dataset.entries[0].window is None
    bad = jsonl(tmp_path / "b.jsonl", [{"audio_filepath": "a.wav", "text": "Hi.", "start": 0.5}])
    r = check_data(str(bad), processor=processor)
    assert (
        r.skipped == {"missing_field": 1} and "needs 'end' or 'duration'" in _examples(r, "missing_field")[0]
    )


def test_a_bare_srt_is_the_recording_beside_it(tmp_path: Path, write_wav: WriteWav, processor: Any) -> None:
    from whisper_tune.errors import DataError

    write_wav(tmp_path / "call.flac", seconds=20.0, sr=8000)
    (tmp_path / "call.srt").write_text(srt_text(_turns(3)))
    r = check_data(str(tmp_path / "call.srt"), processor=processor)
    assert r.usable == 1 and r.long_form["segments_used"] == 3 and r.sources == [str(tmp_path / "call.srt")]
    (tmp_path / "lonely.vtt").write_text("WEBVTT\n\n00:01.000 --> 00:02.000\nHi\n")
    with pytest.raises(
        DataError, match=r"lonely.vtt: no audio file of the same name beside it \(tried lonely.wav"
    ):
        check_data(str(tmp_path / "lonely.vtt"), processor=processor)
