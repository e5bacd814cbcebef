"""Whisper's English normalizer behaves like OpenAI's (examples from openai/whisper's tests)."""

from __future__ import annotations

import pytest

from whisper_tune.evaluate import get_normalizer
from whisper_tune.scoring.normalizers import english_spelling_mapping


@pytest.fixture(scope="module")
def en():
    return get_normalizer("whisper_en")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # numbers (openai/whisper tests/test_normalizer.py)
        ("two", "2"),
        ("thirty one", "31"),
        ("nineteen ninety nine", "1999"),
        ("forty three thousand two hundred and sixty", "43260"),
        ("two point five million", "2500000"),
        ("thirty first", "31st"),
        ("double oh seven", "007"),
        ("nine double one", "911"),
        ("minus 500", "-500"),
        # currency and percent
        ("200 thousand dollars", "$200000"),
        ("$20 million", "$20000000"),
        ("two dollars and seventy cents", "$2.70"),
        ("3 cents", "¢3"),
        ("$0.36", "¢36"),
        ("three euros and sixty five cents", "€3.65"),
        ("ninety percent", "90%"),
        ("seventy six per cent", "76%"),
        # contractions, titles, spelling, case and punctuation
        ("Let's", "let us"),
        ("he's like", "he is like"),
        ("she's been like", "she has been like"),
        ("I can't, won't!", "i can not will not"),
        ("Mr. Park visited Assoc. Prof. Kim Jr.", "mister park visited associate professor kim junior"),
        ("mobilisation", "mobilization"),
        ("The colour of my Visa card.", "the color of my visa card"),
        ("10km", "10 km"),
        # fillers and bracketed noise tags are dropped
        ("Um, I want to, uh, transfer [noise] money", "i want to transfer money"),
    ],
)
def test_english_normalizer_examples(en, text, expected):
    assert en(text) == expected


def test_banking_amounts(en):
    assert en("I'd like to transfer one thousand two hundred dollars") == "i would like to transfer $1200"
    assert en("Transfer $1,200 please.") == en("transfer one thousand two hundred dollars please")


def test_spelling_map_is_bundled():
    m = english_spelling_mapping()
    assert len(m) > 1700
    assert m["colour"] == "color"
    assert m["cancelation"] == "cancellation"


def test_basic_normalizer_keeps_other_languages():
    basic = get_normalizer("basic")
    assert basic("Hola, ¿qué tal? [ruido] (risas)") == "hola qué tal"
    assert basic("  Ça  VA  ") == "ça va"


def test_none_is_orthographic():
    none = get_normalizer("none")
    assert none("  Send $5,\n to Bob. ") == "Send $5, to Bob."


def test_unknown_kind_names_choices():
    with pytest.raises(ValueError, match="whisper_en, basic, none"):
        get_normalizer("french")
