"""Sentence generators: bank-customer requests for the 14 MINDS-14 intents, and everyday English.

Why: the demo has no recordings, so the words must come from somewhere, and they must
look like what a bank's call centre hears (the entities Whisper mishears: Zelle, APR,
IBAN, HELOC, routing numbers, amounts) while staying varied enough that a fine-tuned
model learns the words rather than memorising a handful of sentences. A general-English
generator is mixed in so fine-tuning on banking speech does not wreck everyday speech.

Transcript convention (each sentence has two forms; see also the datasheet):

* ``text`` is the **written form Whisper emits**, the training label: sentence case with
  punctuation; dollar amounts as ``$1,250`` / ``$45.99`` (no ``.00``); percentages as
  ``19.99%``; dates as ``March 3rd``; years as ``2024``; account/card/routing digits as
  digit strings (``4521``, ``021000021``); acronyms in capitals (``APR``, ``ACH``,
  ``IBAN``, ``SWIFT``, ``HELOC``, ``CD``, ``ATM``, ``PIN``); brand names as the brands
  write them (``Zelle``, ``PayPal``, ``Apple Pay``, ``Mastercard``, ``American Express``).
  Small counts in running text stay words ("two cards"), as Whisper usually writes them.
* ``spoken`` is **what the TTS engine reads**: the same sentence with every slot spelled
  the way a person says it ("one thousand two hundred fifty dollars", "A P R",
  "four five two one", "March third", "hee lock" for HELOC, "zell" for Zelle, which
  espeak-ng otherwise reads as "zelly").

Templates use ``[a|b|c]`` for paraphrase alternatives (an empty alternative is allowed)
and ``{slot}`` for fillers; a fixed term such as ``{APR}`` has one written and one
spoken form. Every filled slot is recorded, so tests can check the two forms agree.
The templates and word lists are data in ``banking_templates``, ``banking_vocab`` and
``general_vocab``; the per-slot spellings are in ``fillers``; this module turns them into
sentences.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from whisper_tune.data.synth.banking_templates import BANKING_TEMPLATES
from whisper_tune.data.synth.banking_vocab import CLOSERS, OPENERS, PHRASE_TERMS, TERMS
from whisper_tune.data.synth.fillers import FILLERS, Slot
from whisper_tune.data.synth.general_vocab import GENERAL_TEMPLATES

__all__ = [
    "INTENTS",
    "Slot",
    "Utterance",
    "generate_banking",
    "generate_general",
    "generate_sentences",
    "TERMS",
    "PHRASE_TERMS",
    "domain_terms",
    "template_keys",
    "held_out_templates",
    "fill_template",
]

INTENTS: tuple[str, ...] = (
    "abroad",
    "address",
    "app_error",
    "atm_limit",
    "balance",
    "business_loan",
    "card_issues",
    "cash_deposit",
    "direct_debit",
    "freeze",
    "high_value_payment",
    "joint_account",
    "latest_transactions",
    "pay_bill",
)


@dataclass(frozen=True)
class Utterance:
    """A sentence in both forms with the slots that made it."""

    text: str
    spoken: str
    domain: str  # "banking" | "general"
    intent: str  # one of INTENTS, or "general"
    topic: str  # intent for banking, topic for general
    template: str  # "<intent>/<index>"
    slots: tuple[Slot, ...] = field(default_factory=tuple)

    @property
    def terms(self) -> list[str]:
        return [s.term for s in self.slots if s.term]


_ALT_RE = re.compile(r"\[([^\[\]]*)\]")
_SLOT_RE = re.compile(r"\{(\w+)\}")
_KEEP_CAPS = {"I", "I'd", "I'm", "I've", "I'll", "Face"}  # words that stay capitalised after an opener


def _expand_alternatives(template: str, rng: random.Random) -> str:
    return _ALT_RE.sub(lambda m: rng.choice(m.group(1).split("|")), template)


def _fill(
    template: str, rng: random.Random, extra: Mapping[str, Callable[[random.Random], Slot]] | None = None
) -> tuple[str, str, tuple[Slot, ...]]:
    """Fill alternatives and slots; returns (written, spoken, slots). ``extra``: more fillers."""
    body = _expand_alternatives(template, rng)
    slots: list[Slot] = []
    written_parts: list[str] = []
    spoken_parts: list[str] = []
    pos = 0
    for m in _SLOT_RE.finditer(body):
        name = m.group(1)
        written_parts.append(body[pos : m.start()])
        spoken_parts.append(body[pos : m.start()])
        if name in TERMS:
            w, s = TERMS[name]
            slot = Slot(name, w, s, w)
        elif name in FILLERS:
            slot = FILLERS[name](rng)
        elif extra is not None and name in extra:
            slot = extra[name](rng)
        else:  # a template typo must fail loudly in tests, not produce "{foo}" audio
            raise KeyError(f"unknown slot {{{name}}} in template {template!r}")
        slots.append(slot)
        written_parts.append(slot.written)
        spoken_parts.append(slot.spoken)
        pos = m.end()
    written_parts.append(body[pos:])
    spoken_parts.append(body[pos:])
    return "".join(written_parts), "".join(spoken_parts), tuple(slots)


def fill_template(
    template: str, rng: random.Random, extra: Mapping[str, Callable[[random.Random], Slot]] | None = None
) -> tuple[str, str, tuple[Slot, ...]]:
    """(written, spoken, slots) of one template, with the corpus' fillers plus ``extra`` ones."""
    written, spoken, slots = _fill(template, rng, extra)
    return written[:1].upper() + written[1:], spoken[:1].upper() + spoken[1:], slots


def _join_opener(opener: str, body: str, starts_with_slot: bool) -> str:
    if not opener:
        return body[:1].upper() + body[1:]
    first = body.split(" ", 1)[0]
    if not starts_with_slot and first not in _KEEP_CAPS and first[:1].isupper():
        body = body[:1].lower() + body[1:]
    return opener + body


def _make(template: str, key: str, domain: str, topic: str, rng: random.Random, polite: bool) -> Utterance:
    written, spoken, slots = _fill(template, rng)
    starts_with_slot = template.startswith("{")
    opener = rng.choice(OPENERS) if polite else ""
    closer = rng.choice(CLOSERS) if polite else ""
    written = _join_opener(opener, written, starts_with_slot) + closer
    spoken = _join_opener(opener, spoken, starts_with_slot) + closer
    intent = topic if domain == "banking" else "general"
    return Utterance(written, spoken, domain, intent, topic, key, slots)


def generate_banking(
    rng: random.Random, intent: str | None = None, allowed: list[int] | None = None
) -> Utterance:
    """One banking utterance (uniform over intents unless ``intent`` is given; over ``allowed`` templates)."""
    intent = intent or rng.choice(INTENTS)
    if intent not in BANKING_TEMPLATES:
        raise ValueError(f"unknown intent {intent!r}; known: {', '.join(INTENTS)}")
    templates = BANKING_TEMPLATES[intent]
    i = rng.choice(allowed) if allowed else rng.randrange(len(templates))
    return _make(templates[i], f"{intent}/{i}", "banking", intent, rng, polite=True)


def generate_general(
    rng: random.Random, topic: str | None = None, allowed: list[int] | None = None
) -> Utterance:
    """One everyday-English utterance (weather, travel, food, work, family, leisure, errands)."""
    topic = topic or rng.choice(sorted(GENERAL_TEMPLATES))
    templates = GENERAL_TEMPLATES[topic]
    i = rng.choice(allowed) if allowed else rng.randrange(len(templates))
    return _make(templates[i], f"general/{topic}/{i}", "general", topic, rng, polite=False)


def template_keys() -> dict[str, list[str]]:
    """Template ids per intent/topic: ``"balance/3"``, ``"general/food/1"``."""
    keys = {k: [f"{k}/{i}" for i in range(len(v))] for k, v in BANKING_TEMPLATES.items()}
    keys.update({k: [f"general/{k}/{i}" for i in range(len(v))] for k, v in GENERAL_TEMPLATES.items()})
    return keys


def held_out_templates(fraction: float, seed: int) -> set[str]:
    """``fraction`` of each intent's/topic's templates (at least one), reserved for evaluation."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"template hold-out fraction must be in (0, 1), got {fraction}")
    rng = random.Random(f"holdout:{seed}")
    held: set[str] = set()
    for _k, keys in sorted(template_keys().items()):
        held.update(rng.sample(keys, max(1, round(len(keys) * fraction))))
    return held


def generate_sentences(
    n: int,
    seed: int,
    general_share: float = 0.25,
    *,
    template_filter: Callable[[str], bool] | None = None,
    seen: set[str] | None = None,
    salt: str = "",
) -> list[Utterance]:
    """``n`` distinct utterances (by written text), deterministic for ``seed``.

    Banking intents are drawn round-robin in a shuffled order so every intent gets
    ``n_banking / 14`` sentences (+-1); general topics likewise. ``template_filter``
    keeps only templates whose id (see :func:`template_keys`) it accepts; ``seen``
    (shared between calls) keeps sentences distinct across calls.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    if not 0.0 <= general_share <= 1.0:
        raise ValueError(f"general_share must be in [0, 1], got {general_share}")
    rng = random.Random(f"text:{seed}{salt}")
    n_general = round(n * general_share)
    n_banking = n - n_general
    out: list[Utterance] = []
    seen = set() if seen is None else seen
    keys = template_keys()

    def allowed(key: str) -> list[int] | None:
        if template_filter is None:
            return None
        ok = [i for i, k in enumerate(keys[key]) if template_filter(k)]
        if not ok:
            raise ValueError(f"no template of {key!r} passes the template filter")
        return ok

    def draw(
        count: int, names: list[str], gen: Callable[[random.Random, str, list[int] | None], Utterance]
    ) -> None:
        order = names[:]
        rng.shuffle(order)
        for k in range(count):
            key = order[k % len(order)]
            ok = allowed(key)
            for _attempt in range(200):
                u = gen(rng, key, ok)
                if u.text not in seen:
                    seen.add(u.text)
                    out.append(u)
                    break
            else:
                raise ValueError(
                    f"could not generate {count} distinct sentences for {key!r}; ask for fewer clips"
                )

    draw(n_banking, list(INTENTS), generate_banking)
    draw(n_general, sorted(GENERAL_TEMPLATES), generate_general)
    rng.shuffle(out)
    return out


class _Termed(Protocol):
    """An utterance or a clip plan: its domain, written text and slot terms."""

    @property
    def domain(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def terms(self) -> Sequence[str]: ...


def domain_terms(utterances: Iterable[_Termed]) -> list[str]:
    """Sorted banking terms the corpus actually contains (slot terms + phrase terms found)."""
    found: set[str] = set()
    for u in utterances:
        if u.domain != "banking":
            continue
        found.update(u.terms)
        low = u.text.lower()
        found.update(p for p in PHRASE_TERMS if p.lower() in low)
    return sorted(found, key=str.lower)
