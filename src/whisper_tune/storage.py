"""Run storage that is a local directory *or* a URI (``s3://``, ``gs://``, any fsspec/pyarrow fs).

Why: on a cluster the workers' local disks are not shared, so Ray Train persists checkpoints to
``RunConfig(storage_path=...)`` which must be reachable from every node: object storage or NFS.
Everything after training (``best/``, evaluation, serving) must then read from the same place.
This module is the one place that turns a ``storage_path`` string into a pyarrow filesystem
(what Ray uses) and offers the handful of file operations the run-directory code needs, so
nothing else has to care whether the run lives in ``/data/runs`` or ``s3://bucket/runs``.

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
import math
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
    "upload_dir",
    "download_dir",
    "materialize",
    "remove",
    "staging_dir",
    "pull_run",
    "push_run",
    "fetch_fs_dir",
    "localize",
    "read_json",
    "RemoteCheckpoint",
    "remote_checkpoints",
    "RemoteBest",
    "export_best_remote",
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
    return Path(os.environ.get("WHISPER_TUNE_CACHE", Path.home() / ".cache" / "whisper-tune")) / "remote"


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


# ----------------------------------------------------------------------------- remote run dirs
#
# A run whose storage is a URI is *staged*: the driver keeps a local mirror of the run dir's small
# files (config, status, data reports, best/, tensorboard/) under the cache, Ray writes the
# checkpoints straight to the URI, and the mirror is pushed after each stage. The run dir layout
# in the bucket is the same as on a local disk.

RUN_FILES_PUSHED = ("config.yaml", "status.json", "data_report.json", "data_report.md")
RUN_DIRS_PUSHED = ("best", "tensorboard", "eval_data_report", "eval")


def staging_dir(storage_uri: str) -> Path:
    """Local mirror root for runs stored under ``storage_uri`` (one per URI, under the cache)."""
    key = hashlib.sha256(storage_uri.rstrip("/").encode()).hexdigest()[:16]
    root = (
        Path(os.environ.get("WHISPER_TUNE_CACHE", Path.home() / ".cache" / "whisper-tune")) / "staging" / key
    )
    root.mkdir(parents=True, exist_ok=True)
    return root


def pull_run(remote_run: str, local_run: Path) -> bool:
    """Copy a remote run's small files (not checkpoints) into ``local_run``; False if it does not exist."""
    if not is_dir(remote_run):
        return False
    local_run.mkdir(parents=True, exist_ok=True)
    for name in listdir(remote_run):
        src = join(remote_run, name)
        if name in RUN_FILES_PUSHED or (name.startswith("config.") and name.endswith(".yaml")):
            (local_run / name).write_bytes(read_bytes(src))
    return True


def push_run(local_run: Path, remote_run: str) -> None:
    """Upload the run's small files and ``best/``, ``tensorboard/``... from the local mirror."""
    for f in sorted(local_run.iterdir()) if local_run.is_dir() else []:
        if f.is_file() and (
            f.name in RUN_FILES_PUSHED or (f.name.startswith("config.") and f.suffix == ".yaml")
        ):
            write_bytes(join(remote_run, f.name), f.read_bytes())
        elif f.is_dir() and f.name in RUN_DIRS_PUSHED:
            remove(join(remote_run, f.name))
            upload_dir(f, join(remote_run, f.name))


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


# ----------------------------------------------------------------------------- remote specs and runs
#
# ``evaluate``/``compare``/``serve``/``models`` accept a URI wherever they take a model dir or a
# run dir: :func:`localize` turns it into a local copy once, and everything after that is the
# local code path. ``runs`` and ``best`` read a remote run in place: only metadata is listed/read,
# and ``best`` downloads just the checkpoint it exports.

_MODEL_FILES = ("config.json", "model.bin")
_RUN_FILES = ("config.yaml", "status.json")
CHECKPOINT_PREFIX = "checkpoint_"


def _names(loc: StorageLocation) -> set[str]:
    try:
        return set(listdir(loc))
    except (OSError, ValueError):  # a file, or an unreadable prefix
        return set()


def localize(spec: str, cache_dir: str | os.PathLike[str] | None = None) -> str:
    """``spec`` unchanged if it is not a URI; else a local copy: a model dir (``config.json`` or
    CTranslate2 ``model.bin``) as is, a run dir with ``best/`` without its checkpoints.

    A remote run without ``best/`` is a UserError naming ``whisper-tune best URI``.
    """
    from whisper_tune.errors import ModelNotFoundError

    if not is_uri(spec):
        return spec
    loc = resolve(spec)
    names = _names(loc)
    if not names:
        raise ModelNotFoundError(f"{spec}: no such directory (or it is empty)")
    if any(n in names for n in _MODEL_FILES):
        return str(materialize(spec, cache_dir))
    if "best" in names:
        return str(materialize(spec, cache_dir, exclude_top=(CHECKPOINT_PREFIX,)))
    if any(n in names for n in _RUN_FILES) or any(n.startswith(CHECKPOINT_PREFIX) for n in names):
        raise UserError(f"{spec} is a training run without best/ yet: run `whisper-tune best {spec}` first")
    raise ModelNotFoundError(
        f"{spec}: neither a model directory (config.json or model.bin) nor a run directory with best/"
    )


@dataclass
class RemoteCheckpoint:
    """A checkpoint in remote storage (``uri``) and the metrics reported with it."""

    uri: str
    step: int
    metrics: dict[str, Any]

    @property
    def eval_wer(self) -> float | None:
        v = self.metrics.get("eval_wer")
        return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None

    def sort_key(self) -> tuple[float, int]:
        """Best first: lowest eval_wer, then the later step (as ``runs.CheckpointInfo``)."""
        wer = self.eval_wer
        return (wer if wer is not None else math.inf, -self.step)


def read_json(path: str) -> dict[str, Any]:
    """A JSON object file (local or URI); {} when missing or not a JSON object."""
    try:
        data = json.loads(read_bytes(path))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _remote_hf_complete(hf_ckpt: str) -> bool:
    """Object stores write each object whole, so a checkpoint is complete when its trainer state
    (written last by HF) parses and every weights file (or every shard its index names) exists.
    ``best`` re-checks the downloaded copy byte-wise with ``runs.list_checkpoints``."""
    names = _names(resolve(hf_ckpt))
    if "trainer_state.json" not in names or not read_json(join(hf_ckpt, "trainer_state.json")):
        return False
    for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if index in names:
            weight_map = read_json(join(hf_ckpt, index)).get("weight_map")
            return (
                isinstance(weight_map, dict)
                and bool(weight_map)
                and set(map(str, weight_map.values())) <= names
            )
    weights = ("model.safetensors", "adapter_model.safetensors", "pytorch_model.bin", "adapter_model.bin")
    return any(w in names for w in weights)


def remote_checkpoints(run_uri: str) -> list[RemoteCheckpoint]:
    """Complete checkpoints of a remote run, sorted by step; incomplete ones are logged and skipped."""
    out = []
    for name in listdir(run_uri):
        if not name.startswith(CHECKPOINT_PREFIX):
            continue
        uri = join(run_uri, name)
        metrics = read_json(join(uri, "metrics.json"))
        if not metrics or not _remote_hf_complete(join(uri, "checkpoint")):
            log.info("%s: incomplete checkpoint (still being written, or interrupted): ignored", uri)
            continue
        step = metrics.get("step")
        if not isinstance(step, int):
            digits = "".join(ch for ch in name.rsplit("_", 1)[-1] if ch.isdigit())
            step = int(digits) if digits else 0
        out.append(RemoteCheckpoint(uri, int(step), metrics))
    return sorted(out, key=lambda c: c.step)


@dataclass
class RemoteBest:
    """What :func:`export_best_remote` did: the local ``best/``, where it was pushed, its source."""

    local: Path
    remote: str
    checkpoint: str


def export_best_remote(
    run_uri: str,
    *,
    checkpoint: str | None = None,
    ct2: bool = False,
    quantization: str | None = None,
    work_dir: str | os.PathLike[str] | None = None,
) -> RemoteBest:
    """``whisper-tune best`` for a run in remote storage.

    Downloads the run's top-level files and only the chosen checkpoint (best eval_wer, or
    ``checkpoint``: a URI or a checkpoint name in the run) into a local work dir, exports
    ``best/`` there with ``runs.export_best``, replaces ``RUN_URI/best`` with it and deletes the
    downloaded checkpoint. A best candidate whose download fails the byte-wise completeness check
    is skipped for the next best.
    """
    from whisper_tune import runs

    run_uri = run_uri.rstrip("/")
    loc = resolve(run_uri)
    if loc.filesystem.get_file_info(loc.path).type != pafs.FileType.Directory:
        raise UserError(f"run {run_uri}: no such directory")
    name = PurePosixPath(loc.path).name
    key = hashlib.sha256(loc.uri.encode()).hexdigest()[:16]
    local = Path(work_dir) if work_dir is not None else _cache_root().parent / "remote-runs" / f"{name}-{key}"
    local.mkdir(parents=True, exist_ok=True)
    for old in local.glob(f"{CHECKPOINT_PREFIX}*"):
        shutil.rmtree(old, ignore_errors=True)
    top = loc.filesystem.get_file_info(pafs.FileSelector(loc.path, recursive=False))
    for info in top:
        if info.type == pafs.FileType.File:
            fname = PurePosixPath(info.path).name
            (local / fname).write_bytes(read_bytes(join(run_uri, fname)))
    if checkpoint is not None:
        uri = checkpoint if is_uri(checkpoint) else join(run_uri, PurePosixPath(checkpoint).name)
        if not is_dir(uri):
            raise UserError(f"checkpoint {uri}: no such directory")
        metrics = read_json(join(uri, "metrics.json"))
        candidates = [RemoteCheckpoint(uri, int(metrics.get("step", 0) or 0), metrics)]
    else:
        candidates = sorted(remote_checkpoints(run_uri), key=lambda c: c.sort_key())
        if not candidates:
            raise UserError(f"run {run_uri}: has no complete checkpoints yet")
    for cand in candidates:
        local_ckpt = local / PurePosixPath(cand.uri).name
        download_dir(cand.uri, local_ckpt)
        if checkpoint is not None or any(c.path == local_ckpt for c in runs.list_checkpoints(local)):
            break
        log.warning("%s: downloaded copy is incomplete: trying the next best checkpoint", cand.uri)
        shutil.rmtree(local_ckpt, ignore_errors=True)
    else:
        raise UserError(f"run {run_uri}: no checkpoint downloaded complete")
    try:
        best = runs.export_best(local, checkpoint=local_ckpt, ct2=ct2, quantization=quantization)
    finally:
        shutil.rmtree(local_ckpt, ignore_errors=True)
    info = read_json(str(best / "metrics.json"))
    info["source_checkpoint"] = cand.uri
    (best / "metrics.json").write_text(json.dumps(info, indent=2, default=str), encoding="utf-8")
    remote_best = join(run_uri, "best")
    remove(remote_best)
    upload_dir(best, remote_best)
    log.info("best/ of %s pushed to %s", cand.uri, remote_best)
    return RemoteBest(best, remote_best, cand.uri)
