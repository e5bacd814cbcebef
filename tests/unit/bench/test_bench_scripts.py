"""The benchmark scripts run end to end on CPU at toy size (``--device cpu``: a smoke run, not a
measurement), through the product code they time."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[3] / "bench"
sys.path.insert(0, str(BENCH))


@pytest.fixture(autouse=True)
def _keep_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_train_throughput_runs_the_trainer_path(tmp_path: Path) -> None:
    import train_throughput

    out = tmp_path / "tt.json"
    argv = ["--device", "cpu", "--shapes", "test", "--recipes", "seed+bs2,short:fast+bs2"]
    argv += ["--steps", "1", "--warmup", "1", "--workers", "0", "--out", str(out)]
    assert train_throughput.main(argv) == 0
    report = json.loads(out.read_text())
    assert report["complete"] and not report["errors"] and "Seq2SeqTrainer" in report["timed_path"]
    seed, short = report["results"]
    assert (seed["recipe"], seed["attn"], seed["gradient_checkpointing"]) == ("seed+bs2", "eager", True)
    assert short["recipe"] == "fast-short+bs2" and short["n_frames"] == 864 and short["attn"] == "sdpa"
    assert short["steps_timed"] == 1 and short["samples_per_s"] > 0 and short["mfu"] is None


def test_train_encoder_cache_times_the_product_cache(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import train_encoder_cache

    out = tmp_path / "ec.json"
    assert (
        train_encoder_cache.main(
            ["--shape", "test", "--batch", "2", "--reps", "1", "--threads", "1", "--out", str(out)]
        )
        == 0
    )
    found = json.loads(out.read_text())["s_per_sample"]
    assert set(found) >= {"full", "frozen", "encode", "cached"} and all(v > 0 for v in found.values())
