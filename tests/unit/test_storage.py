"""Unit tests for whisper_tune.storage (and paths.cache_root) on the local filesystem and fsspec's
in-memory filesystem."""

from __future__ import annotations

from pathlib import Path

import pyarrow.fs as pafs
import pytest

from whisper_tune import storage
from whisper_tune.errors import UserError


def test_is_uri_and_join() -> None:
    assert storage.is_uri("s3://b/p") and storage.is_uri("gs://b") and storage.is_uri("memory://x")
    assert (
        not storage.is_uri("/tmp/runs") and not storage.is_uri("runs") and not storage.is_uri("file:///tmp")
    )
    assert storage.join("s3://b/runs/", "r1", "/best/") == "s3://b/runs/r1/best"
    assert storage.join("/tmp/runs", "r1", "best") == str(Path("/tmp/runs/r1/best"))


def test_s3_endpoint_precedence() -> None:
    env = {
        "AWS_ENDPOINT_URL": "http://a",
        "AWS_ENDPOINT_URL_S3": "http://b",
        "WHISPER_TUNE_S3_ENDPOINT": "http://c",
    }
    assert storage.s3_endpoint(env=env) == "http://c"
    assert storage.s3_endpoint("http://d", env=env) == "http://d"
    assert storage.s3_endpoint(env={"AWS_ENDPOINT_URL": "http://a"}) == "http://a"
    assert storage.s3_endpoint(env={}) is None


def test_resolve_kinds(tmp_path: Path) -> None:
    loc = storage.resolve(tmp_path / "runs")
    assert loc.is_local and loc.path == str((tmp_path / "runs").resolve())
    assert storage.resolve(f"file://{tmp_path}").path == str(tmp_path.resolve())
    s3 = storage.resolve("s3://bucket/runs/", endpoint_url="http://127.0.0.1:9", env={})
    assert (
        isinstance(s3.filesystem, pafs.S3FileSystem)
        and s3.path == "bucket/runs"
        and s3.uri == "s3://bucket/runs"
    )
    kw = storage.ray_storage_kwargs("s3://bucket/runs", endpoint_url="http://127.0.0.1:9")
    assert kw["storage_path"] == "bucket/runs" and isinstance(kw["storage_filesystem"], pafs.S3FileSystem)
    assert storage.ray_storage_kwargs(tmp_path) == {"storage_path": str(tmp_path.resolve())}
    mem = storage.resolve("memory://wt/runs")
    assert isinstance(mem.filesystem, pafs.PyFileSystem) and not mem.is_local
    with pytest.raises(UserError, match="no bucket"):
        storage.resolve("s3://")
    with pytest.raises(UserError, match="no filesystem for nosuchfs://"):
        storage.resolve("nosuchfs://x/y")
    with pytest.raises(UserError, match="empty"):
        storage.resolve("")


@pytest.mark.parametrize("kind", ["local", "memory"])
def test_file_ops_roundtrip(kind: str, tmp_path: Path) -> None:
    base = str(tmp_path / "store") if kind == "local" else f"memory://wt-{tmp_path.name}"
    run = storage.join(base, "run1")
    storage.write_text(storage.join(run, "config.yaml"), "a: 1\n")
    storage.write_bytes(storage.join(run, "checkpoint_000004", "metrics.json"), b'{"step": 4}')
    assert (
        storage.exists(run) and storage.is_dir(run) and not storage.is_dir(storage.join(run, "config.yaml"))
    )
    assert storage.listdir(run) == ["checkpoint_000004", "config.yaml"]
    assert storage.listdir(storage.join(base, "nope")) == []
    assert storage.read_text(storage.join(run, "config.yaml")) == "a: 1\n"
    with pytest.raises(FileNotFoundError, match="no such file"):
        storage.read_bytes(storage.join(run, "missing.json"))

    local = tmp_path / "model"
    (local / "sub").mkdir(parents=True)
    (local / "config.json").write_text("{}")
    (local / "sub" / "w.bin").write_bytes(b"\x00" * 1000)
    storage.upload_dir(local, storage.join(run, "best"))
    assert storage.listdir(storage.join(run, "best")) == ["config.json", "sub"]
    got = storage.materialize(storage.join(run, "best"), cache_dir=tmp_path / "cache")
    assert (got / "sub" / "w.bin").read_bytes() == b"\x00" * 1000
    if kind == "memory":
        assert got.parent == tmp_path / "cache" and (got / ".whisper_tune_complete").is_file()
        # cached: a second call does not copy again, refresh does
        (got / "config.json").write_text("changed")
        assert (
            storage.materialize(storage.join(run, "best"), cache_dir=tmp_path / "cache") / "config.json"
        ).read_text() == "changed"
        fresh = storage.materialize(storage.join(run, "best"), cache_dir=tmp_path / "cache", refresh=True)
        assert (fresh / "config.json").read_text() == "{}"
    else:
        assert got == Path(storage.join(run, "best"))  # local: no copy
    storage.remove(storage.join(run, "best"))
    assert not storage.exists(storage.join(run, "best"))
    storage.remove(storage.join(run, "best"))  # missing: no error


def test_materialize_missing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        storage.materialize(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="no such directory"):
        storage.materialize("memory://wt-missing/x", cache_dir=tmp_path)
    assert not any((tmp_path).iterdir())  # no half-made cache entry left behind
    with pytest.raises(UserError, match="not a directory"):
        storage.upload_dir(tmp_path / "nope", "memory://wt-x/y")


def test_staging_dir_and_fetch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHISPER_TUNE_CACHE", str(tmp_path / "cache"))
    uri = f"memory://wt-stage-{tmp_path.name}/runs"
    root = storage.staging_dir(uri)
    assert root.is_dir() and root.parent == tmp_path / "cache" / "staging"
    assert storage.staging_dir(uri) == root and storage.staging_dir(uri + "/") == root
    remote = storage.join(uri, "r1")
    storage.write_text(storage.join(remote, "checkpoint_000004", "metrics.json"), "{}")  # as Ray would
    got = storage.fetch_fs_dir(
        uri, storage.resolve(storage.join(remote, "checkpoint_000004")).path, tmp_path / "dl"
    )
    assert got == tmp_path / "dl" / "checkpoint_000004" and (got / "metrics.json").read_text() == "{}"
    assert storage.fetch_fs_dir(str(tmp_path), "/some/local/ckpt", tmp_path) == Path("/some/local/ckpt")


def test_read_json_and_mtime(tmp_path: Path) -> None:
    base = f"memory://wt-json-{tmp_path.name}"
    storage.write_text(storage.join(base, "a.json"), '{"x": 1}')
    storage.write_text(storage.join(base, "list.json"), "[1]")
    storage.write_text(storage.join(base, "bad.json"), "{")
    assert storage.read_json(storage.join(base, "a.json")) == {"x": 1}
    for name in ("list.json", "bad.json", "missing.json"):
        assert storage.read_json(storage.join(base, name)) == {}
    (tmp_path / "l.json").write_text('{"y": 2}')
    assert storage.read_json(tmp_path / "l.json") == {"y": 2}
    assert storage.mtime_ns(tmp_path / "l.json") > 0


def test_cache_root_expands_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from whisper_tune.models.cache import cache_root as models_cache_root
    from whisper_tune.paths import cache_root

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("WHISPER_TUNE_CACHE", "~/wt-cache")
    assert cache_root() == tmp_path / "wt-cache" == models_cache_root()
    monkeypatch.delenv("WHISPER_TUNE_CACHE")
    assert cache_root() == tmp_path / ".cache" / "whisper-tune"
