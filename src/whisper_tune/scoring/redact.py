"""Mask personal data (card/account numbers, phone numbers, e-mail addresses) in what is written.

Why: evaluation writes transcripts of calls to predictions files, reports and logs, and a
bank's calls carry card numbers, account numbers, phone numbers and e-mail addresses that
must not end up in an artefact shared with a vendor or pasted into a ticket. Scoring always
runs on the unredacted text (a masked digit string would score as correct whatever was
said); only what is *written* passes through :func:`redact_text` / :func:`redact_obj`.

Why hand-written patterns and not a library: Microsoft Presidio needs spaCy plus a language
model download (hundreds of MB, no model hub here) and is built for named-entity PII such as
names; scrubadub is unmaintained since 2021 and pulls in its own NLP stack. Neither knows
the forms ASR output takes: spelled digits ("four five three two", "oh"), single digits
with spaces ("4 5 3 2") and the Whisper normalizer's joined digit runs ("4532112233445566").
The four kinds needed here are regular languages, so a few anchored regexes are smaller,
offline and testable; each kind has its tests (and non-PII text is checked to pass unchanged).

Rules (the placeholder names the kind, so a report still reads sensibly):

* ``[EMAIL]``: ``name@domain.tld`` and the spoken ``name at domain dot com``.
* ``[PHONE]``: 10-11 digits grouped like a phone number (``555-123-4567``, ``(555) 123 4567``,
  ``+1 555 123 4567``), written with separators.
* ``[CARD]``: 13-19 digits that pass the Luhn check (joined or grouped).
* ``[ACCOUNT]``: any other run of >= 7 digits (joined, or groups joined by space or hyphen);
  a run of >= 4 single digits or spelled digits ("4 5 3 2", "four five three two"); and a
  4-6 digit number right after "ending in", "ends in", "last four (digits)", "account
  (number)", "card (number)", "PIN", "zip (code)" or "routing (number)".

Not masked on purpose: amounts (``$1,250``), years and other lone 4-digit numbers, times,
dates, percentages, and digits inside words, paths or identifiers (``run-20261201``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = [
    "PLACEHOLDERS",
    "RedactingFilter",
    "redact_obj",
    "redact_text",
    "redacting_logs",
]

PLACEHOLDERS = ("[EMAIL]", "[PHONE]", "[CARD]", "[ACCOUNT]")

_DIGIT_WORDS = "zero|oh|o|one|two|three|four|five|six|seven|eight|nine"
# not glued to a word, a path or a decimal: digits after "/", "_", "-" or "." stay
_PRE = r"(?<![\w/.\-$,:])"
_POST = r"(?![\w%/]|[.,:]\d)"

_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_SPOKEN_EMAIL = re.compile(
    r"\b[a-z0-9]+(?:\s+(?:dot|underscore)\s+[a-z0-9]+)*\s+at\s+[a-z0-9]+(?:\s+dot\s+[a-z0-9]+)*"
    r"\s+dot\s+(?:com|net|org|edu|gov|co|io|uk|us)\b",
    re.IGNORECASE,
)
_PHONE = re.compile(_PRE + r"(?:\+?1[\s.\-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.\-])\d{3}[\s.\-]\d{4}" + _POST)
# groups of digits joined by one space or hyphen: "4532 1122 3344 5566", "021000021", "12-345-678"
# (not by "." or ",": those are decimals and amounts)
_DIGIT_RUN = re.compile(_PRE + r"\d+(?:[ \-]\d+)*" + _POST)
_SPELLED_RUN = re.compile(
    r"\b(?:" + _DIGIT_WORDS + r")(?:[\s,\-]+(?:" + _DIGIT_WORDS + r")){3,}\b", re.IGNORECASE
)
_CONTEXT = re.compile(
    r"(?P<cue>\b(?:ending\s+in|ends\s+in|last\s+four(?:\s+digits)?(?:\s+(?:are|is))?|"
    r"account(?:\s+number)?|card(?:\s+number)?|pin|zip(?:\s+code)?|routing(?:\s+number)?)"
    r"(?:\s+(?:is|was|of))?[\s:,]+)(?P<num>\d{4,6})" + _POST,
    re.IGNORECASE,
)


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _digit_run(m: re.Match[str]) -> str:
    text = m.group(0)
    groups = re.split(r"[ \-]", text)
    digits = "".join(groups)
    if len(digits) >= 7:
        if 13 <= len(digits) <= 19 and _luhn(digits):
            return "[CARD]"
        return "[ACCOUNT]"
    if len(groups) >= 4 and all(len(g) == 1 for g in groups):
        return "[ACCOUNT]"  # "4 5 3 2": spelled digits as a recogniser writes them
    return text


def redact_text(text: str) -> str:
    """``text`` with e-mail addresses, phone, card and account numbers masked (rules above)."""
    if not text or not isinstance(text, str):
        return text
    out = _EMAIL.sub("[EMAIL]", text)
    out = _SPOKEN_EMAIL.sub("[EMAIL]", out)
    out = _PHONE.sub("[PHONE]", out)
    out = _SPELLED_RUN.sub("[ACCOUNT]", out)
    out = _DIGIT_RUN.sub(_digit_run, out)
    return _CONTEXT.sub(lambda m: m.group("cue") + "[ACCOUNT]", out)  # short numbers after a cue


def redact_obj(obj: Any) -> Any:
    """A copy of a JSON-like value with every string (not dict keys, not numbers) redacted."""
    if isinstance(obj, str):
        return redact_text(obj)
    if isinstance(obj, dict):
        return {k: redact_obj(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [redact_obj(v) for v in obj]
    return obj


class RedactingFilter(logging.Filter):
    """Rewrites each record's message through :func:`redact_text` (attach to handlers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        red = redact_text(msg)
        if red != msg:
            record.msg, record.args = red, None
        return True


@contextmanager
def redacting_logs(enabled: bool = True, logger: logging.Logger | None = None) -> Iterator[None]:
    """While active, every handler of ``logger`` (default: the root logger) redacts messages.

    Handler filters see the records of all child loggers (logger filters would not), so one
    filter per root handler covers the whole program's log output.
    """
    if not enabled:
        yield
        return
    target = logger or logging.getLogger()
    filt = RedactingFilter()
    handlers = list(target.handlers)
    for h in handlers:
        h.addFilter(filt)
    try:
        yield
    finally:
        for h in handlers:
            h.removeFilter(filt)
