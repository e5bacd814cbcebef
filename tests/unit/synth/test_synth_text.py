"""Text generator: intents covered, written and spoken forms agree, determinism, uniqueness.

The spoken->number parser below is written independently of ``numbers.py`` (it reads
words back into numbers), so a wrong speller and a wrong label cannot agree by accident.
"""

from __future__ import annotations

import random
import re

import pytest

from whisper_tune.data.synth import numbers as num
from whisper_tune.data.synth import text as tg
from whisper_tune.data.synth.banking_templates import BANKING_TEMPLATES
from whisper_tune.data.synth.general_vocab import GENERAL_TEMPLATES

MINDS14 = {
    "abroad", "address", "app_error", "atm_limit", "balance", "business_loan", "card_issues",
    "cash_deposit", "direct_debit", "freeze", "high_value_payment", "joint_account",
    "latest_transactions", "pay_bill",
}  # fmt: skip

_UNITS = {w: i for i, w in enumerate(
    ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
)}  # fmt: skip
_TENS = {
    w: 10 * i
    for i, w in enumerate(
        ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
    )
    if i >= 2
}
_ORD = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
        "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13,
        "fourteenth": 14, "fifteenth": 15, "sixteenth": 16, "seventeenth": 17, "eighteenth": 18,
        "nineteenth": 19, "twentieth": 20}  # fmt: skip


def words_to_int(words: str) -> int:
    """'one thousand two hundred fifty' -> 1250 (independent of numbers.number_to_words)."""
    total, cur = 0, 0
    for w in words.replace("-", " ").split():
        if w in _UNITS:
            cur += _UNITS[w]
        elif w in _TENS:
            cur += _TENS[w]
        elif w == "hundred":
            cur *= 100
        elif w in ("thousand", "million"):
            total += cur * (1000 if w == "thousand" else 1_000_000)
            cur = 0
        else:
            raise ValueError(f"not a number word: {w!r} in {words!r}")
    return total + cur


def ordinal_to_int(words: str) -> int:
    parts = words.replace("-", " ").split()
    last = _ORD[parts[-1]]
    return (words_to_int(" ".join(parts[:-1])) if parts[:-1] else 0) + last


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (0, "zero"), (7, "seven"), (13, "thirteen"), (40, "forty"), (45, "forty-five"),
        (100, "one hundred"), (250, "two hundred fifty"), (1250, "one thousand two hundred fifty"),
        (82000, "eighty-two thousand"), (250000, "two hundred fifty thousand"),
        (1_000_001, "one million one"),
    ],
)  # fmt: skip
def test_number_to_words_known_values(n: int, words: str) -> None:
    assert num.number_to_words(n) == words
    assert words_to_int(words) == n


@pytest.mark.parametrize(
    ("n", "suffix", "words"),
    [(1, "st", "first"), (2, "nd", "second"), (3, "rd", "third"), (11, "th", "eleventh"),
     (12, "th", "twelfth"), (13, "th", "thirteenth"), (21, "st", "twenty-first"),
     (22, "nd", "twenty-second"), (20, "th", "twentieth"), (28, "th", "twenty-eighth")],
)  # fmt: skip
def test_ordinals(n: int, suffix: str, words: str) -> None:
    assert num.ordinal_suffix(n) == suffix
    assert num.ordinal_words(n) == words


def test_amount_percent_year_forms() -> None:
    assert num.amount_forms(50000) == ("$500", "five hundred dollars")
    assert num.amount_forms(125050) == ("$1,250.50", "one thousand two hundred fifty dollars and fifty cents")
    assert num.amount_forms(101) == ("$1.01", "one dollar and one cent")
    assert num.percent_forms(1999) == ("19.99%", "nineteen point nine nine percent")
    assert num.percent_forms(450) == ("4.5%", "four point five percent")
    assert num.percent_forms(500) == ("5%", "five percent")
    assert num.year_forms(2024) == ("2024", "twenty twenty-four")
    assert num.year_forms(2005) == ("2005", "two thousand five")
    assert num.digits_spoken("0421") == "zero four two one"
    with pytest.raises(ValueError):
        num.digits_spoken("12a")


def test_intents_are_minds14_and_all_covered() -> None:
    assert set(tg.INTENTS) == MINDS14 == set(BANKING_TEMPLATES)
    utts = tg.generate_sentences(14 * 6, seed=1, general_share=0.0)
    counts: dict[str, int] = {}
    for u in utts:
        counts[u.intent] = counts.get(u.intent, 0) + 1
    assert set(counts) == MINDS14
    assert min(counts.values()) == max(counts.values()) == 6  # round-robin balance


def test_every_template_fills() -> None:
    rng = random.Random(0)
    for key, templates in [*BANKING_TEMPLATES.items(), *GENERAL_TEMPLATES.items()]:
        assert len(templates) >= 6, key
        for t in templates:
            for _ in range(5):
                w, s, _slots = tg._fill(t, rng)
                for form in (w, s):
                    assert not re.search(r"[{}\[\]|]", form), (key, t, form)


def _check_slot(slot: tg.Slot) -> None:
    w, s = slot.written, slot.spoken
    if slot.name in ("amount", "small_amount", "big_amount", "loan_amount", "limit"):
        m = re.fullmatch(r"\$(\d{1,3}(?:,\d{3})*)(?:\.(\d{2}))?", w)
        assert m, w
        dollars = int(m.group(1).replace(",", ""))
        sm = re.fullmatch(r"(.+?) dollars?(?: and (.+?) cents?)?", s)
        assert sm, s
        assert words_to_int(sm.group(1)) == dollars, (w, s)
        assert (words_to_int(sm.group(2)) if sm.group(2) else 0) == (int(m.group(2)) if m.group(2) else 0), (
            w,
            s,
        )
        assert m.group(2) != "00"
    elif slot.name in ("last4", "routing", "zip"):
        assert w.isdigit() and len(w) in (4, 5, 9)
        assert "".join(str(_UNITS[x]) for x in s.split()) == w
    elif slot.name == "date":
        month, day = w.split(" ")
        assert month in num.MONTHS and s.startswith(month + " ")
        assert re.fullmatch(r"\d{1,2}(st|nd|rd|th)", day)
        assert ordinal_to_int(s[len(month) + 1 :]) == int(day[:-2])
    elif slot.name == "dom":
        assert ordinal_to_int(s) == int(w[:-2])
    elif slot.name == "rate":
        m = re.fullmatch(r"(\d+)(?:\.(\d+))?%", w)
        assert m, w
        sm = re.fullmatch(r"(.+?)(?: point ((?:\w+ ?)+?))? percent", s)
        assert sm and words_to_int(sm.group(1)) == int(m.group(1)), (w, s)
        frac = "".join(str(_UNITS[x]) for x in sm.group(2).split()) if sm.group(2) else None
        assert frac == m.group(2), (w, s)
    elif slot.name == "street":
        house = int(w.split(" ")[0])
        said = s[: s.index(" " + w.split(" ", 1)[1])]
        if said.split(" ")[-1] == "hundred" and len(said.split()) == 2:  # "eleven hundred"
            value = words_to_int(said)
        elif house >= 1000 and "thousand" not in said:  # pairs: "eleven forty-two", "eleven oh five"
            hi, _, lo = said.partition(" ")
            value = words_to_int(hi) * 100 + words_to_int(lo.replace("oh ", ""))
        else:
            value = words_to_int(said)
        assert value == house, (w, s)
    elif slot.name in tg.TERMS:
        assert (w, s) == tg.TERMS[slot.name] and slot.term == w


def test_written_and_spoken_forms_agree() -> None:
    utts = tg.generate_sentences(1500, seed=7, general_share=0.25)
    seen_slot_names: set[str] = set()
    for u in utts:
        pos_w, pos_s = 0, 0
        rebuilt, last = [], 0
        for slot in u.slots:
            start = u.text.lower().index(slot.written.lower(), last)
            rebuilt += [u.text[last:start], slot.spoken]
            last = start + len(slot.written)
            seen_slot_names.add(slot.name)
            _check_slot(slot)
            # slots appear in order in both forms (a sentence-initial slot may be capitalised)
            pos_w = u.text.lower().index(slot.written.lower(), pos_w) + len(slot.written)
            pos_s = u.spoken.lower().index(slot.spoken.lower(), pos_s) + len(slot.spoken)
        # outside the slots the two forms are the same words
        assert ("".join(rebuilt) + u.text[last:]).lower() == u.spoken.lower(), (u.text, u.spoken)
        # the TTS never has to read digits or symbols; the label never spells amounts out
        assert not re.search(r"[0-9$%]", u.spoken), u.spoken
        assert " dollars" not in u.text and " percent" not in u.text, u.text
        assert u.text[0].isupper() and u.text[-1] in ".?!", u.text
        assert u.spoken[0].isupper()
    for needed in (
        "amount",
        "last4",
        "routing",
        "date",
        "rate",
        "APR",
        "IBAN",
        "SWIFT",
        "ACH",
        "Zelle",
        "HELOC",
    ):
        assert needed in seen_slot_names, needed


def test_entities_present() -> None:
    utts = tg.generate_sentences(2000, seed=3)
    blob = "\n".join(u.text for u in utts)
    for ent in ("Zelle", "Venmo", "PayPal", "Apple Pay", "Google Pay", "Visa", "Mastercard",
                "American Express", "Discover", "APR", "IBAN", "SWIFT", "ACH", "routing number",
                "overdraft", "wire transfer", "direct deposit", "CD", "HELOC", "ATM"):  # fmt: skip
        assert ent in blob, ent
    assert re.search(r"\$\d{1,3},\d{3}", blob)  # comma thousands
    assert re.search(
        r"(January|February|March|April|May|June|July|August|September|October|November|December) \d{1,2}(st|nd|rd|th)",
        blob,
    )


def test_determinism_uniqueness_and_general_share() -> None:
    a = tg.generate_sentences(400, seed=11, general_share=0.25)
    b = tg.generate_sentences(400, seed=11, general_share=0.25)
    c = tg.generate_sentences(400, seed=12, general_share=0.25)
    assert a == b
    assert [u.text for u in a] != [u.text for u in c]
    assert len({u.text for u in a}) == 400
    assert sum(u.domain == "general" for u in a) == 100
    assert all(u.intent == "general" for u in a if u.domain == "general")
    topics = {u.topic for u in a if u.domain == "general"}
    assert {"weather", "travel", "food", "work", "family"} <= topics


def test_domain_terms() -> None:
    utts = tg.generate_sentences(300, seed=2)
    terms = tg.domain_terms(utts)
    assert terms == sorted(set(terms), key=str.lower)
    blob = "\n".join(u.text for u in utts if u.domain == "banking")
    assert all(t in blob or t.lower() in blob.lower() for t in terms)
    assert {"APR", "Zelle"} & set(terms)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        tg.generate_sentences(10, seed=0, general_share=1.5)
    with pytest.raises(ValueError):
        tg.generate_banking(random.Random(0), intent="mortgage")
    with pytest.raises(KeyError, match="unknown slot"):
        tg._fill("pay {nonexistent}", random.Random(0))


_QUESTION_WORDS = {"Can", "Could", "What", "What's", "How", "Is", "Do", "Does", "Will", "Why", "Where",
                   "Where's", "When", "Did", "Are", "Should", "Was", "Have", "Would"}  # fmt: skip


def test_questions_end_with_question_mark() -> None:
    """Every paraphrase combination: a last sentence opening with a question word ends in '?'."""
    import itertools

    for key, templates in [*BANKING_TEMPLATES.items(), *GENERAL_TEMPLATES.items()]:
        for t in templates:
            parts = re.split(r"(\[[^\]]*\])", t)
            options = [p[1:-1].split("|") if p.startswith("[") else [p] for p in parts]
            for combo in itertools.product(*options):
                last = re.split(r"(?<=[.?!])\s+", "".join(combo).strip())[-1]
                if last.split()[0].strip(",") in _QUESTION_WORDS:
                    assert last.endswith("?"), (key, t)
                else:
                    assert last[-1] in ".?!", (key, t)
