"""Run storage that is a local directory *or* a URI (``s3://``, ``gs://``, any fsspec/pyarrow fs).

Why: on a cluster the workers' local disks are not shared, so Ray Train persists checkpoints to
``RunConfig(storage_path=...)`` which must be reachable from every node: object storage or NFS.
Everything after training (``best/``, evaluation, serving) must then read from the same place.
This module is the one place that turns a ``storage_path`` string into a pyarrow filesystem
(what Ray uses) and offers the handful of file operations the run-directory code needs, so
nothing else has to care whether the run lives in ``/data/runs`` or ``s3://bucket/runs``.
It is the filesystem layer only: what the files of a run *mean* (checkpoints, ``best/``,
status) is ``whisper_tune.runs``, which builds on this module.

S3-compatible endpoints (MinIO, Ceph, moto in the tests): pyarrow already honours
``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3``; ``WHISPER_TUNE_S3_ENDPOINT`` (or the
``endpoint_url`` argument) wins over those. Credentials always come from the standard AWS chain
(env, profile, instance role), never from here, so a pickled filesystem (sent by Ray to the
workers) carries no secret.

Remote model directories are *materialized*: copied once into a local cache, because
``from_pretrained``/CTranslate2 need a local path.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

import pyarrow.fs as pafs

from whisper_tune.errors import UserError
from whisper_tune.paths import cache_root

__all__ = [
    "StorageLocation",
    "is_uri",
    "s3_endpoint",
    "resolve",
    "ray_storage_kwargs",
    "join",
    "exists",
    "is_dir",
    "listdir",
    "read_bytes",
    "read_text",
    "write_bytes",
    "write_text",
    "read_json",
    "mtime_ns",
    "upload_dir",
    "download_dir",
    "materialize",
    "remove",
    "staging_dir",
    "fetch_fs_dir",
]

log = logging.getLogger(__name__)

_PYARROW_NATIVE = {"s3", "gs", "gcs", "hdfs", "viewfs", "file", "mock"}
_COMPLETE_MARKER = ".whisper_tune_complete"
_CHUNK = 8 * 1024 * 1024


def is_uri(path: str | os.PathLike[str]) -> bool:
    """True for ``scheme://...`` other than ``file://`` (a local path in disguise)."""
    s = str(path)
    if "://" not in s:
        return False
    scheme = s.split("://", 1)[0].lower()
    return bool(scheme) and scheme != "file" and scheme.replace("+", "").replace("-", "").isalnum()


def s3_endpoint(endpoint_url: str | None = None, env: Mapping[str, str] | None = None) -> str | None:
    """Custom S3 endpoint: argument, else ``WHISPER_TUNE_S3_ENDPOINT``, ``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL``."""
    env = os.environ if env is None else env
    return (
        endpoint_url
        or env.get("WHISPER_TUNE_S3_ENDPOINT")
        or env.get("AWS_ENDPOINT_URL_S3")
        or env.get("AWS_ENDPOINT_URL")
        or None
    )


@dataclass(frozen=True)
class StorageLocation:
    """A resolved storage path: ``filesystem`` + ``path`` on it, and the ``uri`` users wrote."""

    uri: str
    filesystem: pafs.FileSystem
    path: str

    @property
    def is_local(self) -> bool:
        return isinstance(self.filesystem, pafs.LocalFileSystem)


def _s3_filesystem(endpoint: str | None, env: Mapping[str, str]) -> pafs.S3FileSystem:
    kwargs: dict[str, Any] = {}
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if endpoint:
        parsed = urlparse(endpoint if "://" in endpoint else "https://" + endpoint)
        if not parsed.netloc:
            raise UserError(f"S3 endpoint {endpoint!r}: expected http(s)://HOST[:PORT]")
        kwargs["endpoint_override"] = parsed.netloc
        kwargs["scheme"] = parsed.scheme
        region = region or "us-east-1"  # S3-compatible servers ignore it; avoids a metadata lookup
    if region:
        kwargs["region"] = region
    return pafs.S3FileSystem(**kwargs)


def resolve(
    storage_path: str | os.PathLike[str],
    *,
    endpoint_url: str | None = None,
    env: Mapping[str, str] | None = None,
) -> StorageLocation:
    """Turn a local path or URI into (pyarrow filesystem, path). Unknown schemes go through fsspec."""
    env = os.environ if env is None else env
    s = str(storage_path)
    if not s:
        raise UserError("storage path is empty")
    if not is_uri(s):
        if s.startswith("file://"):
            s = s[len("file://") :]
        local = str(Path(s).expanduser().resolve())
        return StorageLocation(local, pafs.LocalFileSystem(), local)
    scheme, rest = s.split("://", 1)
    scheme = scheme.lower()
    if scheme in ("s3", "s3a"):
        bucket_path = rest.strip("/")
        if not bucket_path:
            raise UserError(f"storage path {s!r}: no bucket")
        return StorageLocation(
            f"s3://{bucket_path}", _s3_filesystem(s3_endpoint(endpoint_url, env), env), bucket_path
        )
    if scheme in _PYARROW_NATIVE:
        try:
            fs, path = pafs.FileSystem.from_uri(s)
        except Exception as exc:  # pyarrow raises ArrowInvalid/OSError with a clear text
            raise UserError(f"storage path {s!r}: {exc}") from None
        return StorageLocation(s.rstrip("/"), fs, path.rstrip("/"))
    try:
        import fsspec
    except ImportError as exc:  # pragma: no cover - fsspec is a dependency
        raise UserError(f"storage path {s!r}: scheme {scheme}:// needs fsspec") from exc
    try:
        ffs = fsspec.filesystem(scheme)
    except (ImportError, ValueError) as exc:
        raise UserError(f"storage path {s!r}: no filesystem for {scheme}:// ({exc})") from None
    path = ffs._strip_protocol(s)
    return StorageLocation(s.rstrip("/"), pafs.PyFileSystem(pafs.FSSpecHandler(ffs)), str(path).rstrip("/"))


def ray_storage_kwargs(
    storage_path: str | os.PathLike[str], *, endpoint_url: str | None = None
) -> dict[str, Any]:
    """Keyword arguments for ``ray.train.RunConfig``: ``storage_path`` (+ ``storage_filesystem``).

    Local paths are made absolute (Ray requires it). URIs get an explicit filesystem so a custom
    S3 endpoint or an fsspec-only scheme reaches every worker (the fs object is pickled by Ray).
    """
    loc = resolve(storage_path, endpoint_url=endpoint_url)
    if loc.is_local:
        return {"storage_path": loc.path}
    return {"storage_path": loc.path, "storage_filesystem": loc.filesystem}


def join(base: str | os.PathLike[str], *parts: str) -> str:
    """Join path parts onto a local path or a URI (always ``/`` inside URIs)."""
    b = str(base)
    if is_uri(b):
        return "/".join([b.rstrip("/"), *(p.strip("/") for p in parts if p)])
    return str(Path(b, *parts))


def _loc(path: str | os.PathLike[str] | StorageLocation) -> StorageLocation:
    return path if isinstance(path, StorageLocation) else resolve(path)


def exists(path: str | os.PathLike[str]) -> bool:
    loc = _loc(path)
    return bool(loc.filesystem.get_file_info(loc.path).type != pafs.FileType.NotFound)


def is_dir(path: str | os.PathLike[str]) -> bool:
    loc = _loc(path)
    return bool(loc.filesystem.get_file_info(loc.path).type == pafs.FileType.Directory)


def listdir(path: str | os.PathLike[str] | StorageLocation) -> list[str]:
    """Names (not paths) directly under ``path``, sorted; [] if it does not exist."""
    loc = _loc(path)
    infos = loc.filesystem.get_file_info(pafs.FileSelector(loc.path, allow_not_found=True, recursive=False))
    return sorted(PurePosixPath(i.path).name for i in infos)


def read_bytes(path: str | os.PathLike[str]) -> bytes:
    loc = _loc(path)
    try:
        with loc.filesystem.open_input_stream(loc.path) as f:
            return bytes(f.read())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None


def read_text(path: str | os.PathLike[str], encoding: str = "utf-8") -> str:
    return read_bytes(path).decode(encoding)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write a whole file (parents created). On object stores the write is atomic per object."""
    loc = _loc(path)
    parent = str(PurePosixPath(loc.path).parent) if not loc.is_local else str(Path(loc.path).parent)
    loc.filesystem.create_dir(parent, recursive=True)
    with loc.filesystem.open_output_stream(loc.path) as f:
        f.write(data)


def write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> None:
    write_bytes(path, text.encode(encoding))


def read_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A JSON object file (local or URI); {} when missing, unreadable or not a JSON object."""
    try:
        data = json.loads(read_bytes(path))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def mtime_ns(path: str | os.PathLike[str]) -> int:
    """Modification time of a file or directory in ns; 0 when unknown (object-store prefixes)."""
    loc = _loc(path)
    return int(loc.filesystem.get_file_info(loc.path).mtime_ns or 0)


def upload_dir(local_dir: str | os.PathLike[str], dest: str | os.PathLike[str]) -> str:
    """Copy a local directory tree to ``dest`` (local or URI); returns ``dest``."""
    src = Path(local_dir)
    if not src.is_dir():
        raise UserError(f"{src}: not a directory")
    loc = _loc(dest)
    loc.filesystem.create_dir(loc.path, recursive=True)
    pafs.copy_files(
        str(src.resolve()),
        loc.path,
        source_filesystem=pafs.LocalFileSystem(),
        destination_filesystem=loc.filesystem,
    )
    return str(dest)


def download_dir(src: str | os.PathLike[str], local_dir: str | os.PathLike[str]) -> Path:
    """Copy the tree at ``src`` into ``local_dir`` (created); raises FileNotFoundError if ``src`` is missing."""
    loc = _loc(src)
    if loc.filesystem.get_file_info(loc.path).type != pafs.FileType.Directory:
        raise FileNotFoundError(f"{src}: no such directory")
    out = Path(local_dir)
    out.mkdir(parents=True, exist_ok=True)
    pafs.copy_files(
        loc.path,
        str(out.resolve()),
        source_filesystem=loc.filesystem,
        destination_filesystem=pafs.LocalFileSystem(),
    )
    return out


def _cache_root() -> Path:
    return cache_root() / "remote"


def _files_under(loc: StorageLocation, exclude_top: tuple[str, ...] = ()) -> list[tuple[str, int, int]]:
    """(relative path, size, mtime ns) of every file under ``loc``, minus top-level names starting
    with one of ``exclude_top``; sorted. This listing is also the cache key's freshness stamp."""
    infos = loc.filesystem.get_file_info(pafs.FileSelector(loc.path, allow_not_found=True, recursive=True))
    base = PurePosixPath(loc.path)
    out = []
    for info in infos:
        if info.type != pafs.FileType.File:
            continue
        rel = PurePosixPath(info.path).relative_to(base)
        if exclude_top and rel.parts[0].startswith(exclude_top):
            continue
        mtime = int(info.mtime_ns) if info.mtime_ns is not None else 0
        out.append((rel.as_posix(), int(info.size or 0), mtime))
    return sorted(out)


def materialize(
    path: str | os.PathLike[str],
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    refresh: bool = False,
    exclude_top: tuple[str, ...] = (),
) -> Path:
    """A local directory with the contents of ``path``: the path itself if local, else a cached copy.

    The copy goes to a temp dir and is renamed into place with a completion marker holding the
    remote listing (names, sizes, mtimes), so an interrupted download is never mistaken for a
    model, and a remote directory that changed since (e.g. ``best/`` exported again) is fetched
    again while an unchanged one costs one listing call. ``exclude_top``: top-level name
    prefixes not copied (``("checkpoint_",)`` mirrors a run without its checkpoints).
    """
    s = str(path)
    if not is_uri(s):
        p = Path(s[len("file://") :] if s.startswith("file://") else s).expanduser()
        if not p.exists():
            raise FileNotFoundError(f"{p}: no such file or directory")
        return p
    loc = resolve(s)
    if loc.filesystem.get_file_info(loc.path).type != pafs.FileType.Directory:
        raise FileNotFoundError(f"{s}: no such directory")
    files = _files_under(loc, exclude_top)
    stamp = json.dumps({"uri": loc.uri, "files": files})
    root = Path(cache_dir) if cache_dir is not None else _cache_root()
    key = hashlib.sha256((s.rstrip("/") + "|" + ",".join(exclude_top)).encode()).hexdigest()[:16]
    name = PurePosixPath(urlparse(s).path).name or "root"
    target = root / f"{name}-{key}"
    marker = target / _COMPLETE_MARKER
    if not refresh and marker.is_file() and marker.read_text(encoding="utf-8") == stamp:
        return target
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
    try:
        for rel, _, _ in files:
            dest = tmp / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            with loc.filesystem.open_input_stream(f"{loc.path}/{rel}") as src, dest.open("wb") as out:
                while chunk := src.read(_CHUNK):
                    out.write(chunk)
        (tmp / _COMPLETE_MARKER).write_text(stamp, encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("copied %s to %s", s, target)
    return target


def remove(path: str | os.PathLike[str]) -> None:
    """Delete a file or directory tree (no error if missing)."""
    loc = _loc(path)
    info = loc.filesystem.get_file_info(loc.path)
    if info.type == pafs.FileType.Directory:
        loc.filesystem.delete_dir(loc.path)
    elif info.type == pafs.FileType.File:
        loc.filesystem.delete_file(loc.path)


# ----------------------------------------------------------------------------- staging and Ray paths


def staging_dir(storage_uri: str) -> Path:
    """Local mirror root for runs stored under ``storage_uri`` (one per URI, under the cache)."""
    key = hashlib.sha256(storage_uri.rstrip("/").encode()).hexdigest()[:16]
    root = cache_root() / "staging" / key
    root.mkdir(parents=True, exist_ok=True)
    return root


def fetch_fs_dir(storage_path: str, fs_path: str, local_parent: Path) -> Path:
    """Download ``fs_path`` (a path on ``storage_path``'s filesystem, e.g. Ray's checkpoint path) to
    ``local_parent/<basename>``; a local storage path is returned as is."""
    loc = resolve(storage_path)
    if loc.is_local:
        return Path(fs_path)
    target = local_parent / PurePosixPath(fs_path).name
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    pafs.copy_files(
        fs_path,
        str(target.resolve()),
        source_filesystem=loc.filesystem,
        destination_filesystem=pafs.LocalFileSystem(),
    )
    return target
