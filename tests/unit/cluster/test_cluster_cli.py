"""Unit tests for whisper_tune.cluster.cli: parsing of the cluster commands, user errors exit 2."""

from __future__ import annotations

import pytest

from whisper_tune.cli import build_parser


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
