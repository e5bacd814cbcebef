"""Numbers, amounts, dates and digit strings in two forms: written and spoken.

Why: every synthetic sentence exists twice. The TTS engines read the *spoken* form
("five hundred dollars", "four five two one") because espeak-ng and Piper's phonemizer
mis-read many written forms; Whisper is trained on the *written* form it emits on real
speech ("$500", "4521"). Keeping both forms produced by one function per slot type is what
keeps them consistent; ``tests/unit/synth`` re-derives spoken from written independently.
"""

from __future__ import annotations

__all__ = [
    "number_to_words",
    "ordinal_suffix",
    "ordinal_words",
    "amount_forms",
    "digits_spoken",
    "percent_forms",
    "year_forms",
    "MONTHS",
]

_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_ORD_IRREGULAR = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}
_DIGIT_WORDS = {str(i): _ONES[i] for i in range(10)}

MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


def _below_thousand(n: int) -> str:
    parts: list[str] = []
    hundreds, rest = divmod(n, 100)
    if hundreds:
        parts.append(f"{_ONES[hundreds]} hundred")
    if rest:
        if rest < 20:
            parts.append(_ONES[rest])
        else:
            tens, ones = divmod(rest, 10)
            parts.append(_TENS[tens] + (f"-{_ONES[ones]}" if ones else ""))
    return " ".join(parts)


def number_to_words(n: int) -> str:
    """Cardinal in American English words: 1250 -> 'one thousand two hundred fifty'."""
    if n < 0:
        return "minus " + number_to_words(-n)
    if n == 0:
        return "zero"
    if n >= 10**12:
        raise ValueError(f"number too large to spell: {n}")
    parts: list[str] = []
    for scale, name in ((10**9, "billion"), (10**6, "million"), (10**3, "thousand")):
        if n >= scale:
            head, n = divmod(n, scale)
            parts.append(f"{_below_thousand(head)} {name}")
    if n:
        parts.append(_below_thousand(n))
    return " ".join(parts)


def ordinal_suffix(n: int) -> str:
    """'st'/'nd'/'rd'/'th' as Whisper writes ordinals ('3rd', '21st', '12th')."""
    if 10 <= n % 100 <= 20:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def ordinal_words(n: int) -> str:
    """21 -> 'twenty-first', 12 -> 'twelfth'."""
    words = number_to_words(n)
    head, sep, last = words.rpartition("-") if "-" in words.split(" ")[-1] else words.rpartition(" ")
    if last in _ORD_IRREGULAR:
        last = _ORD_IRREGULAR[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last = last + "th"
    return f"{head}{sep}{last}"


def amount_forms(cents: int) -> tuple[str, str]:
    """Dollar amount from integer cents -> ('$1,250.50', 'one thousand two hundred fifty dollars and fifty cents').

    Whole amounts are written without '.00' ('$500'), as Whisper does.
    """
    if cents < 0:
        raise ValueError("negative amount")
    dollars, c = divmod(cents, 100)
    written = f"${dollars:,}" + (f".{c:02d}" if c else "")
    dollar_word = "dollar" if dollars == 1 else "dollars"
    spoken = f"{number_to_words(dollars)} {dollar_word}"
    if c:
        spoken += f" and {number_to_words(c)} {'cent' if c == 1 else 'cents'}"
    return written, spoken


def digits_spoken(digits: str) -> str:
    """'4521' -> 'four five two one' (account digits are read one by one)."""
    if not digits.isdigit():
        raise ValueError(f"not a digit string: {digits!r}")
    return " ".join(_DIGIT_WORDS[d] for d in digits)


def percent_forms(value_hundredths: int) -> tuple[str, str]:
    """Percentage from hundredths: 1999 -> ('19.99%', 'nineteen point nine nine percent')."""
    whole, frac = divmod(value_hundredths, 100)
    if frac == 0:
        return f"{whole}%", f"{number_to_words(whole)} percent"
    frac_s = f"{frac:02d}".rstrip("0")
    return f"{whole}.{frac_s}%", f"{number_to_words(whole)} point {digits_spoken(frac_s)} percent"


def year_forms(year: int) -> tuple[str, str]:
    """2024 -> ('2024', 'twenty twenty-four'); 2005 -> ('2005', 'two thousand five')."""
    hi, lo = divmod(year, 100)
    if 2000 <= year < 2010:
        return str(year), number_to_words(year)
    lo_words = number_to_words(lo) if lo >= 10 else (f"oh {number_to_words(lo)}" if lo else "hundred")
    return str(year), f"{number_to_words(hi)} {lo_words}"
