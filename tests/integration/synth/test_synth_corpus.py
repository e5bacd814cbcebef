"""Real synthesis end to end: Piper + espeak-ng audio, manifests, datasheet, determinism, degradation.

Small on purpose (a dozen clips): the 1,000-clip timing lives in ``bench/synth.py``.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from whisper_tune.data.synth import SynthConfig, synthesize_corpus, tts
from whisper_tune.data.synth.text import INTENTS
from whisper_tune.errors import UserError

pytestmark = pytest.mark.integration

SPLITS = ("train", "validation", "test")
N = 12


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 clips made through the real CLI entry point with 2 worker processes."""
    from whisper_tune.data.synth.cli import main

    out = tmp_path_factory.mktemp("synth") / "corpus"
    rc = main(["--n", str(N), "--out", str(out), "--seed", "21", "--workers", "2", "--noise-share", "0.5",
               "--phone-share", "0.5"])  # fmt: skip
    assert rc == 0
    return out


def _rows(out: Path) -> dict[str, list[dict]]:
    return {s: [json.loads(line) for line in (out / f"{s}.jsonl").read_text().splitlines()] for s in SPLITS}


def test_manifests_match_files(corpus_dir: Path) -> None:
    rows = _rows(corpus_dir)
    assert sum(len(v) for v in rows.values()) == N
    assert all(rows[s] for s in SPLITS)
    wavs = sorted(p.relative_to(corpus_dir).as_posix() for p in (corpus_dir / "audio").rglob("*.wav"))
    assert wavs == sorted(r["audio_filepath"] for v in rows.values() for r in v)
    for split, items in rows.items():
        for r in items:
            assert not Path(r["audio_filepath"]).is_absolute()
            info = sf.info(str(corpus_dir / r["audio_filepath"]))
            assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
            assert abs(info.frames / 16000 - r["duration"]) < 1e-3
            assert 1.0 < r["duration"] < 30.0
            audio, _ = sf.read(str(corpus_dir / r["audio_filepath"]), dtype="float32")
            peak = 20 * np.log10(np.max(np.abs(audio)))
            assert abs(peak - r["peak_dbfs"]) < 0.2
            # small leading silence, then speech
            assert (
                np.max(np.abs(audio[: int(0.1 * 16000)])) < 0.05 * np.max(np.abs(audio))
                or r["noise"] != "none"
            )
            assert r["split"] == split and r["id"] in r["audio_filepath"]
            assert r["domain"] in ("banking", "general")
            assert r["intent"] in (*INTENTS, "general")
            assert r["engine"] in ("piper", "espeak") and r["speaker"].startswith(r["engine"] + ":")
            assert r["channel"] in ("phone", "wideband")
            assert (r["snr_db"] is None) == (r["noise"] == "none")
            assert r["text"] and r["spoken"]
            if r["channel"] == "phone":  # the narrow band is real in the written file
                spec = np.abs(np.fft.rfft(audio)) ** 2
                f = np.fft.rfftfreq(len(audio), 1 / 16000)
                assert spec[f > 4000].sum() / spec.sum() < 1e-3


def test_held_out_sentences_and_speakers(corpus_dir: Path) -> None:
    rows = _rows(corpus_dir)
    spk = {s: {r["speaker"] for r in rows[s]} for s in SPLITS}
    txt = {s: {r["text"] for r in rows[s]} for s in SPLITS}
    assert not spk["train"] & (spk["validation"] | spk["test"]) and not spk["validation"] & spk["test"]
    assert not txt["train"] & (txt["validation"] | txt["test"]) and not txt["validation"] & txt["test"]


def test_datasheet_counts_match_files(corpus_dir: Path) -> None:
    rows = _rows(corpus_dir)
    sheet = json.loads((corpus_dir / "datasheet.json").read_text())
    assert sheet["clips"] == {s: len(rows[s]) for s in SPLITS}
    assert sheet["clips_total"] == N and sheet["failed"] == []
    for field, key in (("intent", "per_intent"), ("voice", "per_voice"), ("channel", "per_channel"),
                       ("domain", "per_domain"), ("engine", "per_engine"), ("noise", "per_noise")):  # fmt: skip
        for s in SPLITS:
            assert sheet[key][s] == dict(Counter(str(r[field]) for r in rows[s])), (key, s)
    for s in SPLITS:
        assert abs(sheet["seconds"][s] - sum(r["duration"] for r in rows[s])) < 0.05
        assert abs(sheet["hours"][s] * 3600 - sheet["seconds"][s]) < 1.0
        assert sheet["speakers"][s] == sorted({r["speaker"] for r in rows[s]})
    held = sheet["held_out"]
    assert held["speakers_shared_between_splits"] == [] and held["sentences_shared_between_splits"] == 0
    eval_t = {r["template"] for s in ("validation", "test") for r in rows[s]}
    assert held["templates_eval_only"] == len(eval_t - {r["template"] for r in rows["train"]})
    md = (corpus_dir / "datasheet.md").read_text()
    for s in SPLITS:
        assert f"| {s} | {len(rows[s])} |" in md
    assert "Transcript convention" in md and "$1,250" in md
    # metadata.csv (HF audiofolder) has the same rows
    with open(corpus_dir / "metadata.csv", newline="") as fh:
        meta = list(csv.DictReader(fh))
    assert [m["file_name"] for m in meta] == [r["audio_filepath"] for s in SPLITS for r in rows[s]]
    assert [m["transcription"] for m in meta] == [r["text"] for s in SPLITS for r in rows[s]]
    terms = (corpus_dir / "domain_terms.txt").read_text().splitlines()
    assert terms == sheet["domain_terms"]
    banking = " ".join(r["text"].lower() for s in SPLITS for r in rows[s] if r["domain"] == "banking")
    assert all(t.lower() in banking for t in terms)


def test_same_seed_same_bytes_any_worker_count(corpus_dir: Path, tmp_path: Path) -> None:
    info = synthesize_corpus(SynthConfig(out=str(tmp_path / "again"), n=N, seed=21, workers=1, noise_share=0.5,
                                         phone_share=0.5))  # fmt: skip
    assert info.failed == 0
    assert _tree_digest(tmp_path / "again") == _tree_digest(corpus_dir)


def test_manifest_loads_with_data_loader(corpus_dir: Path) -> None:
    """The data area's loader accepts the corpus as is (contract check)."""
    from whisper_tune.data.manifest import load_manifest

    res = load_manifest(str(corpus_dir / "train.jsonl"))
    assert not res.skipped
    assert len(res.samples) == len(_rows(corpus_dir)["train"])
    s = res.samples[0]
    assert Path(s.audio).is_absolute() and Path(s.audio).is_file()
    assert s.meta["intent"] and s.meta["domain"] in ("banking", "general") and s.meta["split"] == "train"


def test_engines_render_speech() -> None:
    text = "Hi, I'd like to freeze my card."
    e = tts.EspeakEngine().synthesize(text, tts.Speaker("espeak", "en-gb-scotland", "f3", 160, 50))
    p = tts.PiperEngine().synthesize(text, tts.Speaker("piper", "joe", warp=1.05))
    for a in (e, p):
        assert a.dtype == np.float32 and 0.8 < len(a) / 16000 < 6
        assert np.sqrt(np.mean(a**2)) > 0.01
    assert set(tts.espeak_voices()) >= {"en-us", "en-gb", "en-gb-scotland", "en-029"}
    assert {"m1", "f5"} <= set(tts.espeak_variants())


def test_espeak_missing_degrades_to_piper(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(tts, "_espeak_bin", lambda: None)
    with pytest.raises(tts.TTSError, match="espeak-ng is not installed"):
        tts.EspeakEngine()
    info = synthesize_corpus(SynthConfig(out=str(tmp_path / "p"), n=3, seed=1, workers=1, noise_share=0.0))
    assert info.engines == {"espeak": False, "piper": True}
    assert any("espeak-ng is not installed" in m for m in info.messages)
    rows = _rows(tmp_path / "p")
    assert {r["engine"] for s in SPLITS for r in rows[s]} == {"piper"}
    assert "espeak-ng is not installed" in (tmp_path / "p" / "datasheet.md").read_text()


def test_piper_missing_degrades_to_espeak_and_none_fails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def broken() -> Path:
        raise tts.TTSError("Piper voice model not found at /nowhere/en_US-joe-medium.onnx")

    monkeypatch.setattr(tts, "piper_model_path", broken)
    info = synthesize_corpus(SynthConfig(out=str(tmp_path / "e"), n=4, seed=1, workers=1))
    assert info.engines == {"espeak": True, "piper": False}
    assert any("Piper voice model not found" in m for m in info.messages)
    assert {r["engine"] for s in SPLITS for r in _rows(tmp_path / "e")[s]} == {"espeak"}
    monkeypatch.setattr(tts, "_espeak_bin", lambda: None)
    with pytest.raises(UserError, match="no TTS engine is usable"):
        synthesize_corpus(SynthConfig(out=str(tmp_path / "none"), n=2, seed=1, workers=1))


def test_failed_clip_is_counted_not_fatal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from whisper_tune.data.synth import corpus

    def no_piper() -> Path:
        raise tts.TTSError("Piper disabled for this test")

    monkeypatch.setattr(tts, "piper_model_path", no_piper)
    real = corpus.render_clip

    def flaky(plan: corpus.ClipPlan, seed: int) -> np.ndarray:
        if plan.index == 1:
            raise tts.TTSError("simulated engine crash")
        return real(plan, seed)

    monkeypatch.setattr(corpus, "render_clip", flaky)
    info = synthesize_corpus(SynthConfig(out=str(tmp_path / "f"), n=5, seed=2, workers=1))
    assert info.failed == 1 and sum(info.clips.values()) == 4
    sheet = json.loads(info.datasheet_json.read_text())
    assert len(sheet["failed"]) == 1 and "simulated engine crash" in sheet["failed"][0]["error"]
    rows = _rows(tmp_path / "f")
    listed = sorted(r["audio_filepath"] for s in SPLITS for r in rows[s])
    assert listed == sorted(p.relative_to(tmp_path / "f").as_posix() for p in (tmp_path / "f").rglob("*.wav"))
    assert sheet["failed"][0]["id"] not in {r["id"] for s in SPLITS for r in rows[s]}
