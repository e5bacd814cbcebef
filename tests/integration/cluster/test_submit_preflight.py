"""``submit``'s up-front probe job against a real Ray cluster on loopback (token auth on).

A module the cluster's Python cannot import is named on the user's terminal with both fixes
(the cluster image, or ``--pip`` / runtime_env), ``submit`` exits 2, and the real job is
never created; with everything importable the probe passes and the job runs.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

import whisper_tune

pytestmark = pytest.mark.integration

MISSING = "wt_no_such_module_4711"
SRC = str(Path(whisper_tune.__file__).resolve().parents[1])  # this checkout's package, not an install


def _wt(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "whisper_tune.cli", *args],
        env=dict(env, PYTHONPATH=SRC),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _job_ids(ray_cluster) -> set[str]:  # type: ignore[no-untyped-def]
    r = _wt(["job", "list"], ray_cluster.env, Path.cwd())  # "ID<TAB>STATUS<TAB>ENTRYPOINT" lines
    assert r.returncode == 0, r.stderr
    return {line.split("\t", 1)[0] for line in r.stdout.splitlines() if line.strip()}


def test_missing_module_stops_submit_with_advice(ray_cluster, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sid = f"wt-pre-{time.time_ns()}"
    r = _wt(["submit", "--no-working-dir", "--submission-id", sid, "--require-module", MISSING,
             "--", "cluster-info"], ray_cluster.env, tmp_path)  # fmt: skip
    err = r.stderr
    assert r.returncode == 2, r.stdout + err
    assert f"{MISSING}: not installed" in err
    assert "cluster image" in err and f"--pip '{MISSING}'" in err and "runtime-env" in err
    assert "the job was not submitted" in err and "Traceback" not in err
    ids = _job_ids(ray_cluster)
    assert f"{sid}-preflight" in ids and sid not in ids  # only the probe ran


def test_probe_passes_then_the_job_runs(ray_cluster, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sid = f"wt-pre-ok-{time.time_ns()}"
    r = _wt(["submit", "--no-working-dir", "--submission-id", sid, "--require-module", "json",
             "--", "cluster-info"], ray_cluster.env, tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    assert "checking the cluster's Python" in r.stderr and "SUCCEEDED" in r.stderr
    assert {sid, f"{sid}-preflight"} <= _job_ids(ray_cluster)
