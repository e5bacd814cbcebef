"""Entity accuracy: did the amounts, dates, numbers and card/account digits come out right?

Why: in a bank call a wrong digit is worse than a wrong filler word, and WER weighs them the
same. After Whisper's English normalizer ("twenty five dollars" -> "$25", "four three two one"
-> "4321", "March the fifth" -> "march 5th") these entities are plain tokens, so they can be
found in the normalized reference with a few patterns and looked up in the normalized
hypothesis of the same utterance. An entity counts as correct when the hypothesis holds the
same token sequence (as many times as the reference does), the same rule as domain-term recall.

Kinds (the first that matches wins): ``amount`` (a currency symbol or a percentage),
``date`` (a month name with an adjacent day number: "march 5th", "march the 5th", "5th of march"), ``digits`` (a run of >= 4 digits: card,
account, phone and reference numbers), ``number`` (any other token with a digit).

Hand-written because the patterns are tied to the normalizer's output format; no library
extracts entities from already-normalized ASR text.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ENTITY_KINDS", "EntityAccuracy", "entity_accuracy", "extract_entities"]

ENTITY_KINDS = ("amount", "date", "digits", "number")

_MONTHS = {
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
}
_AMOUNT = re.compile(r"^[$£€¥][\d.,]*\d[\d.,]*[a-z]*$|^\d[\d.,]*%$")
_DAY = re.compile(r"^\d{1,2}(st|nd|rd|th)?$")
_DIGITS = re.compile(r"^\d{4,}$")
_NUMBER = re.compile(r"\d")


def extract_entities(normalized: str) -> list[tuple[str, str]]:
    """``(kind, text)`` for each entity in already-normalized text, in order."""
    words = normalized.split()
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(words):
        w = words[i]
        if _AMOUNT.match(w):
            out.append(("amount", w))
        elif w in _MONTHS and i + 1 < len(words) and _DAY.match(words[i + 1]):
            out.append(("date", f"{w} {words[i + 1]}"))
            i += 1
        elif w in _MONTHS and i + 2 < len(words) and words[i + 1] == "the" and _DAY.match(words[i + 2]):
            out.append(("date", f"{w} the {words[i + 2]}"))
            i += 2
        elif (
            _DAY.match(w)
            and i + 1 < len(words)
            and (
                words[i + 1] in _MONTHS
                or (words[i + 1] == "of" and i + 2 < len(words) and words[i + 2] in _MONTHS)
            )
        ):
            span = 3 if words[i + 1] == "of" else 2
            out.append(("date", " ".join(words[i : i + span])))
            i += span - 1
        elif _DIGITS.match(w):
            out.append(("digits", w))
        elif _NUMBER.search(w):
            out.append(("number", w))
        i += 1
    return out


def _count(words: list[str], phrase: list[str]) -> int:
    n = len(phrase)
    return sum(1 for j in range(len(words) - n + 1) if words[j : j + n] == phrase)


@dataclass
class EntityAccuracy:
    """Correct / total per kind, and over all kinds."""

    per_kind: dict[str, dict[str, int]] = field(default_factory=dict)  # kind -> {"total", "correct"}
    total: int = 0
    correct: int = 0

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.total if self.total else None

    def to_dict(self) -> dict[str, Any]:
        per = {
            k: {**v, "accuracy": (v["correct"] / v["total"]) if v["total"] else None}
            for k, v in self.per_kind.items()
        }
        return {"accuracy": self.accuracy, "total": self.total, "correct": self.correct, "per_kind": per}


def entity_accuracy(refs: Sequence[str], hyps: Sequence[str]) -> EntityAccuracy:
    """Entity accuracy over utterances; ``refs``/``hyps`` are already normalized texts."""
    if len(refs) != len(hyps):
        raise ValueError(f"entity_accuracy: {len(refs)} references but {len(hyps)} hypotheses")
    result = EntityAccuracy()
    for ref, hyp in zip(refs, hyps, strict=True):
        hyp_words = hyp.split()
        wanted = Counter(extract_entities(ref))
        for (kind, text), n in wanted.items():
            found = min(n, _count(hyp_words, text.split()))
            slot = result.per_kind.setdefault(kind, {"total": 0, "correct": 0})
            slot["total"] += n
            slot["correct"] += found
            result.total += n
            result.correct += found
    return result
