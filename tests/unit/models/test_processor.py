"""models.processor: the same processor from an HF dir, a CTranslate2 dir or a tokenizer file."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from whisper_tune.errors import ModelNotFoundError
from whisper_tune.models import Ct2FormatError, export_ct2, read_ct2_model
from whisper_tune.models.ct2_format import read_ct2_shapes
from whisper_tune.models.processor import (
    build_processor_from_tokenizer,
    bundled_tokenizer_file,
    ct2_n_mels,
    load_processor,
)


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHISPER_TUNE_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def ct2_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_ct2(tiny_model_dir, tmp_path_factory.mktemp("proc") / "ct2", "float16")


def test_bundled_tokenizer_completed_from_its_vocabulary() -> None:
    proc = build_processor_from_tokenizer(bundled_tokenizer_file())
    tok = proc.tokenizer
    assert len(tok) == 51864  # tiny.en's rows, the 1501 timestamp tokens included
    assert tok.convert_tokens_to_ids("<|notimestamps|>") == 50362
    assert tok.convert_tokens_to_ids("<|30.00|>") == 51863
    assert proc.feature_extractor.feature_size == 80
    assert (
        build_processor_from_tokenizer(bundled_tokenizer_file(), n_mels=128).feature_extractor.feature_size
        == 128
    )


def test_bundled_ct2_dir_loads_like_the_conversion() -> None:
    proc = load_processor(bundled_tokenizer_file().parent)  # model.bin + tokenizer.json + vocabulary.txt
    assert len(proc.tokenizer) == 51864 and proc.feature_extractor.feature_size == 80


def test_hf_and_ct2_dirs_give_the_same_processor(tiny_model_dir: Path, ct2_dir: Path) -> None:
    hf = load_processor(tiny_model_dir)
    ct2 = load_processor(ct2_dir)
    assert hf.tokenizer.get_vocab() == ct2.tokenizer.get_vocab()
    assert hf.tokenizer.all_special_ids == ct2.tokenizer.all_special_ids
    text = "<|startoftranscript|><|notimestamps|> Your balance is 42 pounds.<|endoftext|>"
    assert hf.tokenizer(text).input_ids == ct2.tokenizer(text).input_ids
    assert hf.feature_extractor.feature_size == ct2.feature_extractor.feature_size == 80
    assert load_processor(str(tiny_model_dir)).tokenizer.get_vocab() == hf.tokenizer.get_vocab()


def test_ct2_mel_bins_come_from_the_model_header(
    ct2_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    full = read_ct2_model(ct2_dir / "model.bin")
    assert read_ct2_shapes(ct2_dir / "model.bin") == {n: v.shape for n, v in full.variables.items()}
    d = shutil.copytree(ct2_dir, tmp_path / "ct2")
    (d / "preprocessor_config.json").unlink(missing_ok=True)
    assert ct2_n_mels(d) == 80
    (d / "preprocessor_config.json").write_text(json.dumps({"feature_size": 128}))
    with caplog.at_level(logging.WARNING, logger="whisper_tune.models.processor"):
        assert load_processor(d).feature_extractor.feature_size == 80
    assert "feature_size 128 ignored" in caplog.text


def test_truncated_header_names_the_file(ct2_dir: Path, tmp_path: Path) -> None:
    d = shutil.copytree(ct2_dir, tmp_path / "bad")
    data = (d / "model.bin").read_bytes()
    (d / "model.bin").write_bytes(data[:64])
    with pytest.raises(Ct2FormatError, match=r"model\.bin is truncated"):
        load_processor(d)
    (d / "model.bin").write_bytes(b"\x07\x00\x00\x00" + data[4:200])
    with pytest.raises(Ct2FormatError, match="binary version 7"):
        ct2_n_mels(d)


def test_bad_dirs_are_named(ct2_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="neither a Transformers Whisper dir"):
        load_processor(tmp_path)
    with pytest.raises(ModelNotFoundError, match="no such model directory"):
        load_processor(tmp_path / "missing")
    d = shutil.copytree(ct2_dir, tmp_path / "notok")
    (d / "tokenizer.json").unlink()
    with pytest.raises(ModelNotFoundError, match="has no tokenizer.json"):
        load_processor(d)
    with pytest.raises(ModelNotFoundError, match="no such tokenizer file"):
        build_processor_from_tokenizer(tmp_path / "tokenizer.json")
    (tmp_path / "tokenizer.json").write_text("{}")
    with pytest.raises(Ct2FormatError, match="not a Hugging Face tokenizer.json"):
        build_processor_from_tokenizer(tmp_path / "tokenizer.json")
