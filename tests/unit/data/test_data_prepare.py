"""prepare_dataset / data check over a crafted manifest holding every bad-input case."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from wt_data_testutil import speechlike, write_jsonl  # noqa: I001

from whisper_tune.cli import main as cli_main
from whisper_tune.data import DataReport, prepare_dataset
from whisper_tune.errors import DataError

LONG_TEXT = " ".join(["account"] * 500)


def _crafted(root: Path, write_wav: Any) -> tuple[Path, dict[int, str], list[int]]:
    """A manifest mixing good rows with every bad case. Returns (path, bad line -> reason, good lines)."""
    d = root / "data"
    a = d / "audio"
    write_wav(a / "good1.wav", seconds=1.5, seed=1)
    write_wav(a / "good2.wav", seconds=2.5, seed=2)
    write_wav(a / "good3.flac", seconds=3.0, seed=3)
    write_wav(a / "good4.mp3", seconds=2.0, sr=22050, seed=4, format="MP3")
    write_wav(a / "stereo44.wav", seconds=2.0, sr=44100, channels=2, seed=5)
    write_wav(a / "phone8k.wav", seconds=2.0, sr=8000, seed=6)
    loud = np.clip(10 * speechlike(2.0, seed=7), -1, 1)
    write_wav(a / "clipped.wav", data=loud, subtype="FLOAT")
    write_wav(a / "long35.wav", seconds=35.0, sr=8000, seed=8)
    write_wav(a / "silent.wav", data=np.zeros(16000, np.float32))
    write_wav(a / "for_long_text.wav", seconds=1.0, seed=9)
    (a / "garbage.wav").write_bytes(b"\x00\x01not audio" * 100)
    (a / "empty.wav").write_bytes(b"")

    def row(f: str, t: str, **kw: Any) -> dict[str, Any]:
        return {"audio_filepath": f"audio/{f}", "text": t, **kw}

    lines: list[Any] = [
        row("good1.wav", "Freeze my Visa card.", intent="freeze"),  # 1
        row("garbage.wav", "unreadable bytes"),  # 2
        row("good2.wav", "What's the APR on my card?"),  # 3
        row("empty.wav", "zero length"),  # 4
        row("missing.wav", "missing file"),  # 5
        row("stereo44.wav", "Send fifty dollars with Zelle."),  # 6 good
        row("phone8k.wav", "My IBAN is wrong."),  # 7 good
        row("long35.wav", "a long clip"),  # 8
        row("good3.flac", ""),  # 9 empty text
        row("good3.flac", "   \t "),  # 10 whitespace text
        row("for_long_text.wav", LONG_TEXT),  # 11
        b'{"audio_filepath": "audio/good3.flac", "text": "caf\xe9 au lait"}',  # 12 not UTF-8
        '{"audio_filepath": "audio/good3.flac", "text": "unterminated',  # 13 malformed JSON
        {"audio_filepath": "audio/good3.flac"},  # 14 missing text field
        {"audio_filepath": "../../etc/passwd", "text": "root"},  # 15 outside root
        row("good1.wav", "Freeze my Visa card."),  # 16 duplicate of 1
        row("good3.flac", "Pay my bill on the twelfth."),  # 17 good
        row("silent.wav", "nothing to hear"),  # 18 silent
        row("clipped.wav", "My ATM limit, please."),  # 19 good (clipped warning)
        row("good4.mp3", "Show my latest transactions."),  # 20 good
    ]
    m = write_jsonl(d / "train.jsonl", lines)
    bad = {
        2: "unreadable_audio",
        4: "empty_audio",
        5: "missing_file",
        8: "too_long",
        9: "empty_text",
        10: "empty_text",
        11: "label_too_long",
        12: "bad_encoding",
        13: "bad_json",
        14: "missing_field",
        15: "outside_root",
        16: "duplicate",
        18: "silent",
    }
    good = [1, 3, 6, 7, 17, 19, 20]
    return m, bad, good


def _all_examples(report: DataReport) -> dict[str, list[str]]:
    return {r: report.examples[r] for r in report.skipped}


def test_crafted_manifest_keeps_every_good_row_and_reports_every_bad_one(
    tmp_path: Path, write_wav: Any, processor: Any
) -> None:
    m, bad, good = _crafted(tmp_path, write_wav)
    p = prepare_dataset(str(m), processor, feature_cache=str(tmp_path / "cache"))
    assert [s.origin for s in p.samples] == [f"{m}:{i}" for i in good]
    r = p.report
    assert r.usable == len(good) and r.total == len(good) + len(bad)
    expected: dict[str, int] = {}
    for reason in bad.values():
        expected[reason] = expected.get(reason, 0) + 1
    assert r.skipped == expected
    # each bad row is named by file:line under its reason
    examples = _all_examples(r)
    for line, reason in bad.items():
        assert any(e.startswith(f"{m}:{line}: ") for e in examples[reason]), (line, reason, examples[reason])
    assert "35.0 s" in examples["too_long"][0]
    assert "503 tokens" in examples["label_too_long"][0] and "448" in examples["label_too_long"][0]
    assert "field 'text'" in examples["missing_field"][0]
    assert r.warnings == {"clipped": 1} and r.warning_examples["clipped"][0].startswith(f"{m}:19: ")
    # stereo 44.1 kHz and 8 kHz clips became 16 kHz mono features of the right length
    by_origin = {s.origin: i for i, s in enumerate(p.samples)}
    for line in (6, 7):
        item = p.dataset[by_origin[f"{m}:{line}"]]
        assert item["input_features"].shape == (80, 3000)
        assert item["content_frames"] == pytest.approx(200, abs=3)
    assert r.hours == pytest.approx(sum(p.durations) / 3600)
    assert sum(r.histogram) == len(good)
    assert p.samples[0].meta["intent"] == "freeze"


def test_nothing_usable_raises_with_report(tmp_path: Path, processor: Any) -> None:
    m = write_jsonl(tmp_path / "m.jsonl", [{"audio_filepath": "x.wav", "text": "a"}, {"text": "b"}])
    with pytest.raises(DataError, match=r"no usable rows(.|\n)*missing_file: 1"):
        prepare_dataset(str(m), processor)


def test_long_audio_error_policy_and_shorter_max_duration(
    tmp_path: Path, write_wav: Any, processor: Any
) -> None:
    write_wav(tmp_path / "long.wav", seconds=35.0, sr=8000)
    write_wav(tmp_path / "mid.wav", seconds=12.0, sr=8000)
    write_wav(tmp_path / "short.wav", seconds=2.0)
    m = write_jsonl(
        tmp_path / "m.jsonl",
        [{"audio_filepath": f, "text": "x"} for f in ("short.wav", "long.wav", "mid.wav")],
    )
    with pytest.raises(DataError, match=rf"{m}:2: .*long.wav: clip is 35.0 s"):
        prepare_dataset(str(m), processor, long_audio="error")
    with pytest.raises(DataError, match="split_long_audio"):
        prepare_dataset(str(m), processor, long_audio="split")
    p = prepare_dataset(str(m), processor, max_duration_s=10.0)
    assert [s.origin for s in p.samples] == [f"{m}:1"] and p.report.skipped == {"too_long": 2}


def test_samples_list_and_label_limit(tmp_path: Path, write_wav: Any, processor: Any) -> None:
    from whisper_tune.data import Sample

    a = str(write_wav(tmp_path / "a.wav", seconds=1.0))
    samples = [
        Sample("s1", a, "one two three", origin="mem:1"),
        Sample("s2", a, "one two three four five", origin="mem:2"),
    ]
    p = prepare_dataset(samples, processor, max_label_tokens=7)  # 2 prefix + 3 words + eot = 6
    assert [s.id for s in p.samples] == ["s1"]
    assert p.report.skipped == {"label_too_long": 1}


def test_parallel_scan_matches_serial(
    tmp_path: Path,
    write_wav: Any,
    processor: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import whisper_tune.data.prepare as prep

    monkeypatch.setattr(prep, "MIN_ITEMS_PER_WORKER", 1)
    rows = []
    for i in range(6):
        write_wav(tmp_path / f"c{i}.wav", seconds=1.0 + i * 0.3, seed=i)
        rows.append({"audio_filepath": f"c{i}.wav", "text": f"clip {i}"})
    (tmp_path / "bad.wav").write_bytes(b"junk" * 50)
    rows.append({"audio_filepath": "bad.wav", "text": "bad"})
    m = write_jsonl(tmp_path / "m.jsonl", rows)
    par = prepare_dataset(str(m), processor, feature_cache=str(tmp_path / "cache"), num_workers=2)
    assert "process pool failed" not in caplog.text  # the pool really ran
    assert par.dataset.cache is not None and par.dataset.cache.computed == 6
    ser = prepare_dataset(str(m), processor, feature_cache=str(tmp_path / "cache"), num_workers=1)
    assert ser.dataset.cache is not None and ser.dataset.cache.computed == 0
    assert par.report.to_dict() == ser.report.to_dict()
    assert [s.id for s in par.samples] == [s.id for s in ser.samples]


def test_report_write_and_markdown(tmp_path: Path, write_wav: Any, processor: Any) -> None:
    m, _, good = _crafted(tmp_path, write_wav)
    p = prepare_dataset(str(m), processor)
    pj, pm = p.report.write(tmp_path / "run")
    d = json.loads(pj.read_text())
    assert d["usable"] == len(good) and d["skipped"]["duplicate"]["count"] == 1
    md = pm.read_text()
    assert "| usable | 7 |" in md and "| too_long | 1 |" in md and f"{m}:8" in md
    assert "Duration histogram" in md and "#" in md


def test_cli_data_check_json_markdown_and_splits(
    tmp_path: Path, write_wav: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    m, bad, good = _crafted(tmp_path, write_wav)
    out = tmp_path / "report"
    rc = cli_main(["data", "check", str(m), "--json", "--out", str(out)])
    assert rc == 0
    d = json.loads(capsys.readouterr().out)
    assert d["usable"] == len(good) and d["skipped_total"] == len(bad)
    assert d["skipped"]["bad_json"]["examples"][0].startswith(f"{m}:13: ")
    assert (out / "data_report.json").is_file() and (out / "data_report.md").is_file()

    val = write_jsonl(m.parent / "validation.jsonl", [{"audio_filepath": "audio/good2.wav", "text": "dev"}])
    rc = cli_main(["data", "check", str(m), str(val)])
    text = capsys.readouterr().out
    assert rc == 0
    assert "## Per split" in text and "| train | 7 | 13 |" in text and "| validation | 1 | 0 |" in text

    empty = write_jsonl(tmp_path / "nothing.jsonl", [{"audio_filepath": "gone.wav", "text": "x"}])
    assert cli_main(["data", "check", str(empty), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["skipped"]["missing_file"]["count"] == 1


def test_cli_bad_csv_header_is_a_clean_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "m.csv").write_text("audio_filepath,words\na.wav,hi\n")
    assert cli_main(["data", "check", str(tmp_path / "m.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "m.csv:1" in err and "'text'" in err


def test_silence_threshold_is_configurable(tmp_path: Path, processor: Any) -> None:
    from whisper_tune.data import AudioCheck

    sr = 16000
    quiet = (0.0005 * np.sin(2 * np.pi * 300 * np.arange(sr) / sr)).astype(np.float32)  # about -69 dBFS
    sf.write(str(tmp_path / "q.wav"), quiet, sr, subtype="FLOAT")
    m = write_jsonl(tmp_path / "m.jsonl", [{"audio_filepath": "q.wav", "text": "quiet"}])
    with pytest.raises(DataError, match="silent"):
        prepare_dataset(str(m), processor)
    p = prepare_dataset(str(m), processor, check=AudioCheck(silence_dbfs=-80.0))
    assert p.report.usable == 1


def test_crafted_manifest_feeds_a_training_step(tmp_path: Path, write_wav: Any, tiny_model_dir: Path) -> None:
    """The good rows of the crafted manifest go through DataLoader + collator + a toy Whisper."""
    import torch
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    from whisper_tune.data import WhisperCollator

    proc = WhisperProcessor.from_pretrained(tiny_model_dir)
    model = WhisperForConditionalGeneration.from_pretrained(tiny_model_dir)
    m, _, good = _crafted(tmp_path, write_wav)
    p = prepare_dataset(str(m), proc, feature_cache=str(tmp_path / "cache"))
    start = int(model.config.decoder_start_token_id)
    dl = torch.utils.data.DataLoader(p.dataset, batch_size=4, collate_fn=WhisperCollator(proc, start))
    seen = 0
    for batch in dl:
        out = model(**batch)
        assert torch.isfinite(out.loss)
        out.loss.backward()
        seen += batch["input_features"].shape[0]
    assert seen == len(good)


def test_duration_mismatch_is_a_warning_and_measured_duration_wins(
    tmp_path: Path, write_wav: Any, processor: Any
) -> None:
    write_wav(tmp_path / "a.wav", seconds=2.0)
    write_wav(tmp_path / "b.wav", seconds=2.0, seed=1)
    m = write_jsonl(
        tmp_path / "m.jsonl",
        [
            {"audio_filepath": "a.wav", "text": "right", "duration": 2.1},
            {"audio_filepath": "b.wav", "text": "wrong", "duration": 9.0},
        ],
    )
    p = prepare_dataset(str(m), processor)
    assert p.report.usable == 2 and p.report.warnings == {"duration_mismatch": 1}
    assert p.report.warning_examples["duration_mismatch"][0].startswith(f"{m}:2: ")
    assert [s.duration for s in p.samples] == pytest.approx([2.0, 2.0])
