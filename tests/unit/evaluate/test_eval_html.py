"""report.html: self-contained, escaped, the headline numbers and aligned errors in the page."""

from __future__ import annotations

import json
import re
from typing import Any

from whisper_tune.evaluate import ComparisonResult, score_texts, write_comparison
from whisper_tune.evaluate.html import aligned_words, render_report_html
from wt_eval_testutil import Item

ITEMS = [
    Item("u1", "send money with Zelle", {"intent": "transfer"}),
    Item("u2", "what is my APR", {"intent": "rates"}),
    Item("u3", "freeze my card now", {"intent": "<b>card</b>"}),
    Item("u4", "hello there", {"intent": "general"}),
]
BASE = ["send money with else", "what is my app or", "freeze card now", "hello there"]
TUNED = ["send money with Zelle", "what is my APR", "freeze my card", "hello where <script>x</script>"]


def _report(tmp_path) -> tuple[ComparisonResult, dict[str, Any], str]:  # type: ignore[no-untyped-def]
    kw = dict(group_by=["intent"], terms=["Zelle", "APR"], seconds=1.0)
    cmp = ComparisonResult(
        base=score_texts("base", "t.jsonl", ITEMS, BASE, **kw),
        tuned=score_texts("tuned", "t.jsonl", ITEMS, TUNED, **kw),
    )
    cmp.prompt_baseline = score_texts("base+prompt", "t.jsonl", ITEMS, BASE[:3] + ["hello there"], **kw)
    cmp.prompt_baseline.prompt = "Zelle, APR"
    write_comparison(cmp, tmp_path / "out")
    rep = json.loads((tmp_path / "out" / "report.json").read_text())
    page = (tmp_path / "out" / "report.html").read_text()
    return cmp, rep, page


def test_written_beside_md_and_json_and_listed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    _, rep, page = _report(tmp_path)
    assert rep["files"]["report_html"].endswith("report.html")
    assert page.startswith("<!doctype html>")
    assert f'id="base-wer">{rep["base"]["wer"]:.2%}<' in page
    assert f'id="tuned-wer">{rep["tuned"]["wer"]:.2%}<' in page
    assert f'id="prompt-wer">{rep["prompt_baseline"]["wer"]:.2%}<' in page
    sig = rep["significance"]
    assert f"{sig['diff_low'] * 100:+.2f}, {sig['diff_high'] * 100:+.2f}]" in page
    assert f'id="p-improvement">{sig["prob_improvement"]:.2%}<' in page
    assert rep["wer_difference_line"] in page


def test_self_contained_and_escaped(tmp_path) -> None:  # type: ignore[no-untyped-def]
    _, _, page = _report(tmp_path)
    # no request leaves the page: no src/href but data: URIs, a CSP that forbids the rest
    for url in re.findall(r'(?:src|href)="([^"]*)"', page):
        assert url.startswith("data:"), url
    assert "default-src 'none'" in page and "<script" not in page.lower().replace("&lt;script", "")
    assert "data:image/png;base64," in page  # the group plot, inline
    assert "&lt;b&gt;card&lt;/b&gt;" in page and "<b>card</b>" not in page


def test_alignment_marks_substitutions_deletions_insertions(tmp_path) -> None:  # type: ignore[no-untyped-def]
    chunks = aligned_words("freeze my card now", "freeze card now please", "whisper_en")
    kinds = [k for k, _, _ in chunks]
    assert "delete" in kinds and "insert" in kinds
    assert ("delete", "my", "") in chunks and ("insert", "", "please") in chunks
    assert ("substitute", "there", "where") in aligned_words("hello there", "hello where")
    assert aligned_words("", "okay") == [("insert", "", "okay")]
    assert aligned_words("hi", "") == [("delete", "hi", "")]
    _, _, page = _report(tmp_path)
    assert '<span class="d" title="deletion">my</span>' in page  # base dropped "my"
    assert '<span class="d" title="deletion">now</span>' in page  # tuned dropped "now"
    assert (
        "<del>there</del> &rarr; <ins>x</ins>" in page
        and '<span class="i" title="insertion">+where</span>' in page
    )


def test_renders_without_optional_sections() -> None:
    page = render_report_html({"base": {"wer": 0.5}, "tuned": {"wer": 0.25}, "significance": {}})
    assert 'id="base-wer">50.00%<' in page and 'id="tuned-wer">25.00%<' in page
    assert "no real-speech guard" in page
