"""A text-only stand-in for ``evaluate.pipeline.EvalItem`` for report and scoring tests.

Why here: the report, HTML, long-form and browser tests all score hand-written transcripts
without audio; ``score_texts`` needs only these fields, and one definition keeps them alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Item"]


@dataclass
class Item:
    id: str
    text: str
    meta: dict[str, Any] = field(default_factory=dict)
    duration: float = 2.0
    origin: str = ""
