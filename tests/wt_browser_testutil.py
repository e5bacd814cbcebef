"""Headless Debian Chromium for the browser tests (the serve web page, report.html).

Why here: both tests need the same driver set-up (offline flags, a throw-away profile, the
browser console log kept for "no console errors" checks); one copy keeps them in step.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

__all__ = ["CHROMIUM", "DRIVER", "chromium", "needs_chromium"]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = "/usr/bin/chromedriver"

needs_chromium = pytest.mark.skipif(
    CHROMIUM is None or not Path(DRIVER).exists(),
    reason="needs Debian chromium + chromium-driver (apt-get install chromium chromium-driver)",
)


@contextlib.contextmanager
def chromium(*extra_flags: str) -> Iterator[Any]:
    """A headless Chromium WebDriver with the browser console log kept (``get_log("browser")``)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        *extra_flags,
    ):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    profile = tempfile.mkdtemp(prefix="wt-chromium-")
    opts.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
