"""Unit tests for whisper_tune.jobs: token lookup, address, entrypoint, runtime_env, CLI parsing."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from whisper_tune import jobs
from whisper_tune.cli import build_parser
from whisper_tune.errors import UserError

TOKEN = "a" * 64


def test_token_lookup_order(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".ray").mkdir(parents=True)
    (home / ".ray" / "auth_token").write_text("from-default-file\n")
    path_file = tmp_path / "tok"
    path_file.write_text("from-token-path\n")
    explicit = tmp_path / "explicit"
    explicit.write_text(f"{TOKEN}\n")

    env = {"HOME": str(home)}
    t = jobs.find_auth_token(env=env)
    assert t is not None and t.value == "from-default-file" and "default token file" in t.source
    t = jobs.find_auth_token(env={**env, "RAY_AUTH_TOKEN_PATH": str(path_file)})
    assert t is not None and t.value == "from-token-path" and t.source.startswith("RAY_AUTH_TOKEN_PATH")
    t = jobs.find_auth_token(
        env={**env, "RAY_AUTH_TOKEN_PATH": str(path_file), "RAY_AUTH_TOKEN": " env-tok "}
    )
    assert t is not None and t.value == "env-tok" and t.source == "RAY_AUTH_TOKEN"
    assert jobs.find_auth_token(env={**env, "RAY_AUTH_MODE": "disabled", "RAY_AUTH_TOKEN": "x"}) is None
    t = jobs.find_auth_token(explicit, env={**env, "RAY_AUTH_MODE": "disabled"})
    assert t is not None and t.value == TOKEN
    assert jobs.find_auth_token(env={"HOME": str(tmp_path / "nohome")}) is None


def test_token_never_in_repr_and_bad_files(tmp_path: Path) -> None:
    t = jobs.AuthToken(TOKEN, "RAY_AUTH_TOKEN")
    assert TOKEN not in repr(t) and TOKEN not in str(t)
    assert t.headers() == {"Authorization": f"Bearer {TOKEN}"}
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(UserError, match="is empty"):
        jobs.find_auth_token(empty, env={})
    with pytest.raises(UserError, match="cannot read"):
        jobs.find_auth_token(tmp_path / "missing", env={})
    with pytest.raises(UserError, match="RAY_AUTH_TOKEN_PATH"):
        jobs.find_auth_token(env={"RAY_AUTH_TOKEN_PATH": str(tmp_path / "missing"), "HOME": str(tmp_path)})


def test_resolve_address() -> None:
    assert jobs.resolve_address("127.0.0.1:8265", env={}) == "http://127.0.0.1:8265"
    assert jobs.resolve_address("https://ray.example.com/", env={}) == "https://ray.example.com"
    assert jobs.resolve_address(None, env={"RAY_ADDRESS": "http://h:1"}) == "http://h:1"
    assert (
        jobs.resolve_address(None, env={"RAY_API_SERVER_ADDRESS": "h:2", "RAY_ADDRESS": "h:1"})
        == "http://h:2"
    )
    with pytest.raises(UserError, match="--address"):
        jobs.resolve_address(None, env={})
    with pytest.raises(UserError, match="Ray Client"):
        jobs.resolve_address("ray://h:10001", env={})
    with pytest.raises(UserError, match="expected http"):
        jobs.resolve_address("ftp://h:1", env={})
    # Ray on Vertex AI and other external-module addresses are passed to Ray untouched
    v = "vertex_ray://projects/p/locations/us-central1/persistentResources/r"
    assert jobs.resolve_address(v, env={}) == v


def test_build_entrypoint() -> None:
    ep = jobs.build_entrypoint(["--", "train", "--config", "my conf.yaml", "train.max_steps=5"])
    assert (
        ep
        == "python -m whisper_tune.cli train --config 'my conf.yaml' train.max_steps=5 run.ray_address=auto"
    )
    # an explicit address is kept; other commands are not touched
    ep = jobs.build_entrypoint(["train", "run.ray_address=10.0.0.1:6379"])
    assert ep.endswith("train run.ray_address=10.0.0.1:6379")
    assert jobs.build_entrypoint(["whisper-tune", "evaluate", "x"]) == "python -m whisper_tune.cli evaluate x"
    for bad in ([], ["--"], ["submit", "x"], ["job", "list"]):
        with pytest.raises(UserError):
            jobs.build_entrypoint(bad)


def test_runtime_env_ships_package_env_by_name_and_pip(tmp_path: Path) -> None:
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("# comment\njiwer==4.0.0  # pinned\n\nsoxr\n")
    opts = jobs.SubmitOptions(
        command=["train"],
        working_dir=str(tmp_path),
        env_vars=["HF_TOKEN", "HF_HUB_OFFLINE"],
        pip=[str(reqs), "extra-pkg"],
        excludes=["data/"],
        extra_runtime_env={"env_vars": {"KEEP": "1"}, "config": {"setup_timeout_seconds": 60}},
    )
    rt = jobs.build_runtime_env(opts, environ={"HF_TOKEN": "hf_secret", "HF_HUB_OFFLINE": "1"})
    assert rt["working_dir"] == str(tmp_path.resolve())
    assert {".venv", ".git", "data/"} <= set(rt["excludes"])
    assert rt["py_modules"] == [str(Path(jobs.__file__).resolve().parent)]
    assert rt["env_vars"]["HF_TOKEN"] == "hf_secret" and rt["env_vars"]["KEEP"] == "1"
    assert rt["env_vars"]["RAY_OVERRIDE_JOB_RUNTIME_ENV"] == "1"
    assert rt["pip"] == ["jiwer==4.0.0", "soxr", "extra-pkg"]
    assert rt["config"] == {"setup_timeout_seconds": 60}
    red = jobs.redact_runtime_env(rt)
    assert set(red["env_vars"].values()) == {"***"} and "hf_secret" not in repr(red)
    assert rt["env_vars"]["HF_TOKEN"] == "hf_secret"  # redaction copies


def test_runtime_env_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="HF_TOKEN=...: pass only the NAME") as ei:
        jobs.build_runtime_env(jobs.SubmitOptions(["train"], None, env_vars=["HF_TOKEN=hf_x"]), environ={})
    assert "hf_x" not in str(ei.value)
    with pytest.raises(UserError, match="MISSING: not set"):
        jobs.build_runtime_env(jobs.SubmitOptions(["train"], None, env_vars=["MISSING"]), environ={})
    with pytest.raises(UserError, match="not a directory"):
        jobs.build_runtime_env(jobs.SubmitOptions(["train"], str(tmp_path / "nope")), environ={})
    bad = tmp_path / "requirements.txt"
    bad.write_text("ok\n--index-url http://x\n")
    with pytest.raises(UserError, match=r"requirements.txt:2"):
        jobs.build_runtime_env(jobs.SubmitOptions(["train"], None, pip=[str(bad)]), environ={})
    rt = jobs.build_runtime_env(jobs.SubmitOptions(["train"], None, include_package=False), environ={})
    assert "py_modules" not in rt and "working_dir" not in rt


def test_exit_codes() -> None:
    assert [jobs.exit_code_for_status(s) for s in ("SUCCEEDED", "FAILED", "STOPPED")] == [0, 1, 3]


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
    assert jobs.follow_job(client, "j", out) == "SUCCEEDED"
    assert out.getvalue() == "line 1\nline 2\n"


def test_submit_job_passes_options_and_logs_no_values(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="whisper_tune.jobs")
    client = FakeClient([], ["SUCCEEDED"])
    opts = jobs.SubmitOptions(["train", "--config", "c.yaml"], None, env_vars=["SECRET_X"], submission_id="id-1",
                              entrypoint_num_cpus=0.5)  # fmt: skip
    assert jobs.submit_job(client, opts, environ={"SECRET_X": "v3ry-s3cret"}) == "raysubmit_1"
    assert client.submitted["submission_id"] == "id-1" and client.submitted["entrypoint_num_cpus"] == 0.5
    assert client.submitted["runtime_env"]["env_vars"]["SECRET_X"] == "v3ry-s3cret"
    assert "SECRET_X" in caplog.text and "v3ry-s3cret" not in caplog.text


def test_cli_parsing() -> None:
    parser = build_parser()
    args = parser.parse_args(
        ["submit", "--address", "http://127.0.0.1:8265", "--env-var", "A", "--env-var", "B", "--pip", "x",
         "--no-follow", "--", "train", "--config", "c.yaml", "--no-ray"]
    )  # fmt: skip
    assert args.cmd == ["--", "train", "--config", "c.yaml", "--no-ray"]
    assert args.env_var == ["A", "B"] and args.pip == ["x"] and args.no_follow
    args = parser.parse_args(["job", "logs", "raysubmit_1", "-f"])
    assert args.job_id == "raysubmit_1" and args.follow
    args = parser.parse_args(["job", "stop", "raysubmit_1", "--wait", "30"])
    assert args.wait == 30.0
    args = parser.parse_args(["cluster-info", "--require-env", "X", "--min-nodes", "2"])
    assert args.require_env == ["X"] and args.min_nodes == 2


def test_cli_user_errors_exit_2(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from whisper_tune.cli import main

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.delenv("RAY_API_SERVER_ADDRESS", raising=False)
    assert main(["submit", "--", "train"]) == 2
    assert "no Ray cluster address" in capsys.readouterr().err
    assert main(["submit", "--address", "127.0.0.1:1"]) == 2
    assert "nothing to run" in capsys.readouterr().err
    # nothing listens on port 1: a clear error, not a traceback
    assert main(["job", "list", "--address", "127.0.0.1:1"]) == 2
    assert "cannot use Ray Jobs at http://127.0.0.1:1" in capsys.readouterr().err
