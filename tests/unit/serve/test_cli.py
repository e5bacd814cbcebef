"""Bind rules: loopback by default, anything else only with an API key from the environment."""

from __future__ import annotations

import argparse

import pytest

from whisper_tune.cli import main
from whisper_tune.errors import UserError
from whisper_tune.serve.cli import check_bind, is_loopback, register, serve_options


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
    monkeypatch.setenv("WT_TEST_KEY", "s3cret-0123456789")
    assert check_bind("0.0.0.0", "WT_TEST_KEY") == "s3cret-0123456789"
    assert check_bind("127.0.0.1", "WT_TEST_KEY") == "s3cret-0123456789"


def test_short_api_keys_are_refused_off_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    for short in ("k", "s3cret", "x" * 15):
        monkeypatch.setenv("WT_TEST_KEY", short)
        with pytest.raises(
            UserError, match=f"{len(short)}-character API key from WT_TEST_KEY: use at least 16"
        ):
            check_bind("0.0.0.0", "WT_TEST_KEY")
        assert check_bind("127.0.0.1", "WT_TEST_KEY") == short  # loopback: the caller's own machine
    monkeypatch.setenv("WT_TEST_KEY", "x" * 16)
    assert check_bind("10.1.2.3", "WT_TEST_KEY") == "x" * 16


def test_cli_refuses_public_bind_before_starting_anything(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["serve", "--model", "tiny.en", "--host", "0.0.0.0"])
    assert rc == 2
    assert "refusing to listen on 0.0.0.0" in capsys.readouterr().err


def test_cli_rejects_bad_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--model", "tiny.en", "--replicas", "0"]) == 2
    assert "--replicas must be >= 1" in capsys.readouterr().err


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    return parser.parse_args(["serve", "--model", "tiny.en", *argv])


def test_device_choice_reaches_serve_and_the_backend() -> None:
    """``--device cpu`` asks Serve for no GPU and keeps the backend on the CPU; auto leaves both open."""
    cpu = serve_options(_parse("--device", "cpu", "--backend", "ct2", "--compute-type", "int8"))
    assert cpu.num_gpus == 0.0 and cpu.backend_options.device == "cpu"
    assert cpu.backend == "ct2" and cpu.backend_options.compute_type == "int8"
    auto = serve_options(_parse())
    assert auto.num_gpus is None and auto.backend_options.device == "auto"
    assert auto.inline_model is None and auto.batch_wait_s == pytest.approx(0.01)
    knobs = serve_options(_parse("--inline-model", "off", "--batch-wait-ms", "40"))
    assert knobs.inline_model is False and knobs.batch_wait_s == pytest.approx(0.04)
    with pytest.raises(SystemExit):
        _parse("--device", "tpu")


def test_limits_and_gate_reach_the_options() -> None:
    from whisper_tune.inference import SpeechGate

    d = serve_options(_parse())
    assert (d.upload_timeout_s, d.upload_min_kb_s, d.upload_max_s, d.max_open_uploads) == (
        10.0,
        50.0,
        120.0,
        64,
    )
    assert d.decode_limits.max_duration_s == 7200 and d.decode_limits.max_decoded_mb == pytest.approx(460.8)
    assert d.backend_options.decode.gate == SpeechGate()
    o = serve_options(
        _parse(
            "--upload-timeout-s", "3", "--upload-min-kbps", "20", "--upload-max-s", "30",
            "--max-open-uploads", "8", "--max-audio-minutes", "10", "--max-decoded-mb", "50",
            "--speech-gate", "off",
        )
    )  # fmt: skip
    assert (o.upload_timeout_s, o.upload_min_kb_s, o.upload_max_s, o.max_open_uploads) == (3.0, 20.0, 30.0, 8)
    assert o.decode_limits.max_duration_s == 600 and o.decode_limits.max_decoded_mb == 50
    assert o.backend_options.decode.gate is None
    for flag in ("--upload-timeout-s", "--max-audio-minutes", "--max-decoded-mb"):
        with pytest.raises(UserError, match=f"{flag} must be a number > 0"):
            serve_options(_parse(flag, "0"))
    with pytest.raises(UserError, match="--max-open-uploads must be >= 1"):
        serve_options(_parse("--max-open-uploads", "0"))
