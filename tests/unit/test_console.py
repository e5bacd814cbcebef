"""whisper_tune.console: numbers for people, quiet sessions at the fd level, stage displays."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import whisper_tune
from whisper_tune import console
from whisper_tune.console import format_duration, format_pct

SRC = str(Path(whisper_tune.__file__).resolve().parents[1])


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0.0 s"), (4.24, "4.2 s"), (42.4, "42 s"), (60, "1 min"), (312, "5 min 12 s"), (3725, "1 h 2 min"),
     (7200, "2 h"), (-3, "0.0 s"), (None, "n/a"), (float("nan"), "n/a")],
)  # fmt: skip
def test_format_duration(seconds: object, text: str) -> None:
    assert format_duration(seconds) == text


def test_format_pct() -> None:
    assert format_pct(0.14533622559652928) == "14.53 %"
    assert format_pct(1) == "100.00 %" and format_pct(0.5, 1) == "50.0 %"
    assert format_pct(None) == "n/a" and format_pct("x") == "n/a" and format_pct(True) == "n/a"


def _child(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


QUIET = """
    import logging, os, subprocess, sys, warnings
    from whisper_tune import console
    logging.basicConfig(level=logging.INFO)
    log_path, verbose = sys.argv[1], sys.argv[2] == "1"
    print("before")
    with console.quiet_session(log_path, verbose=verbose) as s:
        print("chatter from print")
        os.write(2, b"chatter from fd 2\\n")
        subprocess.run(["sh", "-c", "echo chatter from a child process"])
        logging.getLogger("ray.train").info("chatter from a library logger")
        warnings.warn("chatter from warnings")
        logging.getLogger("whisper_tune.x").warning("our own warning")
        st = console.stage("stage one", total=4, unit="steps")
        st.update(4)
        st.close("all good")
        console.say("said to the person")
    print("after")
"""


def test_quiet_session_sends_everything_but_ours_to_the_log(tmp_path: Path) -> None:
    log = tmp_path / "run" / "x.log"
    r = _child(QUIET, str(log), "0")
    assert r.returncode == 0, r.stderr
    terminal = r.stdout + r.stderr
    assert "chatter" not in terminal, terminal
    for line in ("before", "stage one ...", "done in", "all good", "said to the person", "after"):
        assert line in terminal
    assert "WARNING: our own warning" in r.stderr or "WARNING: our own warning" in r.stdout
    text = log.read_text()
    for what in ("print", "fd 2", "a child process", "a library logger", "warnings"):
        assert f"chatter from {what}" in text, what
    assert "said to the person" not in text
    assert len(terminal.splitlines()) <= 6


def test_verbose_session_keeps_the_terminal_and_logs_records(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    r = _child(QUIET, str(log), "1")
    assert r.returncode == 0, r.stderr
    terminal = r.stdout + r.stderr
    for what in ("print", "fd 2", "a child process", "a library logger"):
        assert f"chatter from {what}" in terminal, what
    assert "chatter from a library logger" in log.read_text()


def test_move_log_keeps_what_was_written(tmp_path: Path) -> None:
    code = """
        import os, sys
        from pathlib import Path
        from whisper_tune import console
        first, run = Path(sys.argv[1]), Path(sys.argv[2])
        with console.quiet_session(first, follow_run_dir=True) as s:
            os.write(1, b"early line\\n")
            s.run_dir_known(run)
            os.write(2, b"late line\\n")
        print(first.exists(), s.log_path)
    """
    first, run = tmp_path / "tmp.log", tmp_path / "run"
    r = _child(code, str(first), str(run))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", str(run / "train.log")]
    assert (run / "train.log").read_text().splitlines() == ["early line", "late line"]


def test_stage_without_a_session_is_silent(capsys: pytest.CaptureFixture[str]) -> None:
    st = console.stage("nothing", total=2)
    st.update(1)
    assert st.close() >= 0
    assert capsys.readouterr().out == ""


def test_plain_stage_lines_are_few(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(console, "_PLAIN_MIN_GAP_S", 0.0)
    st = console.Stage("training", unit="steps")
    st.t0 = time.monotonic() - 100  # 100 s in
    for step in range(1, 101):
        st.update(step, 200)
    assert st.eta_s() == pytest.approx(100, rel=0.05)
    st.close("best 12.00 %")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "training ..."
    assert lines[1].startswith("      25.00 % (50/200 steps), ETA ")
    assert lines[2].startswith("      50.00 % (100/200 steps), ETA 1 min")
    assert lines[-1].startswith("      done in 1 min") and lines[-1].endswith("; best 12.00 %")
    assert len(lines) == 4


def test_progress_from_log(capsys: pytest.CaptureFixture[str]) -> None:
    st = console.Stage("synthesis", unit="chunks")
    lg = logging.getLogger("wt_test_progress")
    with console.progress_from_log(st, "wt_test_progress", "rendered %d/%d chunks"):
        lg.info("rendered %d/%d chunks", 3, 10)
        lg.info("something else %d", 7)
    assert (st.done, st.total) == (3, 10)
    counted = console.Stage("evaluation", unit="passes")
    with console.progress_from_log(counted, "wt_test_progress", "%s: WER %.4f", total=2):
        for name in ("base", "tuned", "extra"):
            lg.info("%s: WER %.4f", name, 0.1)
    assert (counted.done, counted.total) == (3, 3)
    lg.info("rendered %d/%d chunks", 9, 10)  # after the block: not counted
    assert st.done == 3
