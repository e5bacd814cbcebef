"""``whisper-tune submit`` / ``job ...`` against a real two-node Ray cluster on loopback.

Checks what users rely on: the project's code reaches every node (py_modules), env vars pass
by name and their values never appear in anything we print, token auth is required and found
from the environment, and the CLI's exit code is the job's status.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
SECRET = "s3cr3t-value-never-printed-7f1c"


def wt(
    args: list[str], env: dict[str, str], cwd: Path, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "whisper_tune.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_two_nodes_up(ray_cluster) -> None:  # type: ignore[no-untyped-def]
    nodes = ray_cluster.alive_nodes()
    assert len(nodes) == 2
    assert len({n["node_id"] for n in nodes}) == 2
    # Ray 2.60 `ray start` swaps 127.0.0.1 for this host's routable IP (resolve_ip_for_localhost):
    # both nodes still live on this one machine, and the dashboard/Jobs API stays on loopback.
    assert len({n["node_ip"] for n in nodes}) == 1
    assert ray_cluster.dashboard_url.startswith("http://127.0.0.1:")


def test_submit_ships_code_and_env_to_every_node(ray_cluster, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    wd = tmp_path / "wd"
    wd.mkdir()
    (wd / "note.txt").write_text("hello\n")
    env = dict(ray_cluster.env, WT_TEST_SECRET=SECRET)
    r = wt(
        ["submit", "--working-dir", str(wd), "--env-var", "WT_TEST_SECRET", "--",
         "cluster-info", "--require-env", "WT_TEST_SECRET", "--json"],
        env, tmp_path,
    )  # fmt: skip
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    assert SECRET not in out
    assert "SUCCEEDED" in r.stderr
    start = r.stdout.index("{")
    info = json.loads(r.stdout[start : r.stdout.rindex("}") + 1])
    assert len(info["nodes"]) == 2
    assert len({p["node_id"] for p in info["probes"]}) == 2
    for p in info["probes"]:
        # imported from the uploaded package, not from this checkout
        assert "runtime_resources" in p["whisper_tune"], p
        assert not p["whisper_tune"].startswith(str(REPO)), p
        assert p["env"] == {"WT_TEST_SECRET": "set"}
    job_id = r.stderr.split("submitted job ", 1)[1].split()[0]
    st = wt(["job", "status", job_id, "--json"], ray_cluster.env, tmp_path)
    assert st.returncode == 0, st.stderr
    data = json.loads(st.stdout)
    assert data["status"] == "SUCCEEDED"
    assert data["runtime_env"]["env_vars"]["WT_TEST_SECRET"] == "***"
    assert SECRET not in st.stdout + st.stderr
    logs = wt(["job", "logs", job_id], ray_cluster.env, tmp_path)
    assert logs.returncode == 0 and '"node_id"' in logs.stdout


def test_failed_job_exit_code_and_missing_env(ray_cluster, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # the job itself fails (variable not set on the cluster) -> submit exits 1
    r = wt(["submit", "--no-working-dir", "--", "cluster-info", "--require-env", "WT_NOT_SET_ANYWHERE"],
           ray_cluster.env, tmp_path)  # fmt: skip
    assert r.returncode == 1, r.stdout + r.stderr
    assert "FAILED" in r.stderr
    assert "WT_NOT_SET_ANYWHERE" in r.stdout + r.stderr
    # a name that is not set locally is refused before anything is sent
    r = wt(["submit", "--env-var", "WT_NOT_SET_ANYWHERE", "--", "cluster-info"], ray_cluster.env, tmp_path)
    assert r.returncode == 2 and "WT_NOT_SET_ANYWHERE: not set in this environment" in r.stderr


def test_auth_token_required_and_never_echoed(ray_cluster, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = {k: v for k, v in ray_cluster.env.items() if k not in ("RAY_AUTH_TOKEN", "RAY_AUTH_MODE")}
    env["HOME"] = str(tmp_path)  # no ~/.ray/auth_token either
    r = wt(["job", "list"], env, tmp_path)
    assert r.returncode == 2
    assert "RAY_AUTH_TOKEN" in r.stderr  # the hint says how to pass one
    wrong = dict(env, RAY_AUTH_TOKEN="0" * 64)
    r = wt(["job", "list"], wrong, tmp_path)
    assert r.returncode == 2 and "0" * 64 not in r.stdout + r.stderr
    # the token from a file, as for a remote cluster
    tok = tmp_path / "token"
    tok.write_text(ray_cluster.token + "\n")
    r = wt(["job", "list", "--auth-token-file", str(tok)], env, tmp_path)
    assert r.returncode == 0, r.stderr
    assert ray_cluster.token not in r.stdout + r.stderr


def test_stop_job(ray_cluster, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # the driver waits (up to 10 min) for 5 nodes that never come: RUNNING until stopped
    r = wt(["submit", "--no-working-dir", "--no-follow", "--submission-id", f"wt-stop-{time.time_ns()}",
            "--", "cluster-info", "--min-nodes", "5", "--wait", "600"],
           ray_cluster.env, tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    job_id = r.stdout.strip().splitlines()[-1]
    assert job_id.startswith("wt-stop-")
    deadline = time.monotonic() + 120
    while "RUNNING" not in (st := wt(["job", "status", job_id], ray_cluster.env, tmp_path)).stdout:
        assert "PENDING" in st.stdout and time.monotonic() < deadline, st.stdout + st.stderr
        time.sleep(2)
    s = wt(["job", "stop", job_id, "--wait", "60"], ray_cluster.env, tmp_path)
    assert s.returncode == 0, s.stdout + s.stderr
    st = wt(["job", "status", job_id], ray_cluster.env, tmp_path)
    assert "STOPPED" in st.stdout, st.stdout
    # following a stopped job exits 3
    lg = wt(["job", "logs", job_id, "--follow"], ray_cluster.env, tmp_path)
    assert lg.returncode == 3, lg.stdout + lg.stderr
