"""SRT/WebVTT cue reading, segment checks and window labels (data/subtitles.py, segments.py, windows.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from whisper_tune.data.segments import split_long_cue
from whisper_tune.data.subtitles import Cue, read_srt, read_transcript, read_vtt
from whisper_tune.data.windows import cut_windows, prompt_batch, window_labels


def _srt_time(t: float) -> str:
    ms = int(round(t * 1000))
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def srt_text(cues: list[tuple[float, float, str]]) -> str:
    return "".join(f"{i}\n{_srt_time(a)} --> {_srt_time(b)}\n{t}\n\n" for i, (a, b, t) in enumerate(cues, 1))


def test_srt_malformed_cues_are_named_and_good_cues_kept(tmp_path: Path) -> None:
    p = tmp_path / "call.srt"
    p.write_text(
        "1\n00:00:01,000 --> 00:00:02,500\nHello, bank.\n\n"
        "2\n00:00:03,000 -> 00:00:04\nbroken arrow\n\n"  # line 5
        "3\n00:00:05,000 --> 00:00:06,000\n<i>My card</i>\nis lost.\n\n"
        "just some text\n\n"  # line 14
    )
    cues, problems = read_srt(p)
    assert [(c.start, c.end, c.text) for c in cues] == [
        (1.0, 2.5, "Hello, bank."),
        (5.0, 6.0, "My card is lost."),
    ]
    assert cues[1].origin == f"{p}:9 (cue 3)"
    assert [(x.origin, x.reason) for x in problems] == [
        (f"{p}:5 (cue 2)", "malformed_cue"),
        (f"{p}:14 (cue 4)", "malformed_cue"),
    ]
    assert "broken arrow" in problems[0].message and "not an SRT cue" in problems[0].message


def test_srt_cues_without_a_blank_line_between_are_all_kept(tmp_path: Path) -> None:
    p = tmp_path / "tight.srt"
    p.write_text("1\n00:00:01,000 --> 00:00:02,000\nOne.\n2\n00:00:03,000 --> 00:00:04,000\nTwo.\n")
    cues, problems = read_srt(p)
    assert [(c.start, c.text) for c in cues] == [(1.0, "One."), (3.0, "Two.")] and problems == []


def test_srt_utf16_with_bom_is_read(tmp_path: Path) -> None:
    p = tmp_path / "excel.srt"
    p.write_bytes(srt_text([(0.0, 1.0, "Grüße")]).encode("utf-16"))
    cues, problems = read_srt(p)
    assert [c.text for c in cues] == ["Grüße"] and problems == []


def test_vtt_cues_voices_notes_and_malformed_timing(tmp_path: Path) -> None:
    p = tmp_path / "call.vtt"
    p.write_text(
        "WEBVTT\n\nNOTE vendor export\n\n"
        "00:01.250 --> 00:02.500 align:start\n<v Agent>Good <b>morning</b>\n\n"  # line 5
        "xx:03.000 --> 00:04.000\nbad time\n\n"  # line 8
        "intro\n00:05.000 --> 00:06.000\n<v Customer>Hi\n\n"
        "no timing here\n\n"  # line 15
    )
    cues, problems = read_vtt(p)
    assert [(c.start, c.end, c.text, c.speaker) for c in cues] == [
        (1.25, 2.5, "Good morning", "Agent"),
        (5.0, 6.0, "Hi", "Customer"),
    ]
    assert [(x.origin, x.reason) for x in problems] == [
        (f"{p}:8 (cue 2)", "malformed_cue"),
        (f"{p}:15 (cue 4)", "malformed_cue"),
    ]


def test_vtt_without_header_and_unknown_or_missing_files(tmp_path: Path) -> None:
    p = tmp_path / "x.vtt"
    p.write_text("00:01.000 --> 00:02.000\nhello\n")
    cues, problems = read_vtt(p)
    assert cues == [] and problems[0].origin == f"{p}:1" and "WEBVTT" in problems[0].message
    _, problems = read_transcript(tmp_path / "nope.srt")
    assert problems[0].reason == "missing_file" and "nope.srt" in problems[0].origin
    _, problems = read_transcript(tmp_path / "a.txt")
    assert problems[0].reason == "malformed_cue"


def test_long_segment_split_at_punctuation_proportionally() -> None:
    text = "First part of a long turn, " * 3 + "and then the end of it."
    c = Cue(10.0, 55.0, text.strip(), "f.srt:1 (cue 1)")
    pieces = split_long_cue(c, 30.0)
    assert pieces is not None and len(pieces) == 2
    assert pieces[0].start == 10.0 and pieces[-1].end == 55.0 and pieces[0].end == pieces[1].start
    assert all(p.end - p.start <= 30.0 for p in pieces)
    assert " ".join(p.text for p in pieces).split() == c.text.split()  # no word lost
    share = len(pieces[0].text) / (len(pieces[0].text) + len(pieces[1].text))
    assert pieces[0].end - 10.0 == pytest.approx(45.0 * share, rel=0.05)
    assert split_long_cue(Cue(0.0, 40.0, "one endless sentence without a stop", "o"), 30.0) is None


def _cues(spans: list[tuple[float, float]]) -> list[Cue]:
    return [Cue(a, b, f"segment {i}.", f"f.srt:{i}") for i, (a, b) in enumerate(spans)]


def test_windows_cut_on_segment_boundaries() -> None:
    cues = _cues([(0.5, 4.0), (5.0, 12.0), (13.0, 29.0), (29.5, 33.0), (34.0, 40.0), (60.0, 62.0)])
    ws = cut_windows(cues, 30.0, max_gap_s=10.0)
    assert [(w.start, w.end, len(w.cues)) for w in ws] == [(0.5, 29.0, 3), (29.5, 40.0, 2), (60.0, 62.0, 1)]
    assert all(w.duration <= 30.0 for w in ws)
    assert sum(len(w.cues) for w in ws) == len(cues)
    with pytest.raises(ValueError, match="longer than 30"):
        cut_windows(_cues([(0.0, 31.0)]), 30.0)


def test_timestamped_labels_aligned_to_window_and_quantised(processor: Any) -> None:
    tok = processor.tokenizer
    w = cut_windows([Cue(100.0, 102.013, "Hello there.", "a"), Cue(103.5, 106.0, "How can I help?", "b")])[0]
    labels = window_labels(w, tok, timestamps=True)
    text = tok.decode(labels, decode_with_timestamps=True)
    assert text == (
        "<|startoftranscript|><|0.00|> Hello there.<|2.02|><|3.50|> How can I help?<|6.00|><|endoftext|>"
    )
    plain = tok.decode(window_labels(w, tok, timestamps=False))
    assert plain == "<|startoftranscript|><|notimestamps|> Hello there. How can I help?<|endoftext|>"


def test_prev_text_prompt_is_masked_out_of_the_loss(processor: Any) -> None:
    tok = processor.tokenizer
    sot, prev_id = 50257, tok.convert_tokens_to_ids("<|startofprev|>")
    w = cut_windows([Cue(0.0, 2.0, "Yes, please.", "a")])[0]
    prompted = window_labels(w, tok, timestamps=False, prev_text="I would like to freeze my card.")
    plain = window_labels(w, tok, timestamps=False)
    assert prompted[0] == prev_id and prompted[prompted.index(sot) :] == plain
    dec, lab = prompt_batch([prompted, plain], sot, int(tok.pad_token_id))
    k = prompted.index(sot)
    assert dec[0, : k + 1].tolist() == prompted[: k + 1]  # the decoder sees the prompt...
    assert (lab[0, :k] == -100).all() and lab[0, k : len(prompted) - 1].tolist() == plain[
        1:
    ]  # ...the loss does not
    # the row without a prompt: exactly what the model's own label shift would give
    assert dec[1, : len(plain) - 1].tolist() == plain[:-1]
    assert lab[1, : len(plain) - 1].tolist() == plain[1:] and (lab[1, len(plain) - 1 :] == -100).all()
    long_prev = " ".join(["word"] * 600)
    capped = window_labels(w, tok, timestamps=False, prev_text=long_prev)
    assert capped.index(sot) - 1 <= 223 and len(capped) <= 448


def test_window_padding_stays_clear_of_neighbours_and_the_end() -> None:
    cues = _cues([(0.1, 4.0), (5.0, 29.0), (29.05, 33.0), (34.0, 39.95)])
    ws = cut_windows(cues, 30.0, pad_s=0.2, audio_end=40.0)
    assert [(round(w.start, 3), round(w.end, 3)) for w in ws] == [(0.0, 29.05), (29.05, 40.0)]
    assert all(w.duration <= 30.0 and w.start <= w.cues[0].start and w.end >= w.cues[-1].end for w in ws)
    tight = cut_windows(_cues([(0.5, 30.4)]), 30.0, pad_s=0.2)  # 29.9 s of speech: only 0.1 s of room
    assert tight[0].duration <= 30.0 + 1e-9 and tight[0].start <= 0.5 and tight[0].end >= 30.4


def test_srt_speaker_labels_used_file_wide_become_speakers(tmp_path: Path) -> None:
    from whisper_tune.data.subtitles import read_srt

    labelled = tmp_path / "call.srt"
    labelled.write_text(
        "1\n00:00:00,500 --> 00:00:02,000\nAgent: Thank you for calling.\n\n"
        "2\n00:00:02,500 --> 00:00:04,000\nCustomer: Hi, my card is lost.\n\n"
        "3\n00:00:04,500 --> 00:00:06,000\nAgent: I can help with that.\n"
    )
    cues, problems = read_srt(labelled)
    assert problems == []
    assert [c.text for c in cues] == [
        "Thank you for calling.",
        "Hi, my card is lost.",
        "I can help with that.",
    ]
    assert [c.speaker for c in cues] == ["Agent", "Customer", "Agent"]

    plain = tmp_path / "talk.srt"
    plain.write_text(
        "1\n00:00:00,500 --> 00:00:02,000\nNote: the branch opens at nine.\n\n"
        "2\n00:00:02,500 --> 00:00:04,000\nPlease bring your ID.\n"
    )
    cues, _ = read_srt(plain)
    assert [c.text for c in cues] == ["Note: the branch opens at nine.", "Please bring your ID."]
    assert [c.speaker for c in cues] == [None, None]
