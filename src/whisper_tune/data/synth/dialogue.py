"""The words of a synthetic banking call: who says what, turn by turn (data + a small generator).

Why apart from ``calls`` (which renders audio): the script of a call is pure text and seeded,
so it is tested without TTS, and it is what a reviewer edits. Customer requests come from the
corpus generator (``text.generate_banking``, the same 14 intents, templates and fillers, so a
call's words are the corpus' domain words); agent lines are greetings, identity checks,
acknowledgements and closings written here, filled with the corpus' slot fillers plus the
entities a real call carries and a report must mask (card, account and phone numbers, e-mail
addresses: see ``whisper_tune.scoring.redact``). Every line has a written form (the label)
and a spoken form (what the TTS reads), as in ``text``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Generator
from dataclasses import dataclass

from whisper_tune.data.synth import numbers as num
from whisper_tune.data.synth import text as textgen
from whisper_tune.data.synth.banking_vocab import NAMES
from whisper_tune.data.synth.fillers import Slot

__all__ = ["AGENT", "CUSTOMER", "Line", "EXTRA_FILLERS", "luhn_complete", "script"]

AGENT = "agent"
CUSTOMER = "customer"

BANKS = ["First Harbor Bank", "Northwind Bank", "Summit Credit Union", "Riverside Savings"]
EMAIL_DOMAINS = [
    ("gmail.com", "gmail dot com"),
    ("yahoo.com", "yahoo dot com"),
    ("outlook.com", "outlook dot com"),
]


@dataclass(frozen=True)
class Line:
    """One turn: who speaks, the written label, the spoken TTS input, and its role in the call."""

    speaker: str  # AGENT | CUSTOMER
    text: str
    spoken: str
    kind: str  # greeting | request | verify | answer | response | closing
    intent: str = ""


def luhn_complete(body: str) -> str:
    """``body`` plus the Luhn check digit (a card number that passes the checksum)."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return body + str((10 - total % 10) % 10)


def _grouped_spoken(groups: list[str]) -> str:
    return ", ".join(num.digits_spoken(g) for g in groups)


def _card_number(rng: random.Random) -> Slot:
    digits = luhn_complete(rng.choice("45") + "".join(str(rng.randint(0, 9)) for _ in range(14)))
    groups = [digits[i : i + 4] for i in range(0, 16, 4)]
    return Slot("card_number", " ".join(groups), _grouped_spoken(groups))


def _account_number(rng: random.Random) -> Slot:
    d = str(rng.randint(1, 9)) + "".join(str(rng.randint(0, 9)) for _ in range(rng.choice([7, 9])))
    return Slot("account_number", d, num.digits_spoken(d))


def _phone(rng: random.Random) -> Slot:
    groups = [str(rng.randint(201, 989)), f"{rng.randint(200, 999)}", f"{rng.randint(0, 9999):04d}"]
    return Slot("phone", "-".join(groups), _grouped_spoken(groups))


def _email(rng: random.Random) -> Slot:
    first, last = (
        rng.choice(NAMES).lower(),
        rng.choice(["smith", "lee", "garcia", "brown", "patel", "nguyen"]),
    )
    dom, dom_spoken = rng.choice(EMAIL_DOMAINS)
    return Slot("email", f"{first}.{last}@{dom}", f"{first} dot {last} at {dom_spoken}")


def _birth_year(rng: random.Random) -> Slot:
    w, s = num.year_forms(rng.randint(1950, 2002))
    return Slot("birth_year", w, s)


def _pick(name: str, values: list[str]) -> Callable[[random.Random], Slot]:
    def f(rng: random.Random) -> Slot:
        v = rng.choice(values)
        return Slot(name, v, v)

    return f


EXTRA_FILLERS: dict[str, Callable[[random.Random], Slot]] = {
    "bank": _pick("bank", BANKS),
    "agent_name": _pick("agent_name", NAMES),
    "card_number": _card_number,
    "account_number": _account_number,
    "phone": _phone,
    "email": _email,
    "birth_year": _birth_year,
}

GREETINGS = [
    "Thank you for calling {bank}, my name is {agent_name}. How can I help you today?",
    "[Good morning|Good afternoon|Hello], you've reached {bank}, this is {agent_name} speaking. How may I help you?",
    "Thanks for calling {bank}. You're speaking with {agent_name}, what can I do for you today?",
]
VERIFY_INTRO = [
    "I can help you with that. First I need to verify your identity.",
    "Sure, I can look into that. Before we start, I'll need to confirm a few details.",
    "Of course. Let me just verify the account first.",
]
# (agent question, customer answer templates)
VERIFY: list[tuple[str, list[str]]] = [
    ("Can I have your full name, please?", ["[It's|My name is|Sure, it's] {name} {surname}."]),
    ("Could you confirm the last four digits of your card?", ["[Sure, it's|It ends in] {last4}."]),
    ("What's the zip code on the account?", ["[It's|That's] {zip}."]),
    ("Can you confirm your date of birth, please?", ["[It's|Sure,] {date}, {birth_year}."]),
    ("What's the best phone number to reach you on?", ["[It's|You can reach me at] {phone}."]),
    ("Can you confirm the email address on file?", ["[It's|Sure, it's] {email}."]),
    ("Could you read me the account number, please?", ["[Yes, it's|It's] {account_number}."]),
    ("And the card number, please?", ["[Okay, it's|It's] {card_number}."]),
]
ACKS = [
    "Thank you, you're verified.",
    "Thanks, I've found your account.",
    "Perfect, thank you for confirming that.",
]
RESPONSES = [
    "Let me look into that for you. One moment, please.",
    "I see. I've pulled up your account and I can help with that.",
    "Okay, I've made a note on your account, and that should be sorted within two business days.",
    "Thanks for your patience. I've checked, and I can take care of that for you right now.",
    "I understand. I've gone ahead and updated that for you.",
    "Alright, that's done. You'll get a confirmation by text in a few minutes.",
]
FOLLOWUP_ASK = ["Is there anything else I can help you with today?", "Anything else I can do for you?"]
DONE = [
    "No, that's all. Thank you.",
    "No, that's everything, thanks for your help.",
    "That's it, thanks a lot.",
]
CLOSINGS = [
    "Thank you for calling {bank}. Have a great day.",
    "You're welcome. Have a nice day, goodbye.",
    "Glad I could help. Thanks for calling, take care.",
]
SURNAMES = ["Smith", "Johnson", "Garcia", "Lee", "Brown", "Patel", "Nguyen", "Miller"]


def _line(speaker: str, template: str, kind: str, rng: random.Random, intent: str = "") -> Line:
    written, spoken, _slots = textgen.fill_template(
        template, rng, {**EXTRA_FILLERS, "surname": _pick("surname", SURNAMES)}
    )
    return Line(speaker, written, spoken, kind, intent)


def _request(rng: random.Random, intent: str, kind: str) -> Line:
    u = textgen.generate_banking(rng, intent)
    return Line(CUSTOMER, u.text, u.spoken, kind, intent)


def script(rng: random.Random, *, n_verify: int = 2) -> Generator[tuple[Line, bool], bool, None]:
    """The lines of one call, in order, as ``(line, can_close)``.

    Agent responses end with "anything else?". After each such ``can_close=True`` line the
    caller may send ``True`` (``gen.send(True)``) to end the call: the generator then yields
    the customer's "no, that's all" and the agent's closing, and stops. Otherwise it continues with another
    customer request and agent response (the middle of the call repeats without end), so
    the renderer decides the length from the audio it has made.
    """
    intent = rng.choice(textgen.INTENTS)
    _ = yield _line(AGENT, rng.choice(GREETINGS), "greeting", rng), False
    _ = yield _request(rng, intent, "request"), False
    _ = yield _line(AGENT, rng.choice(VERIFY_INTRO) + " " + VERIFY[0][0], "verify", rng), False
    _ = yield _line(CUSTOMER, rng.choice(VERIFY[0][1]), "answer", rng), False
    for q, answers in rng.sample(VERIFY[1:], n_verify):
        _ = yield _line(AGENT, q, "verify", rng), False
        _ = yield _line(CUSTOMER, rng.choice(answers), "answer", rng), False
    ask = rng.choice(FOLLOWUP_ASK)
    close = yield _line(AGENT, f"{rng.choice(ACKS)} {rng.choice(RESPONSES)} {ask}", "response", rng), True
    while not close:
        # a follow-up request, mostly on the same topic
        topic = intent if rng.random() < 0.6 else rng.choice(textgen.INTENTS)
        _ = yield _request(rng, topic, "request"), False
        ask = rng.choice(FOLLOWUP_ASK)
        close = yield _line(AGENT, f"{rng.choice(RESPONSES)} {ask}", "response", rng, topic), True
    yield _line(CUSTOMER, rng.choice(DONE), "answer", rng), False
    yield _line(AGENT, rng.choice(CLOSINGS), "closing", rng), False
