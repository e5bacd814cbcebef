"""The local mirror of a run that lives in remote storage.

Why: a run whose ``run.storage_path`` is a URI is *staged*: the driver keeps a local mirror of the
run's small files (config, status, data reports, ``best/``, ``tensorboard/``) under
``storage.staging_dir``, Ray writes the checkpoints straight to the URI, and the mirror is pushed
after each stage. Which files make up "the small part of a run" is run-layout knowledge, so it
lives here and not in the filesystem layer. The layout in the bucket is the same as on a disk.
"""

from __future__ import annotations

from pathlib import Path

from whisper_tune import storage
from whisper_tune.runs.layout import RunDir

__all__ = ["RUN_DIRS_PUSHED", "RUN_FILES_PUSHED", "pull_run", "push_run"]

RUN_FILES_PUSHED = (RunDir.CONFIG_FILE, RunDir.STATUS_FILE, *RunDir.DATA_REPORT_FILES)
RUN_DIRS_PUSHED = (RunDir.BEST_DIR, RunDir.TENSORBOARD_DIR, RunDir.EVAL_DATA_REPORT_DIR, RunDir.EVAL_DIR)


def _is_small_file(name: str) -> bool:
    """A pushed file: the run's config, status, data reports, or an earlier ``config.<time>.yaml``."""
    return name in RUN_FILES_PUSHED or (name.startswith("config.") and name.endswith(".yaml"))


def pull_run(remote_run: str, local_run: Path) -> bool:
    """Copy a remote run's small files (not checkpoints) into ``local_run``; False if it does not exist."""
    if not storage.is_dir(remote_run):
        return False
    local_run.mkdir(parents=True, exist_ok=True)
    for name in storage.listdir(remote_run):
        if _is_small_file(name):
            (local_run / name).write_bytes(storage.read_bytes(storage.join(remote_run, name)))
    return True


def push_run(local_run: Path, remote_run: str) -> None:
    """Upload the run's small files and ``best/``, ``tensorboard/``... from the local mirror."""
    for f in sorted(local_run.iterdir()) if local_run.is_dir() else []:
        if f.is_file() and _is_small_file(f.name):
            storage.write_bytes(storage.join(remote_run, f.name), f.read_bytes())
        elif f.is_dir() and f.name in RUN_DIRS_PUSHED:
            storage.remove(storage.join(remote_run, f.name))
            storage.upload_dir(f, storage.join(remote_run, f.name))
