"""The web page in headless Debian Chromium: upload a file, read the transcript and segment times."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from serve_testlib import ServeEnv

from wt_browser_testutil import chromium, needs_chromium

pytestmark = pytest.mark.integration


@needs_chromium
def test_upload_and_read_transcript(serve_env: ServeEnv, speech_clip: bytes, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    clip = tmp_path / "clip.wav"
    clip.write_bytes(speech_clip)
    with chromium() as driver:
        driver.get(serve_env.url("hf", "/"))
        wait = WebDriverWait(driver, 120)
        wait.until(ec.text_to_be_present_in_element((By.ID, "model-name"), "tiny.en"))
        driver.find_element(By.ID, "file").send_keys(str(clip))
        driver.find_element(By.ID, "upload").click()
        wait.until(lambda d: d.find_element(By.ID, "transcript").text.strip() != "")
        text = driver.find_element(By.ID, "transcript").text.lower()
        assert "account" in text and "debit card" in text, text
        rows = driver.find_elements(By.CSS_SELECTOR, "#segments tbody tr.segment")
        assert rows, "no segment rows rendered"
        first = rows[0].find_elements(By.TAG_NAME, "td")
        assert first[0].text == "0:00.00" and first[1].text.startswith("0:0")
        status = driver.find_element(By.ID, "status").text
        assert "model tiny.en" in status and "Done in" in status


@needs_chromium
def test_record_from_fake_microphone(serve_env: ServeEnv) -> None:
    """MediaRecorder -> Web Audio decode -> 16 kHz WAV -> POST, with Chromium's fake capture device."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    flags = ("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream")
    with chromium(*flags) as driver:
        driver.get(serve_env.url("ct2", "/"))
        driver.find_element(By.ID, "record").click()
        WebDriverWait(driver, 30).until(lambda d: d.find_element(By.ID, "stop").is_enabled())
        time.sleep(2.5)
        driver.find_element(By.ID, "stop").click()
        WebDriverWait(driver, 120).until(
            lambda d: (
                "Done in" in d.find_element(By.ID, "status").text
                or "rror" in d.find_element(By.ID, "status").text
            )
        )
        status = driver.find_element(By.ID, "status").text
        assert "Done in" in status, status
        seconds = float(re.search(r"([0-9.]+) s of audio", status).group(1))  # type: ignore[union-attr]
        assert 1.5 <= seconds <= 6.0, status
