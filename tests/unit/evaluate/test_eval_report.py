"""Breakdowns, worst utterances, the WER difference line, report files (no model needed)."""

from __future__ import annotations

import json
import re

import pytest

from whisper_tune.errors import DataError
from whisper_tune.evaluate import (
    ComparisonResult,
    format_wer_difference,
    relative_change_pct,
    score_texts,
    write_comparison,
    write_evaluation,
)
from whisper_tune.evaluate.plots import read_training_curves
from whisper_tune.evaluate.report import resolve_group_fields
from wt_eval_testutil import Item

LINE = re.compile(r"^WER difference: [+-]\d+\.\d{3} %$")
PNG = b"\x89PNG\r\n\x1a\n"


ITEMS = [
    Item("u1", "send money with Zelle", {"intent": "transfer", "channel": "phone"}, origin="t.jsonl:1"),
    Item("u2", "what is my APR", {"intent": "rates", "channel": "wide"}, origin="t.jsonl:2"),
    Item("u3", "freeze my card", {"intent": "card", "channel": "phone"}, origin="t.jsonl:3"),
    Item("u4", "hello there", {"intent": "general", "channel": "wide"}, origin="t.jsonl:4"),
]
BASE = ["send money with else", "what is my app or", "for use my card", "hello there"]
TUNED = ["send money with Zelle", "what is my APR", "freeze my card", "hello where"]
TERMS = ["Zelle", "APR"]


def _cmp(group_by=("intent", "channel")) -> ComparisonResult:
    kw = dict(group_by=list(group_by), terms=TERMS, seconds=2.0)
    return ComparisonResult(
        base=score_texts("base", "t.jsonl", ITEMS, BASE, **kw),
        tuned=score_texts("tuned", "t.jsonl", ITEMS, TUNED, **kw),
    )


def test_wer_difference_line_format():
    assert format_wer_difference(0.2, 0.1) == "WER difference: -50.000 %"
    assert format_wer_difference(0.1, 0.2) == "WER difference: +100.000 %"
    assert format_wer_difference(0.3, 0.3) == "WER difference: +0.000 %"
    assert format_wer_difference(0.0, 0.0) == "WER difference: +0.000 %"
    assert format_wer_difference(0.0, 0.1) == "WER difference: n/a (base WER is 0)"
    assert format_wer_difference(0.29, 0.2) == "WER difference: -31.034 %"
    for b, t in [(0.5, 0.123), (0.07, 0.5), (1.0, 1.0)]:
        assert LINE.match(format_wer_difference(b, t))
    assert relative_change_pct(0.0, 0.5) is None


def test_comparison_numbers_by_hand():
    c = _cmp()
    # base: else(1) + app,+or(2) + for,+use(2) + 0 = 5 of 13 words; tuned: there->where = 1 of 13
    assert c.base.wer == pytest.approx(5 / 13)
    assert c.tuned.wer == pytest.approx(1 / 13)
    assert c.wer_difference_pct == pytest.approx(-80.0)
    assert c.wer_difference_line() == "WER difference: -80.000 %"
    g = c.group_table()
    assert g["channel"]["phone"] == {
        "n": 2,
        "base_wer": 3 / 7,
        "tuned_wer": 0.0,
        "relative_change_pct": -100.0,
    }
    assert g["channel"]["wide"]["base_wer"] == pytest.approx(2 / 6)
    assert g["channel"]["wide"]["tuned_wer"] == pytest.approx(1 / 6)
    assert g["intent"]["general"]["relative_change_pct"] is None  # base 0 -> tuned > 0
    assert set(g["intent"]) == {"transfer", "rates", "card", "general"}
    # domain terms: base found none, tuned both
    assert (c.base.domain_terms.found, c.tuned.domain_terms.found, c.tuned.domain_terms.occurrences) == (
        0,
        2,
        2,
    )


def test_worst_and_regressions():
    c = _cmp()
    worst = c.base.worst(2)
    assert [u.id for u in worst] == ["u3", "u2"]  # 2/3 before 2/4
    # "freeze" -> "for use": one substitution + one insertion (which word is "inserted" is a tie)
    assert sorted(e.kind for e in worst[0].score.errors) == ["insertion", "substitution"]
    assert [t.id for _, t in c.worst()] == ["u4"]  # only utterance the tuned model gets wrong
    n, reg = c.regressions()
    assert n == 1 and reg[0][1].id == "u4"
    d = c.to_dict()
    assert (d["improved"], d["regressed"]) == (3, 1)
    assert d["worst"][0]["tuned_errors"] == ["there -> where"]
    assert c.base.top_substitutions()[0][2] == 1


def test_group_fields_auto_and_explicit():
    metas = [
        {"intent": "a", "channel": "phone", "snr_db": 10.5, "voice": "v1", "uid": "x1"},
        {"intent": "a", "channel": "wide", "snr_db": 3.0, "voice": "v2", "uid": "x2"},
        {"intent": "b", "channel": "phone", "snr_db": 7.0, "voice": "v1", "uid": "x3"},
    ]
    # floats and per-utterance-unique fields are not auto groups
    assert resolve_group_fields(metas, None) == ["channel", "intent", "voice"]
    assert resolve_group_fields(metas, ["uid"]) == ["uid"]
    with pytest.raises(DataError, match="speaker.*available: channel, intent, snr_db, uid, voice"):
        resolve_group_fields(metas, ["speaker"])


def test_missing_group_value_is_its_own_group():
    items = [
        Item("a", "x y", {"channel": "phone"}),
        Item("b", "x y", {}),
        Item("c", "x", {"channel": "phone"}),
    ]
    r = score_texts("m", "d", items, ["x y", "x", "x"], group_by=["channel"])
    assert r.groups()["channel"]["(missing)"]["wer"] == pytest.approx(0.5)
    assert r.groups()["channel"]["phone"]["n"] == 2


def test_comparison_files_written_and_parse(tmp_path):
    c = write_comparison(_cmp(), tmp_path / "out")
    out = tmp_path / "out"
    rep = json.loads((out / "report.json").read_text())
    assert rep["wer_difference_line"] == "WER difference: -80.000 %"
    assert rep["wer_difference_pct"] == pytest.approx(-80.0)
    assert rep["base"]["wer"] == pytest.approx(5 / 13) and rep["tuned"]["utterances"] == 4
    assert rep["groups"]["channel"]["phone"]["tuned_wer"] == 0.0
    assert rep["tuned"]["domain_terms"]["recall"] == 1.0
    md = (out / "report.md").read_text()
    assert "**WER difference: -80.000 %**" in md
    assert "| phone | 2 | 42.86 % | 0.00 % | -100.0 % |" in md
    assert "there -> where" in md and "![WER by group](wer_by_group.png)" in md
    assert (out / "wer_by_group.png").read_bytes()[:8] == PNG
    lines = [json.loads(x) for x in (out / "tuned" / "predictions.jsonl").read_text().splitlines()]
    assert [x["id"] for x in lines] == ["u1", "u2", "u3", "u4"]
    assert lines[3]["errors"] == ["there -> where"] and lines[3]["origin"] == "t.jsonl:4"
    assert json.loads((out / "base" / "metrics.json").read_text())["counts"]["insertions"] == 2
    assert set(c.files) >= {"report_md", "report_json", "wer_by_group", "base_predictions", "tuned_metrics"}
    assert "training_curves.png" not in {p.name for p in out.iterdir()}


def test_evaluation_files(tmp_path):
    r = score_texts("base", "t.jsonl", ITEMS, BASE, group_by=["channel"], seconds=4.0, terms=TERMS)
    files = write_evaluation(r, tmp_path)
    m = json.loads(files["metrics"].read_text())
    assert m["wer"] == pytest.approx(5 / 13)
    assert m["timing"]["clips_per_second"] == pytest.approx(1.0)
    assert m["timing"]["rtfx"] == pytest.approx(2.0)  # 8 s of audio in 4 s
    md = files["report_md"].read_text()
    assert "## WER by channel" in md and "| Zelle | 0 | 1 |" in md
    assert "| freeze | for |" in md or "| freeze | use |" in md  # most frequent substitutions
    assert files["wer_by_group"].read_bytes()[:8] == PNG


def _trainer_state(run, history):
    d = run / "checkpoint_000001" / "checkpoint"
    d.mkdir(parents=True)
    (d / "trainer_state.json").write_text(json.dumps({"global_step": 20, "log_history": history}))


def test_training_curves_from_trainer_state(tmp_path):
    run = tmp_path / "run"
    hist = [
        {"loss": 2.0, "learning_rate": 1e-5, "epoch": 0.5, "step": 10},
        {"eval_loss": 1.5, "eval_wer": 0.4, "epoch": 0.5, "step": 10},
        {"loss": 1.0, "learning_rate": 5e-6, "epoch": 1.0, "step": 20},
        {"eval_loss": 1.2, "eval_wer": 0.25, "epoch": 1.0, "step": 20},
    ]
    _trainer_state(run, hist[:2])  # an older, shorter checkpoint
    (run / "checkpoint_000002" / "checkpoint").mkdir(parents=True)
    (run / "checkpoint_000002" / "checkpoint" / "trainer_state.json").write_text(
        json.dumps({"log_history": hist})
    )
    (run / "broken").mkdir()
    (run / "broken" / "trainer_state.json").write_text("{not json")
    curves = read_training_curves(run)
    assert curves["eval_wer"] == [(10, 0.4), (20, 0.25)]
    assert curves["loss"] == [(10, 2.0), (20, 1.0)]
    c = _cmp()
    c.run_dir = str(run)
    write_comparison(c, tmp_path / "out")
    assert (tmp_path / "out" / "training_curves.png").read_bytes()[:8] == PNG
    assert "![Training curves](training_curves.png)" in (tmp_path / "out" / "report.md").read_text()


def test_training_curves_from_tensorboard(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    w = SummaryWriter(str(tmp_path / "run" / "tensorboard"))
    for step, (loss, wer) in enumerate([(3.0, 0.5), (2.0, 0.3)], start=1):
        w.add_scalar("train/loss", loss, step * 10)
        w.add_scalar("eval/wer", wer, step * 10)
    w.close()
    curves = read_training_curves(tmp_path / "run")
    assert curves["eval_wer"] == [(10, 0.5), (20, pytest.approx(0.3))]
    assert [s for s, _ in curves["loss"]] == [10, 20]
    assert read_training_curves(tmp_path / "nothing") == {}


def test_report_carries_ci_prompt_baseline_guard_and_entities(tmp_path):
    kw = dict(group_by=["intent"], terms=TERMS, seconds=1.0)
    cmp = _cmp()
    cmp.prompt_baseline = score_texts("base+prompt", "t.jsonl", ITEMS, BASE[:3] + ["hello there"], **kw)
    cmp.prompt_baseline.prompt = "Zelle, APR"
    g_items = [Item("g1", "had he married a more amiable woman"), Item("g2", "go forward ten meters")]
    cmp.guard = ComparisonResult(
        base=score_texts(
            "base", "guard.jsonl", g_items, ["had he married a more amiable woman", "go forward ten meters"]
        ),
        tuned=score_texts(
            "tuned",
            "guard.jsonl",
            g_items,
            ["how do you marry a more amiable woman", "go forward ten meters"],
        ),
    )
    write_comparison(cmp, tmp_path / "out")
    rep = json.loads((tmp_path / "out" / "report.json").read_text())
    sig = rep["significance"]
    assert sig["diff"] == pytest.approx(rep["tuned"]["wer"] - rep["base"]["wer"])
    assert sig["diff_low"] <= sig["diff"] <= sig["diff_high"] and 0.0 <= sig["prob_improvement"] <= 1.0
    assert rep["ci_line"].startswith("WER difference, paired bootstrap") and "95 % CI" in rep["ci_line"]
    assert rep["prompt_baseline"]["prompt"] == "Zelle, APR" and rep["prompt_baseline"]["tuned_beats_prompt"]
    assert rep["guard"]["tuned_wer"] > rep["guard"]["base_wer"] == 0.0
    assert rep["guard"]["regressed"] == 1
    md = (tmp_path / "out" / "report.md").read_text()
    assert "**WER difference: -80.000 %**" in md and "95 % CI" in md
    assert "base + prompt" in md and "Prompt baseline" in md
    assert "real-speech guard" in md and "On real speech (guard) the tuned model is worse" in md


def test_report_without_guard_says_so(tmp_path):
    cmp = _cmp()
    cmp.guard_note = "no real-speech guard (data.guard: none)"
    write_comparison(cmp, tmp_path / "out")
    md = (tmp_path / "out" / "report.md").read_text()
    assert "no real-speech guard (data.guard: none)" in md
    assert json.loads((tmp_path / "out" / "report.json").read_text())["guard"] is None


def test_entities_in_metrics():
    items = [Item("e1", "pay twenty five dollars on March 5th from card 4321")]
    res = score_texts("m", "t.jsonl", items, ["pay $25 on march 5th from card 4312"])
    ent = res.metrics()["entities"]
    assert ent["per_kind"]["amount"]["correct"] == 1 and ent["per_kind"]["digits"]["correct"] == 0
    assert ent["per_kind"]["date"]["correct"] == 1
