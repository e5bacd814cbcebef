"""The demo's terminal summary: people's numbers (no raw floats), the report.html link, the log."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from whisper_tune import demo


def test_summary_is_formatted_for_people(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo_out"

    def fake_run(cfg: demo.DemoConfig) -> demo.DemoResult:
        import logging
        import os

        os.write(2, b"(RayTrainWorker pid=1) Reporting training result 0.14533622559652928\n")
        # a library logger that propagates to the root (Ray's own "ray" logger keeps a stream
        # handler bound to the sys.stderr of its import, which an earlier test's capture may own)
        logging.getLogger("some_library.auth").warning("Token authentication is enabled")
        res = demo.DemoResult(
            out, out / "data", out / "runs" / "demo", out / "runs" / "demo" / "best", out / "report",
            0.30509745127436283, 0.14533622559652928,
            {"synthesis": 131.2, "model_pull": 0.01, "training": 675.4, "evaluation": 160.0, "total": 966.6},
        )  # fmt: skip
        res.ci_line = "WER difference, paired bootstrap (tuned - base): -15.98 pts [95 % CI -20.00, -10.00]"
        res.prompt_wer = 0.2551
        res.guard_wer = (0.0294, 0.0294)
        res.selection = {"rule": "WiSE-FT mix", "alpha": 0.5, "eval_wer": 0.0899}
        return res

    monkeypatch.setattr(demo, "run_demo", fake_run)
    args = argparse.Namespace(
        size="small",
        out=str(out),
        seed=0,
        workers=2,
        clips=0,
        epochs=0.0,
        set=None,
        verbose=False,
        loud=False,
    )
    assert demo._cmd(args) == 0
    captured = capfd.readouterr()
    terminal = captured.out + captured.err
    assert "RayTrainWorker" not in terminal and "Token authentication" not in terminal
    log = (out / "demo.log").read_text()
    assert "RayTrainWorker" in log and "Token authentication" in log
    assert not re.search(r"\d\.\d{5,}", terminal), terminal  # no raw floats
    assert "test WER  base 30.51 %  ->  tuned 14.53 %" in terminal
    assert "real speech (guard)  base 2.94 %  ->  tuned 2.94 %" in terminal
    assert f"report    {(out / 'report' / 'report.html').resolve().as_uri()}" in terminal
    assert f"log       {(out / 'demo.log').resolve()}" in terminal
    assert "timings   synthesis 2 min 11 s, model_pull 0.0 s, training 11 min 15 s" in terminal
    assert len(terminal.splitlines()) < 20


def test_the_progress_messages_the_demo_follows_still_exist() -> None:
    """The synthesis and evaluation bars follow these log messages (console.progress_from_log)."""
    import inspect

    from whisper_tune.data.synth import corpus
    from whisper_tune.evaluate import pipeline

    assert '"rendered %d/%d chunks"' in inspect.getsource(corpus)
    assert '"%s: WER %.4f over %d utterances, transcribed in %.1f s"' in inspect.getsource(pipeline)
    assert '"rendered %d/%d chunks"' in inspect.getsource(demo)
    import importlib

    from whisper_tune.train import guard_select

    launch = importlib.import_module("whisper_tune.train.launch")
    assert f'"{launch._ALPHA_SCORED}"' in inspect.getsource(guard_select)
