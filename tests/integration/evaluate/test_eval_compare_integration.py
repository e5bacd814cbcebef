"""End to end: ``compare`` of two tiny random models (through the CLI, with a run dir), and the
real ``tiny.en`` on speech synthesized in the test (espeak-ng)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from whisper_tune.cli import main

pytestmark = pytest.mark.integration

SENTENCES = [
    ("Please freeze my debit card, it was stolen.", "banking", "phone"),
    ("Can you tell me my checking account balance?", "banking", "wide"),
    ("My overdraft fee was refunded last week.", "banking", "phone"),
    ("The weather is nice today, let's go for a walk.", "general", "wide"),
]
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    """A NeMo manifest of espeak-ng clips + domain_terms.txt beside it (auto-discovered)."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed (make setup installs it)")
    d = tmp_path_factory.mktemp("speech")
    rows = []
    for i, (text, domain, channel) in enumerate(SENTENCES):
        subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(d / f"c{i}.wav"), text], check=True, timeout=60)
        rows.append(
            {"audio_filepath": f"c{i}.wav", "text": text, "domain": domain, "channel": channel, "id": f"c{i}"}
        )
    (d / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (d / "domain_terms.txt").write_text("debit card\noverdraft\nchecking account\n")
    return d / "test.jsonl"


def test_compare_random_models_via_cli(speech, tmp_path, tiny_model_dir, capsys):
    from whisper_tune.models.random_init import save_random_whisper

    run = tmp_path / "run"
    save_random_whisper(run / "best", shape="test", seed=1)
    ckpt = run / "checkpoint_000000" / "checkpoint"
    ckpt.mkdir(parents=True)
    history = [
        {"loss": 3.0, "step": 5},
        {"eval_wer": 0.9, "eval_loss": 2.5, "step": 5},
        {"eval_wer": 0.8, "step": 10},
    ]
    (ckpt / "trainer_state.json").write_text(json.dumps({"log_history": history}))

    rc = main(
        [
            "compare",
            "--base",
            str(tiny_model_dir),
            "--tuned",
            str(run),
            "--data",
            str(speech),
            "--batch-size",
            "4",
            "--group-by",
            "domain,channel",
            "--max-new-tokens",
            "4",
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert re.search(r"^WER difference: ([+-]\d+\.\d{3} %|n/a \(base WER is 0\))$", out, re.M), out
    eval_dir = run / "eval"  # default --out for a run dir
    rep = json.loads((eval_dir / "report.json").read_text())
    assert rep["wer_difference_line"] in out
    assert rep["utterances_compared"] == 4
    assert rep["base"]["model"] == str(tiny_model_dir) and rep["tuned"]["model"] == str(run)
    assert set(rep["groups"]) == {"domain", "channel"}
    assert rep["base"]["domain_terms"]["occurrences"] == 3  # terms file found beside the manifest
    for png in ("wer_by_group.png", "training_curves.png"):
        assert (eval_dir / png).read_bytes()[:8] == PNG
    md = (eval_dir / "report.md").read_text()
    assert "## WER by domain" in md and "![Training curves](training_curves.png)" in md
    preds = (eval_dir / "tuned" / "predictions.jsonl").read_text().splitlines()
    assert [json.loads(x)["id"] for x in preds] == ["c0", "c1", "c2", "c3"]


def test_real_tiny_en_vs_random(speech, tmp_path, tiny_model_dir, capsys):
    """Real weights as the base: tiny.en transcribes espeak speech reasonably; a random "tuned"
    model is far worse, so the difference line must carry a plus sign."""
    from whisper_tune.evaluate import compare

    c = compare(
        "tiny.en",
        str(tiny_model_dir),
        str(speech),
        tmp_path / "cmp",
        batch_size=4,
        device="cpu",
        max_new_tokens=24,
    )
    # measured 0.05-0.25 on such clips; broken features/decoding would give ~1.0
    assert c.base.wer < 0.5, [u.hyp for u in c.base.utterances]
    assert c.tuned.wer > c.base.wer
    line = c.wer_difference_line()
    assert re.fullmatch(r"WER difference: \+\d+\.\d{3} %", line) and line in capsys.readouterr().out
    assert c.base.wer_ortho >= c.base.wer
    assert c.base.metrics()["timing"]["clips_per_second"] > 0
    assert (tmp_path / "cmp" / "report.md").read_text().count("debit card") >= 1
