"""``best/README.md``: written at export, parsed back by huggingface_hub's ModelCard (offline),
numbers equal to best/metrics.json and the compare report; ``models push`` through a mocked
HfApi (no network)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import ModelCard
from wt_runs_testutil import fake_run

from whisper_tune import runs
from whisper_tune.cli import main
from whisper_tune.errors import UserError
from whisper_tune.runs.hub_push import push_best_to_hub
from whisper_tune.runs.model_card import write_model_card

SELECTION = {
    "checkpoint_step": 4,
    "alpha": 0.6,
    "eval_wer": 0.25,
    "guard_wer": 0.031,
    "base_eval_wer": 0.4,
    "base_guard_wer": 0.03,
    "guard_limit": 0.033,
    "rule": "no admissible checkpoint: base/tuned weight interpolation (WiSE-FT), largest admissible alpha",
    "trials": [],
    "warning": "NO checkpoint kept real-speech (guard) WER within the bound",
}
COMPARE = {
    "wer_difference_line": "WER difference: -37.500 %",
    "significance": {"diff": -0.15, "diff_low": -0.21, "diff_high": -0.09, "prob_improvement": 0.999},
    "utterances_compared": 120,
    "base": {"wer": 0.4, "data": "/data/calls/test.jsonl", "backend": "ct2", "compute_type": "int8"},
    "tuned": {"wer": 0.25, "data": "/data/calls/test.jsonl", "backend": "ct2", "compute_type": "int8"},
    "guard": None,
}


@pytest.fixture()
def run(tmp_path: Path, tiny_model_dir: Path) -> Path:
    r = fake_run(tmp_path, tiny_model_dir, {2: 0.9, 4: 0.2}, name="calls-v1")
    (r / "config.yaml").write_text(
        "model:\n  name: tiny.en\ndata:\n  train: hf://acme/bank-calls:train\n  eval: /data/calls/val.jsonl\n"
        "  guard: builtin\ntrain:\n  strategy: encoder\n"
    )
    (r / "data_report.json").write_text(json.dumps({"usable": 950, "usable_hours": 2.5, "skipped_total": 12}))
    return r


def _results(card: Any) -> dict[str, float]:
    return {e.dataset_split: e.metric_value for e in card.data.eval_results}


def test_export_writes_a_card_the_hub_parses(run: Path) -> None:
    best = runs.export_best(run)
    metrics = json.loads((best / "metrics.json").read_text())
    card = ModelCard.load(best / "README.md", ignore_metadata_errors=False)  # offline: a local file
    data = card.data
    assert data.base_model == "openai/whisper-tiny.en" and data.language == ["en"]
    assert data.pipeline_tag == "automatic-speech-recognition" and data.library_name == "transformers"
    assert data.license == "apache-2.0" and "whisper" in data.tags and data.datasets == ["acme/bank-calls"]
    assert data.model_name == "calls-v1"
    assert _results(card) == {"validation": pytest.approx(metrics["eval_wer"] * 100, abs=1e-4)}
    text = card.text
    assert "openai/whisper-tiny.en" in text and "usable clips: 950, 2.50 h (12 skipped" in text
    assert "/data/calls" not in text  # local manifests by name only
    assert f"| validation | n/a | {metrics['eval_wer'] * 100:.2f} % |" in text
    # the model dir still loads as before
    from transformers import WhisperForConditionalGeneration

    assert WhisperForConditionalGeneration.from_pretrained(best).config.model_type == "whisper"


def test_card_carries_guard_alpha_and_the_compare_ci(run: Path) -> None:
    best = runs.export_best(run)
    metrics = json.loads((best / "metrics.json").read_text())
    metrics.update(selection=SELECTION, interpolation_alpha=0.6)  # what train.finalize records
    (best / "metrics.json").write_text(json.dumps(metrics))
    (run / "eval").mkdir()
    (run / "eval" / "report.json").write_text(json.dumps(COMPARE))
    card = ModelCard.load(write_model_card(best), ignore_metadata_errors=False)
    assert _results(card) == pytest.approx(
        {"test": 25.0, "validation": SELECTION["eval_wer"] * 100, "guard": SELECTION["guard_wer"] * 100}
    )
    text = card.text
    assert "| test `test.jsonl` (120 utt.) | 40.00 % | 25.00 % | -15.00 pts [-21.00, -9.00] |" in text
    assert "WER difference: -37.500 %" in text and "P(improvement) 0.999" in text and "`ct2` int8" in text
    assert "WER 3.10 % vs the base model's 3.00 %; within the limit 3.30 %" in text
    assert "`0.6 x tuned + 0.4 x base`" in text and SELECTION["warning"] in text
    assert "| real-speech guard | 3.00 % | 3.10 % | |" in text
    # new weights (a re-export): the old comparison no longer describes them
    card = ModelCard.load(runs.export_best(run) / "README.md", ignore_metadata_errors=False)
    assert "test" not in _results(card) and "predates these weights" in card.text


def test_card_without_guard_or_compare_says_so(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs.export_best(run)
    assert main(["card", str(run)]) == 0
    path = Path(capsys.readouterr().out.strip())
    text = path.read_text()
    assert "No test-set comparison yet" in text and "No real-speech guard was scored" in text


class FakeApi:
    def __init__(self, fail: Exception | None = None) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail = fail

    def create_repo(self, repo_id: str, **kw: Any) -> Any:
        self.calls.append(("create_repo", {"repo_id": repo_id, **kw}))
        if self.fail is not None:
            raise self.fail
        return type("RepoUrl", (), {"url": f"https://huggingface.co/{repo_id}"})()

    def upload_folder(self, **kw: Any) -> Any:
        self.calls.append(("upload_folder", kw))
        return type("CommitInfo", (), {"oid": "abc123"})()


def test_push_uploads_best_with_its_card(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    best = runs.export_best(run)
    (best / "README.md").unlink()  # rewritten before the upload
    api = FakeApi()
    res = push_best_to_hub(run, "acme/whisper-calls", api=api)
    assert (res.url, res.commit) == ("https://huggingface.co/acme/whisper-calls", "abc123")
    (create, c_kw), (upload, u_kw) = api.calls
    assert create == "create_repo" and c_kw["private"] is True and c_kw["exist_ok"] is True
    assert (
        upload == "upload_folder"
        and u_kw["folder_path"] == str(best)
        and u_kw["repo_id"] == "acme/whisper-calls"
    )
    assert "short/*" in u_kw["ignore_patterns"] and "ct2/*" not in u_kw["ignore_patterns"]
    assert (best / "README.md").is_file()
    push_best_to_hub(best, "acme/whisper-calls", api=api, include_ct2=False, private=False)
    assert "ct2/*" in api.calls[-1][1]["ignore_patterns"] and api.calls[-2][1]["private"] is False


def test_push_errors_name_the_fix(
    run: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    runs.export_best(run)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    api = FakeApi()
    with pytest.raises(UserError, match="HF_HUB_OFFLINE is set"):
        push_best_to_hub(run, "acme/whisper-calls", api=api)
    assert api.calls == []  # nothing attempted
    monkeypatch.delenv("HF_HUB_OFFLINE")
    with pytest.raises(UserError, match=r"401 Client Error.*hf auth login"):
        push_best_to_hub(
            run, "acme/whisper-calls", api=FakeApi(RuntimeError("401 Client Error: Unauthorized"))
        )
    with pytest.raises(UserError, match="expected a Hub model id"):
        push_best_to_hub(run, "not a repo", api=api)
    # the CLI constructs huggingface_hub.HfApi itself: mocked here
    import huggingface_hub

    made: list[FakeApi] = []
    monkeypatch.setattr(huggingface_hub, "HfApi", lambda token=None: made.append(FakeApi()) or made[-1])
    assert main(["push", str(run), "--repo-id", "acme/whisper-calls", "--no-ct2"]) == 0
    assert capsys.readouterr().out.strip() == "https://huggingface.co/acme/whisper-calls"
    assert made and made[0].calls[0][1]["private"] is True
    assert main(["push", str(run / "nothing"), "--repo-id", "acme/x"]) == 2
