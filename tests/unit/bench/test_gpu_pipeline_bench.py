"""The pipeline-vs-seed benchmark's CPU-side parts: the corpus it makes, how it reads a run's files
and how it projects the seed recipe's time-to-model (the GPU parts run on the GPU machine only)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench"
sys.path.insert(0, str(BENCH))


def test_corpus_has_the_stated_clips(tmp_path: Path) -> None:
    import soundfile as sf

    import gpu_pipeline_vs_seed as g

    corpus = g.make_corpus(tmp_path, 12, 3)
    rows = [json.loads(line) for line in corpus["train"].read_text().splitlines()]
    assert len(rows) == 12 and len(corpus["eval"].read_text().splitlines()) == 3
    for r in rows:
        assert 2.0 <= r["duration"] <= 7.5 and 3 <= len(r["text"].split()) <= 12
        info = sf.info(r["audio_filepath"])
        assert info.samplerate == 16000 and info.duration == pytest.approx(r["duration"], abs=1e-3)


def test_run_files_are_read_and_summarised(tmp_path: Path) -> None:
    from types import SimpleNamespace

    import gpu_pipeline_vs_seed as g

    run = tmp_path / "runs" / "p"
    (run / "checkpoint_000120" / "checkpoint").mkdir(parents=True)
    (run / "checkpoint_manager_snapshot.json").write_text("{}")  # a file that also matches checkpoint_*
    (run / "fast_path.json").write_text(
        json.dumps(
            {"throughput": {"step_samples_per_s": 600.0, "wall_samples_per_s": 580.0, "peak_mem_gib": 20}}
        )
    )
    (run / "plan.json").write_text(json.dumps({"choices": {"encoder_frames": {"value": 816}}}))
    (run / "checkpoint_000120" / "metrics.json").write_text(json.dumps({"epoch": 3.0, "eval_wer": 1.0}))
    hist = {"log_history": [{"step": 120, "eval_runtime": 3.0, "eval_samples_per_second": 166.0}]}
    (run / "checkpoint_000120" / "checkpoint" / "trainer_state.json").write_text(json.dumps(hist))
    (run / "best").mkdir()
    (run / "best" / "config.json").write_text("{}")
    found = g.read_run(run, (run / "best" / "config.json").stat().st_mtime - 60.0, {"rc": 0})
    assert found["time_to_model_s"] == pytest.approx(60.0, abs=0.2) and found["last_metrics"]["epoch"] == 3.0
    assert (
        found["evals"] == hist["log_history"] and found["plan"]["choices"]["encoder_frames"]["value"] == 816
    )
    cfg = SimpleNamespace(
        d_model=768, encoder_layers=12, decoder_layers=12, vocab_size=51864, max_source_positions=1500
    )
    s = g.pipeline_summary(found, 5000, 989e12, cfg)
    assert s["n_frames"] == 816 and s["wall_over_step"] == pytest.approx(580 / 600, abs=1e-3)
    assert s["train_s_from_wall_rate"] == pytest.approx(15000 / 580, abs=0.1)
    assert s["eval_share_of_training"] == pytest.approx(3.0 / (15000 / 580), abs=1e-3)
    assert 0 < s["mfu_step"] < 1


def test_seed_projection_counts_steps_and_evaluations() -> None:
    import gpu_pipeline_vs_seed as g

    p = g.project_seed({"wall_samples_per_s": 40.0, "eval_samples_per_s": 5.0}, 5000, 500, 3.0, 100.0)
    assert p["projected"] and p["steps"] == 939 and p["evaluations"] == 5  # eval at 200..800 + final
    assert p["time_to_model_s"] == pytest.approx(15000 / 40 + 5 * 100 + 100)
