"""Manifest loading: formats, path rules, and every bad row as a counted skip with file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from whisper_tune.data import Skip, load_manifest, load_manifests
from whisper_tune.errors import DataError


def _reasons(skips: list[Skip]) -> list[str]:
    return [s.reason for s in skips]


def test_jsonl_nemo_style_relative_paths_and_meta(tmp_path: Path, write_wav, jsonl) -> None:
    write_wav(tmp_path / "audio" / "a.wav")
    write_wav(tmp_path / "audio" / "b.wav")
    m = jsonl(
        tmp_path / "train.jsonl",
        [
            {
                "audio_filepath": "audio/a.wav",
                "text": " Freeze my card. ",
                "duration": 1.0,
                "intent": "freeze",
            },
            {
                "audio_filepath": str(tmp_path / "audio" / "b.wav"),
                "text": "What's my balance?",
                "speaker": "s1",
            },
        ],
    )
    r = load_manifest(m)
    assert r.skipped == []
    a, b = r.samples
    assert a.audio == str(tmp_path / "audio" / "a.wav") and Path(a.audio).is_absolute()
    assert a.text == "Freeze my card."
    assert a.duration == 1.0 and a.meta == {"intent": "freeze"}
    assert a.origin == f"{m}:1" and b.origin == f"{m}:2"
    assert b.meta == {"speaker": "s1"} and b.duration is None
    assert a.id != b.id


def test_csv_and_tsv_with_configurable_columns(tmp_path: Path, write_wav) -> None:
    write_wav(tmp_path / "x.wav")
    (tmp_path / "m.csv").write_text('path,sentence,channel\nx.wav,"Hello, bank",phone\n')
    r = load_manifest(tmp_path / "m.csv")
    assert [(s.text, s.meta) for s in r.samples] == [("Hello, bank", {"channel": "phone"})]
    (tmp_path / "m.tsv").write_text("wav\tref\nx.wav\tpay my bill\n")
    r = load_manifest(tmp_path / "m.tsv", audio_column="wav", text_column="ref")
    assert [s.text for s in r.samples] == ["pay my bill"]


def test_csv_missing_required_column_is_a_file_error_naming_column_and_file(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text("audio_filepath,label\nx.wav,hi\n")
    with pytest.raises(DataError, match=r"m\.csv:1.*no text column.*'text'"):
        load_manifest(tmp_path / "m.csv")
    with pytest.raises(DataError, match=r"m\.csv:1.*'transcript_x'"):
        load_manifest(tmp_path / "m.csv", text_column="transcript_x")


def test_jsonl_missing_required_field_is_a_skip_naming_line_and_field(
    tmp_path: Path, write_wav, jsonl
) -> None:
    write_wav(tmp_path / "a.wav")
    m = jsonl(
        tmp_path / "m.jsonl",
        [{"audio_filepath": "a.wav"}, {"text": "hi"}, {"audio_filepath": "a.wav", "text": "ok"}],
    )
    r = load_manifest(m)
    assert [s.text for s in r.samples] == ["ok"]
    assert [(s.reason, s.field, s.origin) for s in r.skipped] == [
        ("missing_field", "text", f"{m}:1"),
        ("missing_field", "audio_filepath", f"{m}:2"),
    ]


def test_non_utf8_line_is_skipped_and_neighbours_kept(tmp_path: Path, write_wav, jsonl) -> None:
    write_wav(tmp_path / "a.wav")
    write_wav(tmp_path / "b.wav")
    m = jsonl(
        tmp_path / "m.jsonl",
        [
            {"audio_filepath": "a.wav", "text": "one"},
            b'{"audio_filepath": "b.wav", "text": "caf\xe9"}',
            {"audio_filepath": "b.wav", "text": "three"},
        ],
    )
    r = load_manifest(m)
    assert [s.text for s in r.samples] == ["one", "three"]
    (sk,) = r.skipped
    assert sk.reason == "bad_encoding" and sk.origin == f"{m}:2" and "UTF-8" in sk.message


def test_non_utf8_line_in_csv(tmp_path: Path, write_wav) -> None:
    write_wav(tmp_path / "a.wav")
    (tmp_path / "m.csv").write_bytes(b"file,text\na.wav,good\na.wav,bad \xff\xfe\n")
    r = load_manifest(tmp_path / "m.csv")
    assert [s.text for s in r.samples] == ["good"]
    assert [(s.reason, s.origin) for s in r.skipped] == [("bad_encoding", f"{tmp_path / 'm.csv'}:3")]


def test_malformed_json_line(tmp_path: Path, write_wav, jsonl) -> None:
    write_wav(tmp_path / "a.wav")
    m = jsonl(
        tmp_path / "m.jsonl",
        ['{"audio_filepath": "a.wav", "text": "x"', "[1, 2]", {"audio_filepath": "a.wav", "text": "y"}],
    )
    r = load_manifest(m)
    assert [s.text for s in r.samples] == ["y"]
    assert [(s.reason, s.origin) for s in r.skipped] == [("bad_json", f"{m}:1"), ("bad_json", f"{m}:2")]
    assert "malformed JSON" in r.skipped[0].message


def test_empty_and_whitespace_transcripts_dropped(tmp_path: Path, write_wav, jsonl) -> None:
    write_wav(tmp_path / "a.wav")
    m = jsonl(
        tmp_path / "m.jsonl",
        [
            {"audio_filepath": "a.wav", "text": ""},
            {"audio_filepath": "a.wav", "text": " \t\n "},
            {"audio_filepath": "a.wav", "text": "fine"},
        ],
    )
    r = load_manifest(m)
    assert [s.text for s in r.samples] == ["fine"]
    assert [(s.reason, s.field, s.origin) for s in r.skipped] == [
        ("empty_text", "text", f"{m}:1"),
        ("empty_text", "text", f"{m}:2"),
    ]


def test_path_escaping_root_rejected_unless_allowed(tmp_path: Path, write_wav, jsonl) -> None:
    data = tmp_path / "data"
    data.mkdir()
    write_wav(tmp_path / "outside.wav")
    m = jsonl(
        data / "m.jsonl",
        [
            {"audio_filepath": "../../etc/passwd", "text": "x"},
            {"audio_filepath": "../outside.wav", "text": "y"},
        ],
    )
    r = load_manifest(m)
    assert r.samples == []
    assert _reasons(r.skipped) == ["outside_root", "outside_root"]
    assert r.skipped[0].origin == f"{m}:1" and "../../etc/passwd" in r.skipped[0].message
    assert r.skipped[0].field == "audio_filepath"
    ok = load_manifest(m, allow_outside_root=True)
    # /etc/passwd is outside and not audio; here it resolves relative to data/ -> tmp parent/etc/passwd
    assert [s.text for s in ok.samples] == ["y"]
    assert _reasons(ok.skipped) == ["missing_file"]
    wider = load_manifest(m, root=tmp_path)
    assert [s.text for s in wider.samples] == ["y"]


def test_missing_file_skipped(tmp_path: Path, jsonl) -> None:
    m = jsonl(tmp_path / "m.jsonl", [{"audio_filepath": "nope.wav", "text": "x"}])
    r = load_manifest(m)
    assert r.samples == [] and r.skipped[0].reason == "missing_file"
    assert "nope.wav" in r.skipped[0].message and r.skipped[0].origin == f"{m}:1"


def test_duplicates_counted_first_kept(tmp_path: Path, write_wav, jsonl) -> None:
    write_wav(tmp_path / "a.wav")
    m = jsonl(
        tmp_path / "m.jsonl",
        [
            {"audio_filepath": "a.wav", "text": "same"},
            {"audio_filepath": "./a.wav", "text": "same "},
            {"audio_filepath": "a.wav", "text": "different text is not a duplicate"},
        ],
    )
    r = load_manifest(m)
    assert [s.origin for s in r.samples] == [f"{m}:1", f"{m}:3"]
    (d,) = r.skipped
    assert d.reason == "duplicate" and d.origin == f"{m}:2" and f"{m}:1" in d.message
    assert len({s.id for s in r.samples}) == 2


def test_bad_duration_field(tmp_path: Path, write_wav, jsonl) -> None:
    write_wav(tmp_path / "a.wav")
    m = jsonl(tmp_path / "m.jsonl", [{"audio_filepath": "a.wav", "text": "x", "duration": "long"}])
    (sk,) = load_manifest(m).skipped
    assert (sk.reason, sk.field) == ("bad_field", "duration")


def test_audiofolder_flat_and_with_splits(tmp_path: Path, write_wav) -> None:
    flat = tmp_path / "flat"
    write_wav(flat / "a.wav")
    (flat / "metadata.csv").write_text("file_name,transcription\na.wav,open an account\n")
    r = load_manifest(flat)
    assert [s.text for s in r.samples] == ["open an account"]
    split = tmp_path / "split"
    for name in ("train", "test"):
        write_wav(split / name / "c.wav")
        (split / name / "metadata.csv").write_text(f"file_name,text\nc.wav,{name} words\n")
    r = load_manifest(split)
    assert sorted((s.meta["split"], s.text) for s in r.samples) == [
        ("test", "test words"),
        ("train", "train words"),
    ]


def test_missing_manifest_and_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="manifest not found"):
        load_manifest(tmp_path / "none.jsonl")
    (tmp_path / "m.xyz").write_text("x")
    with pytest.raises(DataError, match="format"):
        load_manifest(tmp_path / "m.xyz")


def test_several_manifests_get_split_from_stem(tmp_path: Path, write_wav, jsonl) -> None:
    write_wav(tmp_path / "a.wav")
    tr = jsonl(tmp_path / "train.jsonl", [{"audio_filepath": "a.wav", "text": "x"}])
    va = jsonl(tmp_path / "validation.jsonl", [{"audio_filepath": "a.wav", "text": "y", "split": "dev"}])
    r = load_manifests([str(tr), str(va)])
    assert [s.meta["split"] for s in r.samples] == ["train", "dev"]


def test_hf_dataset_by_name_and_split_offline(
    tmp_path: Path, write_wav, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``hf://<name or local dataset dir>:split``; embedded audio bytes are written once to the cache."""
    datasets = pytest.importorskip("datasets")
    import pyarrow as pa
    import pyarrow.parquet as pq

    monkeypatch.setenv("WHISPER_TUNE_CACHE", str(tmp_path / "wt-cache"))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    a = write_wav(tmp_path / "src" / "a.wav", seconds=0.5)
    b = write_wav(tmp_path / "src" / "b.wav", seconds=0.5, seed=3)
    (tmp_path / "ds" / "data").mkdir(parents=True)
    audio = pa.array(
        [
            {"bytes": None, "path": str(a)},
            {"bytes": b.read_bytes(), "path": "b.wav"},
            {"bytes": None, "path": "/gone.wav"},
        ],
        type=pa.struct([("bytes", pa.binary()), ("path", pa.string())]),
    )
    table = pa.table({"audio": audio, "sentence": ["one", "two", "three"]})
    pq.write_table(table, tmp_path / "ds" / "data" / "train-00000-of-00001.parquet")
    r = load_manifest(f"hf://{tmp_path / 'ds'}:train")
    assert [s.text for s in r.samples] == ["one", "two"]
    assert r.samples[0].audio == str(a)
    cached = Path(r.samples[1].audio)
    assert cached.is_relative_to(tmp_path / "wt-cache") and cached.read_bytes() == b.read_bytes()
    assert [(s.reason, s.origin) for s in r.skipped] == [("missing_file", f"hf://{tmp_path / 'ds'}:train:2")]
    with pytest.raises(DataError, match="cannot load"):
        load_manifest(f"hf://{tmp_path / 'nothing-here'}:train")


def test_csv_line_numbers_with_multiline_field_and_bad_rows(tmp_path: Path, write_wav) -> None:
    write_wav(tmp_path / "a.wav")
    write_wav(tmp_path / "b.wav", seed=1)
    m = tmp_path / "m.csv"
    m.write_bytes(
        b'audio,text\n"a.wav","first line\nsecond line"\nb.wav,extra,field\n\xff.wav,x\nb.wav\nb.wav,last\n'
    )
    r = load_manifest(m)
    assert [(s.origin, s.text) for s in r.samples] == [
        (f"{m}:2", "first line\nsecond line"),
        (f"{m}:7", "last"),
    ]
    assert [(s.reason, s.origin) for s in r.skipped] == [
        ("bad_encoding", f"{m}:5"),
        ("bad_csv", f"{m}:4"),
        ("missing_field", f"{m}:6"),
    ]


def test_tsv_keeps_quotes_in_text(tmp_path: Path, write_wav) -> None:
    write_wav(tmp_path / "a.wav")
    (tmp_path / "m.tsv").write_text('path\tsentence\na.wav\tHe said "freeze it" twice\n')
    (s,) = load_manifest(tmp_path / "m.tsv").samples
    assert s.text == 'He said "freeze it" twice'


def test_bom_and_crlf(tmp_path: Path, write_wav) -> None:
    write_wav(tmp_path / "a.wav")
    (tmp_path / "m.csv").write_bytes(b"\xef\xbb\xbffile_name,text\r\na.wav,hello there\r\n")
    (s,) = load_manifest(tmp_path / "m.csv").samples
    assert s.text == "hello there"
    (tmp_path / "m.jsonl").write_bytes(b'\xef\xbb\xbf{"audio_filepath": "a.wav", "text": "hi"}\r\n\r\n')
    r = load_manifest(tmp_path / "m.jsonl")
    assert [s.text for s in r.samples] == ["hi"] and r.skipped == []
