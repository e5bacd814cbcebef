"""Finding runs: ``list_runs`` and ``whisper-tune runs``, ``find_run``, model specs -> ``best/``."""

from __future__ import annotations

from pathlib import Path

import pytest
from wt_runs_testutil import fake_run

from whisper_tune import runs
from whisper_tune.cli import main
from whisper_tune.errors import UserError
from whisper_tune.runs import RunDir, find_run, resolve_model_spec, run_of_model_spec


def test_list_runs_and_cli(tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake_run(tmp_path, tiny_model_dir, {2: 0.4, 4: 0.3}, name="alpha")
    (tmp_path / "not-a-run").mkdir()
    listed = runs.list_runs(tmp_path)
    assert [r.name for r in listed] == ["alpha"]
    assert listed[0].best_eval_wer == pytest.approx(0.3) and listed[0].steps == 4
    assert listed[0].status == "finished"
    assert listed[0].path == tmp_path / "alpha"
    assert listed[0].best_checkpoint == tmp_path / "alpha" / "checkpoint_000004"
    assert main(["runs", "--storage", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "alpha" in out and "0.3000" in out and "finished" in out
    assert main(["runs", "--storage", str(tmp_path / "nope")]) == 2


def test_list_runs_newest_first(tmp_path: Path) -> None:
    import os

    for i, name in enumerate(["old", "new", "mid"]):
        RunDir(tmp_path / name).write_status("finished")
        os.utime(tmp_path / name, ns=(10**18 + i, 10**18 + [0, 2, 1][i]))
    assert [r.name for r in runs.list_runs(str(tmp_path))] == ["new", "mid", "old"]


def test_best_unknown_run(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not found"):
        runs.resolve_run_dir("ghost", tmp_path)


def test_find_run_by_path_or_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    RunDir(tmp_path / "store" / "r1").write_status("finished")
    assert find_run(tmp_path / "store" / "r1") == RunDir(tmp_path / "store" / "r1")
    assert find_run("r1", tmp_path / "store").path == tmp_path / "store" / "r1"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").symlink_to(tmp_path / "store")
    assert find_run("r1").path == Path("runs") / "r1"  # default storage: ./runs
    assert runs.resolve_run_dir("r1", "store") == Path("store") / "r1"
    with pytest.raises(UserError, match="looked at"):
        find_run("ghost", "store")


def test_resolve_model_spec_local(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "checkpoint_000002").mkdir(parents=True)
    with pytest.raises(UserError, match=f"run `whisper-tune best {run}` first"):
        resolve_model_spec(str(run))  # a run without best/ yet
    (run / "best").mkdir()
    (run / "best" / "config.json").write_text("{}")
    assert resolve_model_spec(str(run)) == str(run / "best")
    assert resolve_model_spec(str(run / "best")) == str(run / "best")  # a model dir: unchanged
    assert run_of_model_spec(str(run)) == RunDir(run) and run_of_model_spec(str(run / "best")) is None
    (tmp_path / "plain").mkdir()
    for spec in ("tiny.en", "openai/whisper-small", str(tmp_path / "plain"), str(tmp_path / "nope")):
        assert resolve_model_spec(spec) == spec and run_of_model_spec(spec) is None
    # a run name resolves only under an explicit runs root
    (run / "config.yaml").write_text("a: 1\n")
    assert resolve_model_spec("run") == "run"
    assert resolve_model_spec("run", runs_root=tmp_path) == str(run / "best")
