"""Bad CTranslate2 files fail loudly, name the file and leave no cache behind."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pytest

from whisper_tune.models import Ct2FormatError, ensure_hf_dir, export_ct2, read_ct2_model
from whisper_tune.models.cache import cache_root
from whisper_tune.models.load import MARKER_FILE


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHISPER_TUNE_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def good_ct2(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_ct2(tiny_model_dir, tmp_path_factory.mktemp("good") / "ct2", "float16")


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _assert_no_cache_entry() -> None:
    hf = cache_root() / "hf"
    leftovers = [p for p in hf.iterdir() if not p.name.endswith(".lock")] if hf.exists() else []
    assert leftovers == [], f"partial cache left behind: {leftovers}"


def test_valid_file_parses(good_ct2: Path) -> None:
    m = read_ct2_model(good_ct2 / "model.bin")
    assert m.spec_name == "WhisperSpec"
    assert m.variables["encoder/conv1/weight"].shape == (64, 80, 3)
    assert m.resolve_name("decoder/projection/weight") == "decoder/embeddings/weight"
    assert m.num_parameters() > 0


def test_truncated_model_bin(good_ct2: Path, tmp_path: Path) -> None:
    bad = _copy(good_ct2, tmp_path / "bad")
    data = (bad / "model.bin").read_bytes()
    (bad / "model.bin").write_bytes(data[: len(data) // 2])
    with pytest.raises(Ct2FormatError) as exc:
        ensure_hf_dir(str(bad))
    msg = str(exc.value)
    assert str(bad / "model.bin") in msg
    assert "truncated" in msg and "expected at least" in msg and f"only {len(data) // 2} bytes" in msg
    _assert_no_cache_entry()


def test_trailing_garbage(good_ct2: Path, tmp_path: Path) -> None:
    bad = _copy(good_ct2, tmp_path / "bad")
    with open(bad / "model.bin", "ab") as f:
        f.write(b"\0" * 7)
    with pytest.raises(Ct2FormatError, match="7 unexpected bytes after the end"):
        ensure_hf_dir(str(bad))
    _assert_no_cache_entry()


def test_wrong_binary_version(good_ct2: Path, tmp_path: Path) -> None:
    bad = _copy(good_ct2, tmp_path / "bad")
    data = bytearray((bad / "model.bin").read_bytes())
    data[0:4] = struct.pack("<I", 99)
    (bad / "model.bin").write_bytes(bytes(data))
    with pytest.raises(Ct2FormatError, match=r"binary version 99, expected one of \(6,\)"):
        ensure_hf_dir(str(bad))
    _assert_no_cache_entry()


def test_byte_count_mismatch(good_ct2: Path, tmp_path: Path) -> None:
    bad = _copy(good_ct2, tmp_path / "bad")
    data = bytearray((bad / "model.bin").read_bytes())
    m = read_ct2_model(good_ct2 / "model.bin")
    first = next(iter(m.variables.values()))
    count_at = first.offset - 4  # the u32 byte count sits right before the data
    data[count_at : count_at + 4] = struct.pack("<I", first.nbytes + 2)
    (bad / "model.bin").write_bytes(bytes(data))
    with pytest.raises(Ct2FormatError, match=f"'{first.name}' declares {first.nbytes + 2} bytes"):
        read_ct2_model(bad / "model.bin")


def test_parts_in_wrong_order(good_ct2: Path, tmp_path: Path) -> None:
    data = (good_ct2 / "model.bin").read_bytes()
    half = len(data) // 2
    p1, p2 = tmp_path / "model.bin.part1", tmp_path / "model.bin.part2"
    p1.write_bytes(data[:half])
    p2.write_bytes(data[half:])
    assert (
        read_ct2_model([p1, p2]).variables.keys() == read_ct2_model(good_ct2 / "model.bin").variables.keys()
    )
    with pytest.raises(Ct2FormatError) as exc:
        read_ct2_model([p2, p1])
    assert "model.bin.part2 + " in str(exc.value)


def test_missing_tokenizer(good_ct2: Path, tmp_path: Path) -> None:
    bad = _copy(good_ct2, tmp_path / "bad")
    (bad / "tokenizer.json").unlink()
    with pytest.raises(Ct2FormatError, match="no tokenizer.json"):
        ensure_hf_dir(str(bad))
    _assert_no_cache_entry()


def test_vocabulary_mismatch(good_ct2: Path, tmp_path: Path) -> None:
    bad = _copy(good_ct2, tmp_path / "bad")
    import json

    vocab = json.loads((bad / "vocabulary.json").read_text(encoding="utf-8"))
    (bad / "vocabulary.json").write_text(json.dumps(vocab[:-3]), encoding="utf-8")
    with pytest.raises(Ct2FormatError, match="vocabulary has 51861 tokens but the model has 51864"):
        ensure_hf_dir(str(bad))
    _assert_no_cache_entry()


def test_not_whisper_spec(good_ct2: Path, tmp_path: Path) -> None:
    data = (good_ct2 / "model.bin").read_bytes()
    # replace the spec name "WhisperSpec" (same length) to keep the layout valid
    (tmp_path / "model.bin").write_bytes(data.replace(b"WhisperSpec\0", b"BertModSpec\0", 1))
    from whisper_tune.models.convert import ct2_to_hf

    with pytest.raises(Ct2FormatError, match="'BertModSpec' is not a Whisper model"):
        ct2_to_hf(read_ct2_model(tmp_path / "model.bin"))


def test_conversion_is_cached_and_idempotent(good_ct2: Path, tmp_path: Path) -> None:
    src = _copy(good_ct2, tmp_path / "src")
    first = Path(ensure_hf_dir(str(src)))
    marker = first / MARKER_FILE
    stamp = marker.stat().st_mtime_ns
    assert Path(ensure_hf_dir(str(src))) == first
    assert marker.stat().st_mtime_ns == stamp  # reused, not rewritten
    # a changed source file invalidates the cache; re-conversion replaces it atomically
    cfg = src / "config.json"
    cfg.write_text(cfg.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    again = Path(ensure_hf_dir(str(src)))
    assert again == first and marker.stat().st_mtime_ns != stamp
    entries = sorted(p.name for p in first.parent.iterdir() if not p.name.endswith(".lock"))
    assert entries == [first.name]  # no temp dirs left


def test_concurrent_loads_convert_once(
    good_ct2: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Several workers asking for the same model on a cold cache: one conversion, one dir."""
    import threading

    from whisper_tune.models import load

    calls: list[int] = []
    real = load.convert_ct2_to_hf

    def counting(*args: object, **kwargs: object) -> Path:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(load, "convert_ct2_to_hf", counting)
    src = _copy(good_ct2, tmp_path / "src")
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(ensure_hf_dir(str(src)))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3 and len(set(results)) == 1
    assert len(calls) == 1
