"""PII masking (scoring.redact): each kind is masked in its written, spaced and spelled forms;
everything else (amounts, years, times, percentages, ids, paths, decimals) passes unchanged."""

from __future__ import annotations

import logging

import pytest

from whisper_tune.scoring.redact import RedactingFilter, redact_obj, redact_text, redacting_logs


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("my card is 4532 0151 1283 0366", "my card is [CARD]"),  # Luhn-valid, grouped
        ("card 4532015112830366 please", "card [CARD] please"),
        ("4111-1111-1111-1111", "[CARD]"),
    ],
)
def test_card_numbers(text: str, expected: str) -> None:
    assert redact_text(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("account 12345678 is mine", "account [ACCOUNT] is mine"),
        ("routing number is 021000021", "routing number is [ACCOUNT]"),
        ("4532 1122 3344 5566", "[ACCOUNT]"),  # 16 digits failing Luhn: still a number to hide
        ("it's four five three two one one", "it's [ACCOUNT]"),  # spelled, as the TTS said it
        ("Four, five, three, two.", "[ACCOUNT]."),
        ("the 4 5 3 2 card", "the [ACCOUNT] card"),  # spelled digits as a recogniser writes them
        ("my account ends in 4521.", "my account ends in [ACCOUNT]."),
        ("the last four digits are 6998", "the last four digits are [ACCOUNT]"),
        ("Sure, it ends in 0031", "Sure, it ends in [ACCOUNT]"),
        ("zip code 94110", "zip code [ACCOUNT]"),
        ("my card is 4532112233445566", "my card is [ACCOUNT]"),  # the normalizer's joined digits
    ],
)
def test_account_numbers(text: str, expected: str) -> None:
    assert redact_text(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("call me at 555-123-4567", "call me at [PHONE]"),
        ("(555) 123 4567 or +1 555 123 4567", "[PHONE] or [PHONE]"),
        ("555.123.4567", "[PHONE]"),
        ("call 555 123 4567 today", "call [PHONE] today"),  # normalized form
    ],
)
def test_phone_numbers(text: str, expected: str) -> None:
    assert redact_text(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail j.smith@example.com now", "mail [EMAIL] now"),
        ("It's maria.lee@outlook.com.", "It's [EMAIL]."),
        ("it's john dot smith at gmail dot com", "it's [EMAIL]"),
    ],
)
def test_email_addresses(text: str, expected: str) -> None:
    assert redact_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "I paid $1,250.00 on March 3rd, 2024 at 10:30.",
        "The APR is 19.99% and my limit is $3,000.",
        "WER 0.30512345678 over 1234 words",
        "run-20261201-145100 in /tmp/12345678/x and test_000123",
        "I want two cards, four five-star hotels",
        "between 2023 and 2024, 3 cards",
        "Can you confirm the email address on file?",
        "",
    ],
)
def test_non_pii_is_unchanged(text: str) -> None:
    assert redact_text(text) == text


def test_redact_obj_masks_strings_only() -> None:
    obj = {"hyp": "call 555-123-4567", "wer": 0.25, "n": 12345678, "errors": ["4532015112830366 -> x"]}
    out = redact_obj(obj)
    assert out == {"hyp": "call [PHONE]", "wer": 0.25, "n": 12345678, "errors": ["[CARD] -> x"]}
    assert obj["hyp"] == "call 555-123-4567"  # a copy: the caller's (scoring) text is untouched


def test_log_records_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    rec = logging.LogRecord("x", logging.INFO, __file__, 1, "hyp %s", ("555-123-4567",), None)
    assert RedactingFilter().filter(rec)
    assert rec.getMessage() == "hyp [PHONE]"
    root = logging.getLogger()
    handler = logging.StreamHandler()
    root.addHandler(handler)
    try:
        with redacting_logs(True):
            assert any(isinstance(f, RedactingFilter) for f in handler.filters)
        assert not handler.filters
        with redacting_logs(False):
            assert not handler.filters
    finally:
        root.removeHandler(handler)
