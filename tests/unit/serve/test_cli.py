"""Bind rules: loopback by default, anything else only with an API key from the environment."""

from __future__ import annotations

import pytest

from whisper_tune.cli import main
from whisper_tune.errors import UserError
from whisper_tune.serve.cli import check_bind, is_loopback


def test_loopback_detection() -> None:
    assert (
        is_loopback("127.0.0.1")
        and is_loopback("::1")
        and is_loopback("localhost")
        and is_loopback("127.0.0.2")
    )
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3") and not is_loopback("example.org")


def test_check_bind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WT_TEST_KEY", raising=False)
    assert check_bind("127.0.0.1", None) is None
    with pytest.raises(UserError, match="refusing to listen on 0.0.0.0 without an API key"):
        check_bind("0.0.0.0", None)
    with pytest.raises(UserError, match="WT_TEST_KEY: that environment variable is unset or empty"):
        check_bind("0.0.0.0", "WT_TEST_KEY")
    monkeypatch.setenv("WT_TEST_KEY", "s3cret")
    assert check_bind("0.0.0.0", "WT_TEST_KEY") == "s3cret"
    assert check_bind("127.0.0.1", "WT_TEST_KEY") == "s3cret"


def test_cli_refuses_public_bind_before_starting_anything(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["serve", "--model", "tiny.en", "--host", "0.0.0.0"])
    assert rc == 2
    assert "refusing to listen on 0.0.0.0" in capsys.readouterr().err


def test_cli_rejects_bad_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--model", "tiny.en", "--replicas", "0"]) == 2
    assert "--replicas must be >= 1" in capsys.readouterr().err
