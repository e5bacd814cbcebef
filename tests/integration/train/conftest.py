"""Fixtures for training tests: a handful of short synthetic clips and a job config.

The clips are tones + noise (seconds each to make), the model is the random toy
Whisper of ``tiny_model_dir``: the point is the machinery (Ray, checkpoints, export),
not the WER.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from wt_train_testlib import write_corpus


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("train_corpus")
    return {"train": write_corpus(root, 8, "train", 0), "eval": write_corpus(root, 4, "eval", 1)}
