"""Manifest edge cases from the hardening pass: UTF-16/32 and BOM manifests, punctuation-only
transcripts, unreadable files, symlinks out of the data root. Each bad row is a named, counted
skip with ``file:line``; every good row around it is kept."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from whisper_tune.data import check_data, load_manifest
from whisper_tune.data.manifest_io import detect_encoding

ROWS = [
    {"audio_filepath": "a.wav", "text": "freeze my card"},
    {"audio_filepath": "b.wav", "text": "what is my balance, señor?"},
    {"audio_filepath": "c.wav", "text": "ünïcödé wire transfer"},
]


def _wavs(root: Path, write_wav: Any, names: str = "abc") -> None:
    for i, n in enumerate(names):
        write_wav(root / f"{n}.wav", seed=i)


def _text(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\r\n" for r in rows)


@pytest.mark.parametrize(
    ("encoding", "mark"),
    [
        ("utf-16", b""),  # Python's and PowerShell's UTF-16: little-endian, the codec writes the mark
        ("utf-16-be", b"\xfe\xff"),
        ("utf-16-le", b""),  # no mark: told by its NUL bytes
        ("utf-16-be", b""),
        ("utf-32", b""),
        ("utf-8-sig", b""),
    ],
)
def test_unicode_manifests_are_read_whole(tmp_path: Path, write_wav: Any, encoding: str, mark: bytes) -> None:
    _wavs(tmp_path, write_wav)
    m = tmp_path / "m.jsonl"
    m.write_bytes(mark + _text(ROWS).encode(encoding))
    r = load_manifest(m)
    assert r.skipped == []
    assert [s.text for s in r.samples] == [row["text"] for row in ROWS]
    assert [s.origin for s in r.samples] == [f"{m}:{i}" for i in (1, 2, 3)]


def test_excel_unicode_text_tsv(tmp_path: Path, write_wav: Any) -> None:
    _wavs(tmp_path, write_wav, "ab")
    tsv = "file_name\ttext\r\na.wav\tmy card is lost\r\nb.wav\tlimit ¿increase?\r\n"
    (tmp_path / "m.tsv").write_bytes(tsv.encode("utf-16"))
    r = load_manifest(tmp_path / "m.tsv")
    assert [s.text for s in r.samples] == ["my card is lost", "limit ¿increase?"] and r.skipped == []


def test_detect_encoding_leaves_utf8_alone() -> None:
    assert detect_encoding('{"text": "naïve"}\n'.encode()) == ("utf-8", 0)
    assert detect_encoding(b"\xef\xbb\xbf{}") == ("utf-8", 3)
    assert detect_encoding(b"") == ("utf-8", 0)


def test_undecodable_utf16_lines_are_counted_and_neighbours_kept(tmp_path: Path, write_wav: Any) -> None:
    _wavs(tmp_path, write_wav)
    lines = [json.dumps(r) for r in ROWS]
    lone = b"\x00\xd8"  # a high surrogate with no low one after it
    body = (
        b"\xff\xfe"
        + (lines[0] + "\n").encode("utf-16-le")
        + b'{\x00"\x00'
        + lone
        + b"}\x00\n\x00"
        + (lines[1] + "\n").encode("utf-16-le")
        + lines[2].encode("utf-16-le")
        + b"x"  # torn: half a code unit at the end
    )
    m = tmp_path / "m.jsonl"
    m.write_bytes(body)
    r = load_manifest(m)
    assert [s.text for s in r.samples] == [ROWS[0]["text"], ROWS[1]["text"]]
    assert [(s.reason, s.origin) for s in r.skipped] == [
        ("bad_encoding", f"{m}:2"),
        ("bad_encoding", f"{m}:4"),
    ]
    assert "UTF-16-LE" in r.skipped[0].message and "surrogate" in r.skipped[0].message
    assert "ends inside a character" in r.skipped[1].message


def test_transcripts_without_letters_or_digits_are_dropped(
    tmp_path: Path, write_wav: Any, jsonl: Any
) -> None:
    _wavs(tmp_path, write_wav, "a")
    texts = ["...", "?!", " - ", "¿¡", "[...]", "42", "日本語", "ok."]
    m = jsonl(tmp_path / "m.jsonl", [{"audio_filepath": "a.wav", "text": t} for t in texts])
    r = load_manifest(m)
    assert [s.text for s in r.samples] == ["42", "日本語", "ok."]
    assert [(s.reason, s.origin, s.field) for s in r.skipped] == [
        ("no_letters", f"{m}:{i}", "text") for i in (1, 2, 3, 4, 5)
    ]
    assert "'?!'" in r.skipped[1].message and "no letters or digits" in r.skipped[1].message


def _deny(monkeypatch: pytest.MonkeyPatch, target: Path) -> None:
    """Opening ``target`` fails as it would for another user (tests may run as root)."""
    real_open = os.open

    def fake_open(path: Any, flags: int, *args: Any, **kw: Any) -> int:
        if os.fspath(path) == str(target):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args, **kw)

    monkeypatch.setattr(os, "open", fake_open)


def test_unreadable_existing_file_is_a_permission_error(
    tmp_path: Path, write_wav: Any, jsonl: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _wavs(tmp_path, write_wav, "ab")
    (tmp_path / "b.wav").chmod(0)
    _deny(monkeypatch, tmp_path / "b.wav")
    rows = [{"audio_filepath": n, "text": f"row {n}"} for n in ("a.wav", "b.wav", "gone.wav")]
    m = jsonl(tmp_path / "m.jsonl", rows)
    r = load_manifest(m)
    assert [s.text for s in r.samples] == ["row a.wav"]
    assert [(s.reason, s.origin) for s in r.skipped] == [
        ("permission_denied", f"{m}:2"),
        ("missing_file", f"{m}:3"),
    ]
    assert "exists but cannot be read (Permission denied)" in r.skipped[0].message
    assert "does not exist" not in r.skipped[0].message and "does not exist" in r.skipped[1].message


def test_folder_we_may_not_enter_is_a_permission_error_not_a_crash(
    tmp_path: Path, write_wav: Any, jsonl: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _wavs(tmp_path, write_wav, "a")
    locked = tmp_path / "locked"
    write_wav(locked / "x.wav")
    real_stat = Path.stat

    def fake_stat(self: Path, *args: Any, **kw: Any) -> os.stat_result:
        if self.parent == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return real_stat(self, *args, **kw)

    monkeypatch.setattr(Path, "stat", fake_stat)
    m = jsonl(
        tmp_path / "m.jsonl",
        [{"audio_filepath": "locked/x.wav", "text": "x"}, {"audio_filepath": "a.wav", "text": "a"}],
    )
    r = load_manifest(m)
    assert [s.text for s in r.samples] == ["a"]
    (sk,) = r.skipped
    assert (sk.reason, sk.origin) == ("permission_denied", f"{m}:1") and "folder" in sk.message


def test_symlink_out_of_the_root_is_refused(tmp_path: Path, write_wav: Any, jsonl: Any) -> None:
    data = tmp_path / "data"
    _wavs(data, write_wav, "a")
    write_wav(tmp_path / "secret.wav", seed=7)
    (data / "escape.wav").symlink_to(tmp_path / "secret.wav")
    (data / "alias.wav").symlink_to(data / "a.wav")
    (tmp_path / "elsewhere").mkdir()
    (data / "linked_dir").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    write_wav(tmp_path / "elsewhere" / "z.wav", seed=3)
    rows = [
        {"audio_filepath": "escape.wav", "text": "escape"},
        {"audio_filepath": "alias.wav", "text": "alias"},
        {"audio_filepath": "linked_dir/z.wav", "text": "folder link"},
        {"audio_filepath": "a.wav", "text": "plain"},
    ]
    m = jsonl(data / "m.jsonl", rows)
    r = load_manifest(m)
    assert [(s.text, s.audio) for s in r.samples] == [
        ("alias", str(data / "a.wav")),  # the file read is the link's target
        ("plain", str(data / "a.wav")),
    ]
    assert [(s.reason, s.origin, s.field) for s in r.skipped] == [
        ("outside_root", f"{m}:1", "audio_filepath"),
        ("outside_root", f"{m}:3", "audio_filepath"),
    ]
    assert f"a symlink to {tmp_path / 'secret.wav'}" in r.skipped[0].message
    assert len(load_manifest(m, root=tmp_path).samples) == 4
    assert len(load_manifest(m, allow_outside_root=True).samples) == 4


def test_report_names_and_counts_every_case(
    tmp_path: Path, write_wav: Any, processor: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    _wavs(data, write_wav, "abcd")
    write_wav(tmp_path / "secret.wav", seed=9)
    (data / "escape.wav").symlink_to(tmp_path / "secret.wav")
    _deny(monkeypatch, data / "d.wav")
    rows = [
        {"audio_filepath": "a.wav", "text": "open a savings account"},
        {"audio_filepath": "b.wav", "text": "?!"},
        {"audio_filepath": "d.wav", "text": "locked out"},
        {"audio_filepath": "escape.wav", "text": "escape"},
        {"audio_filepath": "c.wav", "text": "close it"},
    ]
    m = data / "m.jsonl"
    m.write_bytes(_text(rows).encode("utf-16"))
    report = check_data(str(m), processor=processor)
    assert report.usable == 2 and report.total == 5
    assert report.skipped == {"no_letters": 1, "permission_denied": 1, "outside_root": 1}
    d = report.to_dict()["skipped"]
    assert d["no_letters"]["examples"][0].startswith(f"{m}:2: ")
    assert d["permission_denied"]["examples"][0].startswith(f"{m}:3: ")
    assert d["outside_root"]["examples"][0].startswith(f"{m}:4: ")
    assert "no letters" in d["no_letters"]["meaning"] and "may not read" in d["permission_denied"]["meaning"]
