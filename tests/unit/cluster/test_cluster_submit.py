"""Unit tests for whisper_tune.cluster.submit: entrypoint, runtime_env, submitting and following."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

import whisper_tune
from whisper_tune.cluster import submit
from whisper_tune.errors import UserError


def test_build_entrypoint() -> None:
    ep = submit.build_entrypoint(["--", "train", "--config", "my conf.yaml", "train.max_steps=5"])
    assert ep == (
        "python -m whisper_tune.cluster.preflight train && "
        "python -m whisper_tune.cli train --config 'my conf.yaml' train.max_steps=5 run.ray_address=auto"
    )
    # an explicit address is kept; other commands are not touched
    ep = submit.build_entrypoint(["train", "run.ray_address=10.0.0.1:6379"])
    assert ep.endswith("train run.ray_address=10.0.0.1:6379")
    assert submit.build_entrypoint(["whisper-tune", "evaluate", "x"]) == (
        "python -m whisper_tune.cluster.preflight evaluate && python -m whisper_tune.cli evaluate x"
    )
    for bad in ([], ["--"], ["submit", "x"], ["job", "list"]):
        with pytest.raises(UserError):
            submit.build_entrypoint(bad)


def test_runtime_env_ships_package_env_by_name_and_pip(tmp_path: Path) -> None:
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("# comment\njiwer==4.0.0  # pinned\n\nsoxr\n")
    opts = submit.SubmitOptions(
        command=["train"],
        working_dir=str(tmp_path),
        env_vars=["HF_TOKEN", "HF_HUB_OFFLINE"],
        pip=[str(reqs), "extra-pkg"],
        excludes=["data/"],
        extra_runtime_env={"env_vars": {"KEEP": "1"}, "config": {"setup_timeout_seconds": 60}},
    )
    rt = submit.build_runtime_env(opts, environ={"HF_TOKEN": "hf_secret", "HF_HUB_OFFLINE": "1"})
    assert rt["working_dir"] == str(tmp_path.resolve())
    assert {".venv", ".git", "data/"} <= set(rt["excludes"])
    assert rt["py_modules"] == [str(Path(whisper_tune.__file__).resolve().parent)]
    assert rt["env_vars"]["HF_TOKEN"] == "hf_secret" and rt["env_vars"]["KEEP"] == "1"
    assert rt["env_vars"]["RAY_OVERRIDE_JOB_RUNTIME_ENV"] == "1"
    assert rt["pip"] == ["jiwer==4.0.0", "soxr", "extra-pkg"]
    assert rt["config"] == {"setup_timeout_seconds": 60}
    red = submit.redact_runtime_env(rt)
    assert set(red["env_vars"].values()) == {"***"} and "hf_secret" not in repr(red)
    assert rt["env_vars"]["HF_TOKEN"] == "hf_secret"  # redaction copies


def test_runtime_env_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="HF_TOKEN=...: pass only the NAME") as ei:
        submit.build_runtime_env(
            submit.SubmitOptions(["train"], None, env_vars=["HF_TOKEN=hf_x"]), environ={}
        )
    assert "hf_x" not in str(ei.value)
    with pytest.raises(UserError, match="MISSING: not set"):
        submit.build_runtime_env(submit.SubmitOptions(["train"], None, env_vars=["MISSING"]), environ={})
    with pytest.raises(UserError, match="not a directory"):
        submit.build_runtime_env(submit.SubmitOptions(["train"], str(tmp_path / "nope")), environ={})
    bad = tmp_path / "requirements.txt"
    bad.write_text("ok\n--index-url http://x\n")
    with pytest.raises(UserError, match=r"requirements.txt:2"):
        submit.build_runtime_env(submit.SubmitOptions(["train"], None, pip=[str(bad)]), environ={})
    rt = submit.build_runtime_env(submit.SubmitOptions(["train"], None, include_package=False), environ={})
    assert "py_modules" not in rt and "working_dir" not in rt


def test_exit_codes() -> None:
    assert [submit.exit_code_for_status(s) for s in ("SUCCEEDED", "FAILED", "STOPPED")] == [0, 1, 3]


class FakeStatus(str):
    def is_terminal(self) -> bool:
        return self in ("SUCCEEDED", "FAILED", "STOPPED")


class FakeClient:
    def __init__(self, chunks: list[str], statuses: list[str], fail_stream: bool = False) -> None:
        self.chunks, self.statuses, self.fail_stream = chunks, statuses, fail_stream
        self.submitted: dict[str, Any] = {}

    async def tail_job_logs(self, job_id: str):  # type: ignore[no-untyped-def]
        for c in self.chunks:
            yield c
        if self.fail_stream:
            raise RuntimeError("WebSocket connection closed unexpectedly")

    def get_job_status(self, job_id: str) -> FakeStatus:
        return FakeStatus(self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0])

    def submit_job(self, **kwargs: Any) -> str:
        self.submitted = kwargs
        return "raysubmit_1"


def test_follow_job_streams_then_waits_for_terminal_status() -> None:
    out = io.StringIO()
    client = FakeClient(["line 1\n", "line 2\n"], ["RUNNING", "SUCCEEDED"], fail_stream=True)
    assert submit.follow_job(client, "j", out) == "SUCCEEDED"
    assert out.getvalue() == "line 1\nline 2\n"


def test_submit_job_passes_options_and_logs_no_values(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="whisper_tune.cluster.submit")
    client = FakeClient([], ["SUCCEEDED"])
    opts = submit.SubmitOptions(["train", "--config", "c.yaml"], None, env_vars=["SECRET_X"], submission_id="id-1",
                              entrypoint_num_cpus=0.5)  # fmt: skip
    assert submit.submit_job(client, opts, environ={"SECRET_X": "v3ry-s3cret"}) == "raysubmit_1"
    assert client.submitted["submission_id"] == "id-1" and client.submitted["entrypoint_num_cpus"] == 0.5
    assert client.submitted["runtime_env"]["env_vars"]["SECRET_X"] == "v3ry-s3cret"
    assert "SECRET_X" in caplog.text and "v3ry-s3cret" not in caplog.text
