"""``evaluate``/``compare`` score the artifact served: a CTranslate2 dir runs on ct2 in serve's
compute type (never a float32 conversion of it), and the report names backend, compute type,
device and the directory loaded."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from whisper_tune.cli import main
from whisper_tune.evaluate.pipeline import served_backend
from whisper_tune.models.cache import hf_cache_dir, path_key


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHISPER_TUNE_CACHE", str(tmp_path / "cache"))


@pytest.fixture()
def ct2_dir(tiny_model_dir: Path, tmp_path: Path) -> Path:
    from whisper_tune.models import export_ct2

    return Path(export_ct2(str(tiny_model_dir), str(tmp_path / "best-ct2"), quantization="int8"))


@pytest.fixture()
def manifest(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(2):
        sf.write(tmp_path / f"c{i}.wav", (0.1 * rng.standard_normal(16000)).astype(np.float32), 16000)
        rows.append({"audio_filepath": f"c{i}.wav", "text": "hello there", "id": f"c{i}"})
    p = tmp_path / "test.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return p


def test_served_backend(tiny_model_dir: Path, ct2_dir: Path) -> None:
    assert served_backend(str(ct2_dir)) == "ct2"  # a CTranslate2 export runs on CTranslate2
    assert served_backend(str(tiny_model_dir)) == "hf"
    assert served_backend(str(ct2_dir), "hf") == "hf"  # an explicit choice is kept
    assert served_backend("tiny.en", "ct2") == "ct2"


def test_evaluate_scores_the_ct2_export_itself(
    ct2_dir: Path, manifest: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "eval"
    common = ["--data", str(manifest), "--device", "cpu", "--max-new-tokens", "4"]
    assert main(["evaluate", "--model", str(ct2_dir), "--out", str(out), *common]) == 0
    assert f"scored: ct2 int8 on cpu: {ct2_dir}" in capsys.readouterr().out
    m = json.loads((out / "metrics.json").read_text())
    assert (m["backend"], m["compute_type"], m["device"], m["artifact"]) == (
        "ct2",
        "int8",
        "cpu",
        str(ct2_dir),
    )
    assert (
        f"Scored: backend `ct2`, compute type `int8`, device `cpu`: `{ct2_dir}`."
        in (out / "report.md").read_text()
    )
    assert not hf_cache_dir(path_key(ct2_dir)).exists()  # never converted to a Transformers model
    # the compute type is the one asked for, as `serve --compute-type` would run it
    assert (
        main(
            [
                "evaluate",
                "--model",
                str(ct2_dir),
                "--out",
                str(out),
                "--compute-type",
                "int8_float32",
                *common,
            ]
        )
        == 0
    )
    assert json.loads((out / "metrics.json").read_text())["compute_type"] == "int8_float32"
    # hf on a CTranslate2 dir is what `serve --backend hf` would run: the report says it is a conversion
    assert main(["evaluate", "--model", str(ct2_dir), "--backend", "hf", "--out", str(out), *common]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert (m["backend"], m["compute_type"]) == ("hf", "float32")
    assert f"float32 conversion of the CTranslate2 dir {ct2_dir}" in m["artifact"]


def test_compare_runs_both_on_the_tuned_models_backend(
    tiny_model_dir: Path, ct2_dir: Path, manifest: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cmp"
    args = ["compare", "--base", str(tiny_model_dir), "--tuned", str(ct2_dir), "--data", str(manifest)]
    args += ["--out", str(out), "--device", "cpu", "--max-new-tokens", "4", "--guard", "none"]
    assert main([*args, "--prompt-baseline", "none"]) == 0
    printed = capsys.readouterr().out
    rep = json.loads((out / "report.json").read_text())
    for side in ("base", "tuned"):
        assert (rep[side]["backend"], rep[side]["compute_type"], rep[side]["device"]) == (
            "ct2",
            "int8",
            "cpu",
        )
        assert f"{side} scored: ct2 int8 on cpu" in printed
    assert rep["tuned"]["artifact"] == str(ct2_dir)
    md = (out / "report.md").read_text()
    assert f"(backend `ct2`, compute type `int8`, device `cpu`: `{ct2_dir}`)" in md


def test_compare_on_a_run_refreshes_its_model_card(
    tiny_model_dir: Path, manifest: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from huggingface_hub import ModelCard

    from whisper_tune.runs import export_best

    run = tmp_path / "calls-v1"
    ck = run / "checkpoint_000002"
    shutil.copytree(tiny_model_dir, ck / "checkpoint")
    (ck / "checkpoint" / "trainer_state.json").write_text(json.dumps({"global_step": 2}))
    (ck / "metrics.json").write_text(json.dumps({"step": 2, "eval_wer": 0.5}))
    (run / "config.yaml").write_text(
        f"model:\n  name: {tiny_model_dir}\ndata:\n  train: a.jsonl\n  eval: b.jsonl\n"
    )
    best = export_best(run)
    assert "test" not in {e.dataset_split for e in ModelCard.load(best / "README.md").data.eval_results}
    args = ["compare", "--base", str(tiny_model_dir), "--tuned", str(run), "--data", str(manifest)]
    args += ["--device", "cpu", "--max-new-tokens", "4", "--guard", "none", "--prompt-baseline", "none"]
    assert main(args) == 0
    assert f"model card: {best / 'README.md'}" in capsys.readouterr().out
    rep = json.loads((run / "eval" / "report.json").read_text())
    card = ModelCard.load(best / "README.md", ignore_metadata_errors=False)
    test = [e for e in card.data.eval_results if e.dataset_split == "test"]
    assert test and test[0].metric_value == pytest.approx(rep["tuned"]["wer"] * 100, abs=1e-4)
