"""report.html in headless Debian Chromium: renders offline, no console errors, numbers in the DOM."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from whisper_tune.evaluate import ComparisonResult, score_texts, write_comparison
from wt_browser_testutil import chromium, needs_chromium
from wt_eval_testutil import Item

pytestmark = pytest.mark.integration


def _write_report(out: Path) -> dict[str, Any]:
    items = [
        Item("u1", "send money with Zelle", {"intent": "transfer", "channel": "phone"}),
        Item("u2", "what is my APR", {"intent": "rates", "channel": "wide"}),
        Item("u3", "freeze my card now", {"intent": "card", "channel": "phone"}),
        Item("u4", "hello there", {"intent": "general", "channel": "wide"}),
    ]
    kw = dict(group_by=["intent", "channel"], terms=["Zelle", "APR"], seconds=1.0)
    base = ["send money with else", "what is my app or", "freeze card now", "hello there"]
    tuned = ["send money with Zelle", "what is my APR", "freeze my card", "hello where"]
    cmp = ComparisonResult(
        base=score_texts("base", "test.jsonl", items, base, **kw),
        tuned=score_texts("tuned", "test.jsonl", items, tuned, **kw),
    )
    cmp.prompt_baseline = score_texts("base+prompt", "test.jsonl", items, base[:3] + ["hello there"], **kw)
    cmp.prompt_baseline.prompt = "Zelle, APR"
    g_items = [Item("g1", "had he married a more amiable woman"), Item("g2", "go forward ten meters")]
    g_ref = [i.text for i in g_items]
    cmp.guard = ComparisonResult(
        base=score_texts("base", "guard.jsonl", g_items, g_ref),
        tuned=score_texts(
            "tuned", "guard.jsonl", g_items, ["had he married a more amiable woman", "go forward"]
        ),
    )
    cmp.selection = {"rule": "WiSE-FT mix", "alpha": 0.5, "warning": "tuned alone regressed <real> speech"}
    write_comparison(cmp, out)
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


@needs_chromium
def test_report_html_in_chromium(tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    rep = _write_report(tmp_path / "report")
    page = tmp_path / "report" / "report.html"
    with chromium() as driver:
        driver.get(page.resolve().as_uri())
        assert driver.title.startswith("whisper-tune report")
        severe = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
        assert severe == [], severe

        def text(ident: str) -> str:
            return str(driver.find_element(By.ID, ident).text)

        sig, guard = rep["significance"], rep["guard"]
        assert text("base-wer") == f"{rep['base']['wer']:.2%}"
        assert text("tuned-wer") == f"{rep['tuned']['wer']:.2%}"
        assert text("prompt-wer") == f"{rep['prompt_baseline']['wer']:.2%}"
        assert text("wer-ci") == (
            f"{sig['diff'] * 100:+.2f} [{sig['diff_low'] * 100:+.2f}, {sig['diff_high'] * 100:+.2f}]"
        )
        assert text("p-improvement") == f"{sig['prob_improvement']:.2%}"
        assert text("guard-base-wer") == f"{guard['base_wer']:.2%}"
        assert text("guard-tuned-wer") == f"{guard['tuned_wer']:.2%}"
        assert "WORSE" in text("verdict") or "better" in text("verdict") or "noise" in text("verdict")
        # per-group tables, the inline plot actually decoded, the aligned errors marked
        assert driver.find_elements(By.ID, "group-intent") and driver.find_elements(By.ID, "group-channel")
        img = driver.find_element(By.TAG_NAME, "img")
        assert driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) > 100
        worst = driver.find_element(By.ID, "worst")
        assert worst.find_elements(By.CSS_SELECTOR, "span.d") and worst.find_elements(
            By.CSS_SELECTOR, "span.s"
        )
        assert "tuned alone regressed <real> speech" in driver.find_element(By.TAG_NAME, "body").text
        # nothing was fetched besides the page itself
        urls = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        assert urls == [], urls
