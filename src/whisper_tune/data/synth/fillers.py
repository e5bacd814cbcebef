"""Slot fillers: draw one entity or number and give it in both written and spoken form.

Why a separate module: every ``{slot}`` of a template is filled here, and each filler is
where the transcript convention is enforced per slot (``$1,250`` written vs "one thousand
two hundred fifty dollars" spoken, digit strings read digit by digit, house numbers read in
pairs); the word lists come from ``banking_vocab`` and ``general_vocab``, the template
logic that calls ``FILLERS`` is in ``text``. A filler only consumes ``rng`` draws, so the
order of draws (and the corpus for a seed) depends on this code, not on where it lives.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from whisper_tune.data.synth import numbers as num
from whisper_tune.data.synth.banking_vocab import (
    ABROAD_CITIES,
    ACCOUNTS,
    APP_ERRORS,
    BILL_SPOKEN,
    BILLS,
    BUSINESSES,
    CARD_KINDS,
    CITIES,
    COUNTRIES,
    DEVICES,
    MERCHANT_SPOKEN,
    MERCHANTS,
    NAMES,
    NETWORKS,
    P2P,
    PEOPLE,
    STREETS,
    WALLETS,
    WEEKDAYS,
)
from whisper_tune.data.synth.general_vocab import GENERAL_FILLERS

__all__ = ["Slot", "Filler", "FILLERS"]


@dataclass(frozen=True)
class Slot:
    """One filled slot: its name, the written and spoken forms, and whether it is a domain term."""

    name: str
    written: str
    spoken: str
    term: str = ""  # the domain term this slot contributes ("" = none), e.g. "Visa" for "Visa debit card"


Filler = Callable[[random.Random], Slot]


def _pick(name: str, values: list[str], spoken: dict[str, str] | None = None) -> Filler:
    def f(rng: random.Random) -> Slot:
        w = rng.choice(values)
        return Slot(name, w, (spoken or {}).get(w, w))

    return f


def _pick_pairs(name: str, pairs: list[tuple[str, str]]) -> Filler:
    def f(rng: random.Random) -> Slot:
        w, s = rng.choice(pairs)
        return Slot(name, w, s, w)

    return f


def _amount(name: str, lo: int, hi: int, cents_share: float = 0.25, round_to: int = 5) -> Filler:
    def f(rng: random.Random) -> Slot:
        dollars = rng.randint(lo, hi)
        if dollars >= 1000:
            dollars = max(round_to, round(dollars / 50) * 50) if rng.random() < 0.7 else dollars
        elif dollars >= 50 and rng.random() < 0.6:
            dollars = max(round_to, round(dollars / round_to) * round_to)
        cents = dollars * 100
        if rng.random() < cents_share and dollars < 5000:
            cents += rng.randint(1, 99)
        w, s = num.amount_forms(cents)
        return Slot(name, w, s)

    return f


def _digits(name: str, n: int) -> Filler:
    def f(rng: random.Random) -> Slot:
        d = "".join(str(rng.randint(0, 9)) for _ in range(n))
        return Slot(name, d, num.digits_spoken(d))

    return f


def _date(rng: random.Random) -> Slot:
    m = rng.choice(num.MONTHS)
    d = rng.randint(1, 28)
    return Slot("date", f"{m} {d}{num.ordinal_suffix(d)}", f"{m} {num.ordinal_words(d)}")


def _day_of_month(rng: random.Random) -> Slot:
    d = rng.randint(1, 28)
    return Slot("dom", f"{d}{num.ordinal_suffix(d)}", num.ordinal_words(d))


def _apr(rng: random.Random) -> Slot:
    w, s = num.percent_forms(rng.choice([1299, 1499, 1799, 1999, 2199, 2499, 2699, 2999, 950, 699]))
    return Slot("rate", w, s)


def _rate(rng: random.Random) -> Slot:
    w, s = num.percent_forms(
        rng.choice([50, 125, 200, 250, 325, 375, 400, 450, 475, 500, 525, 650, 725, 850])
    )
    return Slot("rate", w, s)


def _year(rng: random.Random) -> Slot:
    w, s = num.year_forms(rng.randint(2019, 2027))
    return Slot("year", w, s)


def _routing(rng: random.Random) -> Slot:
    d = rng.choice(["0", "1", "2", "3"]) + "".join(str(rng.randint(0, 9)) for _ in range(8))
    return Slot("routing", d, num.digits_spoken(d))


def _count(rng: random.Random) -> Slot:
    n = rng.choice([2, 3, 4, 5, 6, 10])
    w = num.number_to_words(n)
    return Slot("count", w, w)


def _street_address(rng: random.Random) -> Slot:
    house = rng.randint(12, 4999)
    street = rng.choice(STREETS)
    hi, lo = divmod(house, 100)
    if house < 1000 or hi % 10 == 0:
        said = num.number_to_words(house)
    else:  # house numbers are said in pairs: 1142 -> "eleven forty-two", 1105 -> "eleven oh five"
        said = (
            num.number_to_words(hi)
            + " "
            + (
                num.number_to_words(lo)
                if lo >= 10
                else (f"oh {num.number_to_words(lo)}" if lo else "hundred")
            )
        )
    return Slot("street", f"{house} {street}", f"{said} {street}")


def _card(rng: random.Random) -> Slot:
    net_w, net_s = rng.choice(NETWORKS)
    kind = rng.choice(CARD_KINDS)
    return Slot("card", f"{net_w} {kind}", f"{net_s} {kind}", net_w)


FILLERS: dict[str, Filler] = {
    "p2p": _pick_pairs("p2p", P2P),
    "wallet": _pick_pairs("wallet", WALLETS),
    "network": _pick_pairs("network", NETWORKS),
    "card": _card,
    "cardkind": _pick("cardkind", CARD_KINDS),
    "merchant": _pick("merchant", MERCHANTS, MERCHANT_SPOKEN),
    "city": _pick("city", CITIES),
    "abroad_city": _pick("abroad_city", ABROAD_CITIES),
    "country": _pick("country", COUNTRIES),
    "person": _pick("person", PEOPLE),
    "name": _pick("name", NAMES),
    "bill": _pick("bill", BILLS, BILL_SPOKEN),
    "account": _pick("account", ACCOUNTS),
    "app_error": _pick("app_error", APP_ERRORS),
    "device": _pick("device", DEVICES),
    "business": _pick("business", BUSINESSES),
    "weekday": _pick("weekday", WEEKDAYS),
    "amount": _amount("amount", 5, 900),
    "small_amount": _amount("small_amount", 3, 120, cents_share=0.6, round_to=1),
    "big_amount": _amount("big_amount", 5000, 95000, cents_share=0.0),
    "loan_amount": _amount("loan_amount", 10000, 250000, cents_share=0.0),
    "limit": _amount("limit", 200, 3000, cents_share=0.0, round_to=100),
    "last4": _digits("last4", 4),
    "routing": _routing,
    "date": _date,
    "dom": _day_of_month,
    "apr": _apr,
    "rate": _rate,
    "year": _year,
    "count": _count,
    "street": _street_address,
    "zip": _digits("zip", 5),
}


def _gen_pick(name: str) -> Filler:
    return _pick(name, GENERAL_FILLERS[name])


def _temperature(rng: random.Random) -> Slot:
    t = rng.randint(20, 98)
    return Slot("temp", f"{t} degrees", f"{num.number_to_words(t)} degrees")


def _clock(rng: random.Random) -> Slot:
    h = rng.randint(1, 12)
    return Slot("clock", f"{h} o'clock", f"{num.number_to_words(h)} o'clock")


def _minutes(rng: random.Random) -> Slot:
    m = rng.choice([10, 15, 20, 25, 30, 40, 45])
    return Slot("minutes", f"{m} minutes", f"{num.number_to_words(m)} minutes")


def _oven(rng: random.Random) -> Slot:
    t = rng.choice([325, 350, 375, 400, 425])
    return Slot("oven", f"{t} degrees", f"{num.number_to_words(t)} degrees")


for _k in GENERAL_FILLERS:
    FILLERS.setdefault(_k, _gen_pick(_k))
FILLERS["temp"] = _temperature
FILLERS["clock"] = _clock
FILLERS["minutes"] = _minutes
FILLERS["oven"] = _oven
