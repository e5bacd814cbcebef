"""Entity accuracy on normalized banking text."""

from __future__ import annotations

import pytest

from whisper_tune.scoring import entity_accuracy, extract_entities
from whisper_tune.scoring.normalizers import get_normalizer

norm = get_normalizer("whisper_en")


def test_kinds_after_whisper_normalizer():
    text = norm("I paid $1,250.50 on the 3rd of June from card 4321; the APR is 19.9 percent on 2 accounts")
    assert extract_entities(text) == [
        ("amount", "$1250.50"),
        ("date", "3rd of june"),
        ("digits", "4321"),
        ("amount", "19.9%"),
        ("number", "2"),
    ]
    assert extract_entities(norm("due on March the fifth")) == [("date", "march the 5th")]
    assert extract_entities(norm("due March 5")) == [("date", "march 5")]
    assert extract_entities("no entities here") == []


def test_accuracy_counts_per_kind():
    refs = [norm("send twenty five dollars from card ending 4321"), norm("on March 5th pay 2 bills")]
    hyps = [norm("send $25 from card ending 4312"), norm("on march 5th pay two bills")]
    acc = entity_accuracy(refs, hyps)
    assert acc.per_kind["amount"] == {"total": 1, "correct": 1}
    assert acc.per_kind["digits"] == {"total": 1, "correct": 0}
    assert acc.per_kind["date"] == {"total": 1, "correct": 1}
    assert acc.per_kind["number"] == {"total": 1, "correct": 1}
    assert acc.accuracy == pytest.approx(3 / 4)
    assert acc.to_dict()["per_kind"]["digits"]["accuracy"] == 0.0
    with pytest.raises(ValueError, match="references"):
        entity_accuracy(["a"], [])
