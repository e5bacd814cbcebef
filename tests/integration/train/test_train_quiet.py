"""``whisper-tune train`` is quiet: a few progress lines on the terminal, Ray's chatter in RUN/train.log.

A real run (random toy Whisper, 4 steps, one Ray Train worker on a private local Ray) as a
user starts it, in a subprocess whose stdout/stderr are read as the terminal.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from wt_train_testlib import job_dict

import whisper_tune

pytestmark = pytest.mark.integration

SRC = str(Path(whisper_tune.__file__).resolve().parents[1])
CHATTER = ("RayTrainWorker", "TrainController", "Reporting training result", "it/s]", "Token authentication")


def _train(cfg: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=SRC, HF_HUB_OFFLINE="1")
    return subprocess.run(
        [sys.executable, "-m", "whisper_tune.cli", "train", "--config", str(cfg), *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def _config(tmp_path: Path, tiny_model_dir: Path, tiny_corpus: dict[str, Path]) -> Path:
    cfg = tmp_path / "job.yaml"
    cfg.write_text(yaml.safe_dump(job_dict(tiny_model_dir, tiny_corpus, tmp_path / "runs")))
    return cfg


def test_train_terminal_is_quiet_and_the_log_has_it_all(
    tmp_path: Path, tiny_model_dir: Path, tiny_corpus: dict[str, Path]
) -> None:
    r = _train(_config(tmp_path, tiny_model_dir, tiny_corpus))
    terminal = r.stdout + r.stderr
    assert r.returncode == 0, terminal[-4000:]
    lines = terminal.splitlines()
    assert len(lines) < 30, terminal
    for noise in CHATTER:
        assert noise not in terminal, noise
    assert lines[0] == "training ..." and any(line.startswith("      done in ") for line in lines)
    assert "export (guard check, WiSE-FT mix, CTranslate2) ..." in lines
    run = tmp_path / "runs" / "t"
    assert f"log:              {run / 'train.log'}" in lines
    assert "best eval WER:    " in terminal and " %" in terminal
    log = (run / "train.log").read_text(encoding="utf-8", errors="replace")
    for noise in ("RayTrainWorker", "TrainController", "Reporting training result"):
        assert noise in log, noise
    assert "whisper_tune.train.launch" in log  # our own INFO records too
    assert (run / "progress.json").is_file()


def test_train_verbose_shows_the_chatter(
    tmp_path: Path, tiny_model_dir: Path, tiny_corpus: dict[str, Path]
) -> None:
    r = _train(_config(tmp_path, tiny_model_dir, tiny_corpus), "--no-ray", "--verbose")
    terminal = r.stdout + r.stderr
    assert r.returncode == 0, terminal[-4000:]
    assert "whisper_tune.train.launch" in terminal  # the log records, on the terminal
    assert "Loading weights" in terminal  # transformers' own output
    assert "whisper_tune.train.launch" in (tmp_path / "runs" / "t" / "train.log").read_text()
