"""Long-form section and PII redaction of evaluate/compare reports (no model needed).

The decoding itself (Transformers long-form generate, the chunked batch path) runs on real
weights in tests/integration/evaluate/test_eval_longform_tiny.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from whisper_tune.cli import build_parser
from whisper_tune.errors import DataError
from whisper_tune.evaluate import ComparisonResult, score_texts, write_comparison, write_evaluation
from whisper_tune.evaluate.longform import LongformComparison, LongformResult, ModeResult, reference_segments
from whisper_tune.scoring.boundaries import boundary_score
from wt_eval_testutil import Item

CARD = "4532015112830366"


REF_SEGS = [(0.5, 4.0), (5.0, 9.0)]
ITEM = Item(
    "call_0", f"Thank you for calling. My card is {CARD}, email me at ann.lee@gmail.com.", duration=70.0
)


def _mode(mode: str, hyp: str, segs: list[tuple[float, float, str]]) -> ModeResult:
    scored = score_texts("m", "longform.jsonl", [ITEM], [hyp], group_by=[])
    return ModeResult(mode, scored, [segs], [boundary_score(REF_SEGS, [(s, e) for s, e, _ in segs])], 3.0)


def _longform(model: str, hyp: str) -> LongformResult:
    segs = [
        (0.4, 4.1, " Thank you for calling."),
        (5.2, 9.9, f" My card is {CARD}, email me at ann.lee@gmail.com."),
    ]
    return LongformResult(
        model,
        "longform.jsonl",
        {"sequential": _mode("sequential", hyp, segs), "chunked": _mode("chunked", hyp, segs[:1])},
    )


def test_reference_segments_forms_and_errors() -> None:
    assert reference_segments({}) is None
    meta = {"segments": [{"start": 1, "end": 2.5}, {"offset": 3, "duration": 1.5}]}
    assert reference_segments(meta) == [(1.0, 2.5), (3.0, 4.5)]
    with pytest.raises(DataError, match=r"calls.jsonl:3: segment 1 needs start/end"):
        reference_segments({"segments": [{"start": 0, "end": 1}, {"start": "x"}]}, "calls.jsonl:3")
    with pytest.raises(DataError, match="segment 0 ends"):
        reference_segments({"segments": [{"start": 2, "end": 1}]}, "c")
    with pytest.raises(DataError, match="must be a list"):
        reference_segments({"segments": "0-1"}, "c")


def test_mode_result_scores_words_and_boundaries() -> None:
    lf = _longform("m", ITEM.text)
    seq, chk = lf.modes["sequential"], lf.modes["chunked"]
    assert seq.result.wer == 0.0
    assert seq.boundary is not None and seq.boundary.accuracy == 0.75  # 9.9 is 0.9 s from 9.0
    assert chk.boundary is not None and chk.boundary.accuracy == 0.5
    d = lf.to_dict()
    assert d["recordings"] == 1 and d["modes"]["sequential"]["boundaries"]["ref_boundaries"] == 4
    assert d["modes"]["chunked"]["recordings"][0]["segments"][0] == {
        "start": 0.4,
        "end": 4.1,
        "text": " Thank you for calling.",
    }
    md = "\n".join(lf.markdown_lines())
    assert "## Long-form (1 recordings" in md and "| sequential | 0.00 % | 75.00 % |" in md


def test_evaluate_report_has_longform_and_redacts_written_files(tmp_path: Path) -> None:
    r = score_texts("m", "t.jsonl", [ITEM], [ITEM.text.replace("calling", "calls")], group_by=[])
    r.longform = _longform("m", ITEM.text)
    r.redact = True
    write_evaluation(r, tmp_path)
    for name in ("predictions.jsonl", "metrics.json", "report.md"):
        text = (tmp_path / name).read_text()
        assert CARD not in text and "ann.lee@gmail.com" not in text, name
        assert "[CARD]" in text and "[EMAIL]" in text, name
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["longform"]["modes"]["sequential"]["wer"] == 0.0
    assert metrics["wer"] == r.wer > 0  # scored on the raw text: a masked card would score as correct
    assert "## Long-form" in (tmp_path / "report.md").read_text()
    assert CARD in ITEM.text and CARD in r.utterances[0].hyp  # nothing redacted in memory


def test_without_redaction_the_text_is_written_as_is(tmp_path: Path) -> None:
    r = score_texts("m", "t.jsonl", [ITEM], [ITEM.text], group_by=[])
    write_evaluation(r, tmp_path)
    assert CARD in (tmp_path / "predictions.jsonl").read_text()
    assert json.loads((tmp_path / "metrics.json").read_text())["longform"] is None


def test_compare_report_has_base_vs_tuned_longform_and_redacts(tmp_path: Path) -> None:
    base = score_texts("base", "t.jsonl", [ITEM], ["thank you for call my card is 4532"], group_by=[])
    tuned = score_texts("tuned", "t.jsonl", [ITEM], [ITEM.text], group_by=[])
    base.redact = tuned.redact = True
    cmp = ComparisonResult(base=base, tuned=tuned)
    cmp.longform = LongformComparison(_longform("base", "thank you for call"), _longform("tuned", ITEM.text))
    write_comparison(cmp, tmp_path)
    report = json.loads((tmp_path / "report.json").read_text())
    summary = report["longform"]["summary"]
    assert set(summary) == {"sequential", "chunked"}
    assert summary["sequential"]["tuned_wer"] == 0.0 < summary["sequential"]["base_wer"]
    assert summary["sequential"]["relative_change_pct"] == -100.0
    md = (tmp_path / "report.md").read_text()
    assert "## Long-form" in md and "| sequential |" in md and "First recording (`call_0`)" in md
    for p in [tmp_path / "report.json", tmp_path / "report.md", *tmp_path.glob("*/predictions.jsonl")]:
        assert CARD not in p.read_text() and "ann.lee@gmail.com" not in p.read_text(), p


def test_cli_longform_and_redact_options() -> None:
    args = build_parser().parse_args(
        [
            "compare",
            "--base",
            "b",
            "--tuned",
            "t",
            "--data",
            "d",
            "--longform",
            "lf.jsonl",
            "--longform-modes",
            "chunked",
            "--redact",
        ]
    )
    assert args.longform == "lf.jsonl" and args.longform_modes == ("chunked",) and args.redact is True
    args = build_parser().parse_args(["evaluate", "--model", "m", "--data", "d"])
    assert args.longform is None and args.longform_modes == ("sequential", "chunked") and args.redact is None
    with pytest.raises(SystemExit):
        build_parser().parse_args(["evaluate", "--model", "m", "--data", "d", "--longform-modes", "beam"])


def test_redact_default_comes_from_the_run_config(tmp_path: Path) -> None:
    from whisper_tune.evaluate.cli import _redact_for

    run = tmp_path / "run"
    (run / "best").mkdir(parents=True)
    (run / "best" / "config.json").write_text("{}")
    (run / "config.yaml").write_text("report:\n  redact: true\n")
    assert _redact_for(None, str(run)) is True
    assert _redact_for(False, str(run)) is False
    assert _redact_for(None, "tiny.en") is False


def test_the_model_s_own_timestamps_are_scored_beside_the_snapped_ones() -> None:
    scored = score_texts("m", "longform.jsonl", [ITEM], [ITEM.text], group_by=[])
    own = [(0.0, 5.0), (5.0, 10.0)]  # whole seconds, touching: 2 of 4 reference boundaries
    snapped = [(0.5, 4.0), (5.0, 9.0)]
    m = ModeResult(
        "chunked",
        scored,
        [[(s, e, "x") for s, e in snapped]],
        [boundary_score(REF_SEGS, snapped)],
        1.0,
        [boundary_score(REF_SEGS, own)],
    )
    assert m.boundary is not None and m.boundary.accuracy == 1.0
    assert m.raw_boundary is not None and m.raw_boundary.accuracy == 0.5
    d = m.to_dict()
    assert d["speech_times"] is True and d["boundaries_model_timestamps"]["accuracy"] == 0.5
    lf = LongformResult("m", "longform.jsonl", {"chunked": m})
    assert "| chunked | 0.00 % | 100.00 % | 100.00 % | 50.00 % |" in "\n".join(lf.markdown_lines())
    s = LongformComparison(lf, lf).to_dict()["summary"]["chunked"]
    assert s["tuned_boundary_accuracy"] == 1.0 and s["tuned_boundary_accuracy_model_timestamps"] == 0.5
    plain = ModeResult("chunked", scored, [[]], [None], 1.0)
    assert plain.raw_boundary is None and plain.to_dict()["speech_times"] is False
    args = build_parser().parse_args(["compare", "--base", "b", "--tuned", "t", "--data", "d"])
    assert args.speech_times == "on"
    off = build_parser().parse_args(["evaluate", "--model", "m", "--data", "d", "--speech-times", "off"])
    assert off.speech_times == "off" and off.split_pause == 0.5
    from whisper_tune.errors import UserError
    from whisper_tune.evaluate.longform import evaluate_longform

    with pytest.raises(UserError, match="split pause"):
        evaluate_longform("m", "lf.jsonl", split_pause_s=0.0)
