"""``check_data`` (a data-layer function, not a CLI one) and the processor ``data check --model`` builds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from wt_data_testutil import write_jsonl

from whisper_tune.cli import main as cli_main
from whisper_tune.data import DataReport, check_data
from whisper_tune.data.cli import load_processor
from whisper_tune.errors import DataError


def _manifest(tmp_path: Path, write_wav: Any) -> Path:
    write_wav(tmp_path / "a.wav", seconds=1.0, seed=1)
    rows = [{"audio_filepath": "a.wav", "text": "your balance"}, {"audio_filepath": "gone.wav", "text": "x"}]
    return write_jsonl(tmp_path / "m.jsonl", rows)


def test_check_data_is_exported_from_the_data_layer(tmp_path: Path, write_wav: Any, processor: Any) -> None:
    import whisper_tune.data.prepare as prepare

    assert check_data is prepare.check_data
    report = check_data(str(_manifest(tmp_path, write_wav)), processor=processor)
    assert isinstance(report, DataReport)
    assert report.usable == 1 and report.skipped["missing_file"] == 1


def test_default_processor_is_the_bundled_tiny_en_one() -> None:
    proc = load_processor()
    assert len(proc.tokenizer) == 51864 and proc.feature_extractor.feature_size == 80


def test_model_dirs_hf_and_ct2(tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from whisper_tune.models import export_ct2

    monkeypatch.setenv("WHISPER_TUNE_CACHE", str(tmp_path / "cache"))
    hf = load_processor(str(tiny_model_dir))
    ct2 = load_processor(str(export_ct2(tiny_model_dir, tmp_path / "ct2")))
    assert hf.tokenizer.get_vocab() == ct2.tokenizer.get_vocab()
    assert not (tmp_path / "cache" / "hf").exists()  # a CT2 dir is read, not converted, to count tokens
    with pytest.raises(DataError, match=r"--model .*: cannot load its processor"):
        load_processor(str(tmp_path))


def test_cli_data_check_with_model(
    tmp_path: Path, write_wav: Any, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    m = _manifest(tmp_path, write_wav)
    assert cli_main(["data", "check", str(m), "--json", "--model", str(tiny_model_dir)]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["usable"] == 1 and d["skipped"]["missing_file"]["count"] == 1
