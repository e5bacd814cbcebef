"""The real-speech guard builder on generated audio: manifest, datasheet, selection and every error path.

The real recordings come from Debian packages and are only read by the integration test;
here a small spec points at clips generated in a tmp dir (wav at 48 kHz and 8 kHz raw PCM).
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from wt_data_testutil import speechlike, write_jsonl

from whisper_tune.data.features import file_sha256
from whisper_tune.data.guard import (
    SPEC_FILE,
    GuardClip,
    GuardSource,
    GuardSourceError,
    GuardSpec,
    RawFormat,
    build_guard,
    check_guard_manifest,
    load_spec,
    resolve_guard,
    select_clips,
)
from whisper_tune.errors import DataError

REPO = Path(__file__).resolve().parents[3]


def _spec(tmp_path: Path, *, long_s: float | None = None) -> GuardSpec:
    """Two sources (48 kHz stereo wav, 8 kHz raw), five clips, two speakers per source."""
    a, b = tmp_path / "pkg-a", tmp_path / "pkg-b"
    a.mkdir()
    b.mkdir()
    clips = []
    for i in range(3):
        p = a / f"prompt{i}.wav"
        sf.write(str(p), speechlike(1.0 + i, 48000, channels=2, seed=i), 48000)
        clips.append(
            GuardClip(
                f"a/prompt{i}", "a", p.name, file_sha256(p), f"Prompt {i}.", f"spk{i % 2}", "ivr_prompt"
            )
        )
    for i in range(2):
        p = b / f"s{i}.raw"
        (0.5 * speechlike(2.0, 8000, seed=10 + i) * 32767).astype("<i2").tofile(p)
        clips.append(
            GuardClip(
                f"b/s{i}",
                "b",
                p.name,
                file_sha256(p),
                f"Sentence {i}.",
                f"b{i}",
                "read_sentence",
                "published",
            )
        )
    if long_s is not None:
        p = a / "long.wav"
        sf.write(str(p), speechlike(long_s, 16000, seed=99), 16000)
        clips.append(GuardClip("a/long", "a", p.name, file_sha256(p), "A long one.", "spk0", "ivr_prompt"))
    sources = {
        "a": GuardSource(
            "a", "pkg-a-sounds", "1.0-1", str(a), "CC-BY-SA-3.0", "Someone", "the package's list"
        ),
        "b": GuardSource(
            "b", "pkg-b-examples", "2.0-1", str(b), "LGPL-2.1", "Others", "Harvard", RawFormat(8000)
        ),
    }
    return GuardSpec(sources, tuple(clips), verification="checked by ear")


def _rows(manifest: Path) -> list[dict]:
    return [json.loads(line) for line in manifest.read_text().splitlines()]


def test_build_writes_16k_mono_manifest_and_datasheet(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    manifest = build_guard(tmp_path / "guard", spec=spec)
    assert manifest == tmp_path / "guard" / "manifest.jsonl"
    rows = _rows(manifest)
    assert [r["id"] for r in rows] == ["a/prompt0", "a/prompt1", "a/prompt2", "b/s0", "b/s1"]
    for r in rows:
        assert set(r) >= {"audio_filepath", "text", "duration", "speaker", "source", "kind", "id", "orig_sr"}
        info = sf.info(str(manifest.parent / r["audio_filepath"]))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert r["duration"] == pytest.approx(info.duration, abs=1e-3)
    assert [r["duration"] for r in rows] == pytest.approx([1.0, 2.0, 3.0, 2.0, 2.0], abs=1e-3)
    assert rows[0]["orig_sr"] == 48000 and rows[3]["orig_sr"] == 8000
    assert rows[3]["text"] == "Sentence 0." and rows[3]["source"] == "b" and rows[3]["speaker"] == "b0"
    # the project's own loader reads it back (paths relative to the manifest)
    from whisper_tune.data.manifest import load_manifest

    res = load_manifest(manifest)
    assert len(res.samples) == 5 and not res.skipped
    assert res.samples[0].meta["speaker"] == "spk0" and res.samples[0].meta["kind"] == "ivr_prompt"

    sheet = json.loads((manifest.parent / "datasheet.json").read_text())
    assert sheet["clips"] == 5 and sheet["seconds"] == pytest.approx(10.0, abs=1e-2)
    assert sheet["spec_fingerprint"] == spec.fingerprint()
    assert sheet["audio"] == {"format": "WAV PCM_16", "sample_rate": 16000, "channels": 1}
    assert (
        sheet["sources"]["a"]["package"] == "pkg-a-sounds"
        and sheet["sources"]["a"]["licence"] == "CC-BY-SA-3.0"
    )
    assert sheet["sources"]["a"]["clips"] == 3 and sheet["sources"]["a"]["speakers"] == ["spk0", "spk1"]
    assert sheet["sources"]["b"]["original_sample_rates"] == [8000]
    assert sheet["kinds"] == {"ivr_prompt": 3, "read_sentence": 2}
    assert sheet["transcript_origins"] == {"package": 3, "published": 2}
    assert sheet["duration_s"]["max"] == pytest.approx(3.0, abs=1e-3)
    assert sheet["verification"] == "checked by ear" and sheet["dropped"] == []
    md = (manifest.parent / "datasheet.md").read_text()
    for needle in (
        "# Real-speech guard set",
        "pkg-b-examples 2.0-1",
        "LGPL-2.1",
        "checked by ear",
        "## Licence",
    ):
        assert needle in md
    # deterministic: a rebuild into the same folder gives the same bytes
    before = {p.name: p.read_bytes() for p in manifest.parent.rglob("*") if p.is_file()}
    build_guard(tmp_path / "guard", spec=spec)
    assert {p.name: p.read_bytes() for p in manifest.parent.rglob("*") if p.is_file()} == before


def test_max_clips_is_a_fixed_stratified_subset(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    two = select_clips(spec.clips, 2)
    assert [c.id for c in two] == ["a/prompt0", "b/s0"]  # one per (source, kind) stratum first
    assert [c.id for c in select_clips(spec.clips, 3)] == ["a/prompt0", "a/prompt1", "b/s0"]
    assert select_clips(spec.clips, 3) == select_clips(spec.clips, 3)
    assert select_clips(spec.clips, None) == list(spec.clips) == select_clips(spec.clips, 99)
    with pytest.raises(DataError, match="at least 1"):
        select_clips(spec.clips, 0)
    manifest = build_guard(tmp_path / "g", 2, spec=spec)
    assert [r["id"] for r in _rows(manifest)] == ["a/prompt0", "b/s0"]
    assert json.loads((manifest.parent / "datasheet.json").read_text())["max_clips"] == 2


def test_missing_package_names_it_and_how_to_install(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    for p in (tmp_path / "pkg-b").iterdir():
        p.unlink()
    with pytest.raises(GuardSourceError) as e:
        build_guard(tmp_path / "g", spec=spec)
    msg = str(e.value)
    assert "pkg-b-examples" in msg and "apt-get install pkg-b-examples" in msg and "`make`" in msg
    assert "data.guard: none" in msg and "pkg-a-sounds" not in msg
    assert not (tmp_path / "g").exists()  # nothing half-built
    # lenient: built from what is there, the rest listed
    manifest = build_guard(tmp_path / "g", spec=spec, lenient=True)
    assert [r["source"] for r in _rows(manifest)] == ["a", "a", "a"]
    sheet = json.loads((manifest.parent / "datasheet.json").read_text())
    assert [d["reason"] for d in sheet["dropped"]] == ["missing_package", "missing_package"]
    assert "## Left out" in (manifest.parent / "datasheet.md").read_text()


def test_changed_file_is_detected_by_sha256(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    target = tmp_path / "pkg-a" / "prompt1.wav"
    sf.write(str(target), speechlike(2.0, 48000, channels=2, seed=7), 48000)
    with pytest.raises(
        GuardSourceError, match=r"prompt1\.wav: sha256 .* is not the verified .*pkg-a-sounds 1\.0-1"
    ):
        build_guard(tmp_path / "g", spec=spec)
    manifest = build_guard(tmp_path / "g", spec=spec, lenient=True)
    assert "a/prompt1" not in [r["id"] for r in _rows(manifest)]


def test_clip_over_30s_is_rejected_with_a_message(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spec = _spec(tmp_path, long_s=31.0)
    with caplog.at_level(logging.WARNING, logger="whisper_tune.data.guard"):
        manifest = build_guard(tmp_path / "g", spec=spec)
    assert "a/long" not in [r["id"] for r in _rows(manifest)]
    assert any("31.0 s is longer than 30 s; rejected" in r.getMessage() for r in caplog.records)
    sheet = json.loads((manifest.parent / "datasheet.json").read_text())
    assert [(d["id"], d["reason"]) for d in sheet["dropped"]] == [("a/long", "too_long")]
    # a guard of only over-long clips is an error, not an empty set
    only_long = replace(spec, clips=tuple(c for c in spec.clips if c.id == "a/long"))
    with pytest.raises(DataError, match="no guard clip could be built"):
        build_guard(tmp_path / "g2", spec=only_long)


def test_out_folder_must_be_new_empty_or_a_guard(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "thesis.txt").write_text("do not delete")
    with pytest.raises(DataError, match="not empty and holds no guard build"):
        build_guard(busy, spec=spec)
    assert (busy / "thesis.txt").read_text() == "do not delete"


def test_spec_file_errors_name_the_file_and_field(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="guard spec not found"):
        load_spec(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(DataError, match=r"bad\.json: not valid JSON"):
        load_spec(bad)
    data = json.loads(SPEC_FILE.read_text())
    data["clips"][0]["sha256"] = "xyz"
    bad.write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"clips\[0\] .*sha256 must be 64"):
        load_spec(bad)
    data["clips"][0].pop("sha256")
    data["clips"][0]["colour"] = "red"
    bad.write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"clips\[0\]: unknown field\(s\) colour"):
        load_spec(bad)


def test_bundled_spec_is_consistent() -> None:
    spec = load_spec()
    assert len(spec.clips) >= 40
    assert len({c.speaker for c in spec.clips}) >= 3 and len(spec.sources) >= 3
    assert {c.kind for c in spec.clips} >= {"ivr_prompt", "digits", "spelling", "read_sentence"}
    assert all(c.transcript_origin in ("package", "published", "checked") for c in spec.clips)
    text = json.dumps(json.loads(SPEC_FILE.read_text())).lower()
    assert "pocketsphinx" not in text  # reserved for independent acceptance checks
    # every package the guard reads is installed by `make` (scripts/system-deps.sh)
    deps = (REPO / "scripts" / "system-deps.sh").read_text()
    for src in spec.sources.values():
        assert f"guard+=({src.package})" in deps, src.package
        assert src.licence and src.attribution and src.package_version


def test_check_guard_manifest_errors(tmp_path: Path, write_wav) -> None:
    with pytest.raises(DataError, match=r"data\.guard: guard manifest .*nope\.jsonl not found"):
        check_guard_manifest(tmp_path / "nope.jsonl")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(DataError, match=r"empty\.jsonl is empty"):
        check_guard_manifest(empty)
    broken = write_jsonl(tmp_path / "broken.jsonl", [{"audio_filepath": "missing.wav", "text": "x"}])
    with pytest.raises(
        DataError, match=r"broken\.jsonl has no usable rows \(1 skipped; first problem: .*missing\.wav"
    ):
        check_guard_manifest(broken)
    write_wav(tmp_path / "ok.wav", 1.0)
    long_only = write_jsonl(
        tmp_path / "long.jsonl", [{"audio_filepath": "ok.wav", "text": "x", "duration": 45}]
    )
    with pytest.raises(DataError, match="no usable rows"):
        check_guard_manifest(long_only)
    good = write_jsonl(tmp_path / "mine.jsonl", [{"audio_filepath": "ok.wav", "text": "Hello there."}])
    assert check_guard_manifest(good) == good


def test_resolve_guard(tmp_path: Path, write_wav) -> None:
    for off in (None, "none", "None", "off", ""):
        assert resolve_guard(off) is None
    write_wav(tmp_path / "ok.wav", 1.0)
    mine = write_jsonl(tmp_path / "mine.jsonl", [{"audio_filepath": "ok.wav", "text": "Hello there."}])
    assert resolve_guard(str(mine)) == mine
    with pytest.raises(DataError, match="not found"):
        resolve_guard(str(tmp_path / "typo.jsonl"))
    spec = _spec(tmp_path)
    with pytest.raises(DataError, match="cache folder"):
        resolve_guard("builtin", spec=spec)
    m1 = resolve_guard("builtin", cache_dir=tmp_path / "cache", spec=spec)
    assert m1 is not None and m1.parent.name == spec.fingerprint() and len(_rows(m1)) == 5
    stamp = m1.stat().st_mtime_ns
    assert resolve_guard("builtin", cache_dir=tmp_path / "cache", spec=spec) == m1
    assert m1.stat().st_mtime_ns == stamp  # reused, not rebuilt
    m2 = resolve_guard("builtin", cache_dir=tmp_path / "cache", spec=spec, max_clips=2)
    assert m2 is not None and m2 != m1 and len(_rows(m2)) == 2


def test_cli_data_guard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import whisper_tune.data.guard as guard
    from whisper_tune.data.cli import register

    spec = _spec(tmp_path)
    monkeypatch.setattr(guard, "load_spec", lambda path=None: spec)
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["data", "guard", "--out", str(tmp_path / "g"), "--max-clips", "3"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "real-speech guard: 3 clips" in out and "manifest.jsonl" in out
    assert len(_rows(tmp_path / "g" / "manifest.jsonl")) == 3
    assert np.isfinite(sf.read(str(tmp_path / "g" / "audio" / "a__prompt0.wav"))[0]).all()
