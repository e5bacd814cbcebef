"""Unit tests for whisper_tune.cluster.probe: submit's up-front preflight job (fake Jobs client)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any

import pytest

from whisper_tune.cluster import preflight
from whisper_tune.cluster.probe import (
    check_cluster_env,
    probe_entrypoint,
    probe_failure_message,
    require_cluster_env,
)
from whisper_tune.cluster.submit import PREFLIGHT_MODULE, SubmitOptions
from whisper_tune.errors import UserError


@dataclass
class _Status:
    value: str

    def is_terminal(self) -> bool:
        return self.value in ("SUCCEEDED", "FAILED", "STOPPED")

    def __str__(self) -> str:
        return self.value


@dataclass
class FakeClient:
    statuses: list[str]
    logs: str = ""
    message: str = ""
    submitted: list[dict[str, Any]] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)

    def submit_job(self, **kw: Any) -> str:
        self.submitted.append(kw)
        return kw.get("submission_id") or "raysubmit_1"

    def get_job_status(self, job_id: str) -> _Status:
        return _Status(self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0])

    def get_job_logs(self, job_id: str) -> str:
        return self.logs

    def get_job_info(self, job_id: str) -> Any:
        return type("Info", (), {"message": self.message})()

    def stop_job(self, job_id: str) -> bool:
        self.stopped.append(job_id)
        return True


def _opts(**kw: Any) -> SubmitOptions:
    return SubmitOptions(command=["--", "train", "--config", "x.yaml"], working_dir=None, **kw)


def test_probe_entrypoint_runs_only_the_preflight() -> None:
    entry = probe_entrypoint(["--", "train", "--config", "x.yaml"], ["my_callbacks"])
    assert shlex.split(entry) == ["python", "-m", PREFLIGHT_MODULE, "train", "--require", "my_callbacks"]
    assert "&&" not in entry and "whisper_tune.cli" not in entry


def test_probe_gets_the_real_jobs_runtime_env_and_passes() -> None:
    client = FakeClient(["PENDING", "RUNNING", "SUCCEEDED"])
    res = check_cluster_env(client, _opts(pip=["soundfile==0.14.0"], submission_id="job7"), poll_s=0.0)
    assert res.ok is True and res.status == "SUCCEEDED" and res.job_id == "job7-preflight"
    sent = client.submitted[0]
    assert sent["runtime_env"]["pip"] == ["soundfile==0.14.0"]
    assert any(p.endswith("whisper_tune") for p in sent["runtime_env"]["py_modules"])
    assert sent["metadata"] == {"whisper_tune": "preflight"}


def test_missing_modules_raise_the_preflights_advice() -> None:
    advice = preflight.advice("train", {"soundfile": "not installed"})
    client = FakeClient(["FAILED"], logs="some ray line\n" + advice + "\n")
    with pytest.raises(UserError) as err:
        require_cluster_env(client, _opts(), poll_s=0.0)
    text = str(err.value)
    assert text.startswith("whisper-tune preflight:") and "soundfile: not installed" in text
    assert "--pip 'soundfile==0.14.0'" in text and "image" in text
    assert "the job was not submitted" in text and "some ray line" not in text


def test_no_whisper_tune_on_the_cluster() -> None:
    logs = "/usr/bin/python: Error while finding module specification for ... (ModuleNotFoundError: No module named 'whisper_tune')"
    text = probe_failure_message(logs, "", include_package=False)
    assert (
        "cannot import whisper_tune" in text
        and "--no-package" in text
        and "--pip" in text
        and "image" in text
    )


def test_runtime_env_setup_failure() -> None:
    msg = "Job failed due to an application error: runtime_env setup failed: pip install nosuchpkg==9 failed"
    text = probe_failure_message("", msg, include_package=True)
    assert "runtime_env" in text and "nosuchpkg==9" in text


def test_no_answer_in_time_stops_the_probe_and_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    client = FakeClient(["PENDING"])
    res = require_cluster_env(client, _opts(), timeout_s=0.0, poll_s=0.0)
    assert res.ok is None and client.stopped == [res.job_id]
    assert "submitting anyway" in caplog.text
