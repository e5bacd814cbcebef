"""Word/character error rates, per-utterance alignments and domain-term recall.

Why: one number (WER) says *how much* a model gets wrong; a fine-tuning project also has to
show *what* it gets wrong (which words are substituted, dropped or invented) and whether
the domain vocabulary it was tuned for ("Zelle", "APR", "overdraft") now comes out right.

Conventions (used everywhere in whisper-tune):

- Rates are fractions (0.123), never percent. Corpus rates are computed from summed edit
  counts (errors / reference words over all utterances), not as a mean of per-utterance
  rates, so long utterances weigh what they should.
- Text is normalized before alignment (``normalizers.get_normalizer``); the orthographic
  rate uses the ``none`` normalizer.
- A corpus with no reference words at all has WER 0.0 when the hypotheses are empty too,
  else 1.0 (there is no meaningful denominator; this avoids NaN in JSON).
- Domain-term recall = occurrences of the terms in the (normalized) references that also
  occur in the aligned hypothesis of the same utterance, divided by all such occurrences;
  a term occurring twice in a reference and once in its hypothesis counts 1 of 2.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from whisper_tune.errors import DataError
from whisper_tune.scoring.normalizers import get_normalizer

__all__ = [
    "ErrorCounts",
    "TermRecall",
    "UtteranceScore",
    "WordError",
    "domain_term_recall",
    "error_rates",
    "load_terms",
    "resolve_normalizer",
    "score_utterance",
]

Normalizer = Callable[[str], str]
ErrorKind = Literal["substitution", "deletion", "insertion"]


def resolve_normalizer(normalizer: str | Normalizer | None) -> Normalizer:
    """A normalizer callable from a kind name (``whisper_en``/``basic``/``none``) or a callable."""
    if normalizer is None:
        return get_normalizer("none")
    if isinstance(normalizer, str):
        return get_normalizer(normalizer)
    return normalizer


@dataclass
class WordError:
    """One aligned edit: ``ref`` words replaced by / missing from / added in the hypothesis."""

    kind: ErrorKind
    ref: str  # reference word(s), "" for an insertion
    hyp: str  # hypothesis word(s), "" for a deletion
    position: int  # index of the first reference word involved (insertion: the word it precedes)

    def __str__(self) -> str:
        if self.kind == "substitution":
            return f"{self.ref} -> {self.hyp}"
        if self.kind == "deletion":
            return f"-{self.ref}"
        return f"+{self.hyp}"


@dataclass
class ErrorCounts:
    """Summable edit counts; rates derive from them."""

    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    hits: int = 0
    char_edits: int = 0
    ref_chars: int = 0
    hyp_words: int = 0

    @property
    def ref_words(self) -> int:
        return self.substitutions + self.deletions + self.hits

    @property
    def word_errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def wer(self) -> float:
        return _rate(self.word_errors, self.ref_words)

    @property
    def cer(self) -> float:
        return _rate(self.char_edits, self.ref_chars)

    def __add__(self, other: ErrorCounts) -> ErrorCounts:
        return ErrorCounts(
            self.substitutions + other.substitutions,
            self.deletions + other.deletions,
            self.insertions + other.insertions,
            self.hits + other.hits,
            self.char_edits + other.char_edits,
            self.ref_chars + other.ref_chars,
            self.hyp_words + other.hyp_words,
        )

    def to_dict(self) -> dict[str, float | int]:
        n = self.ref_words
        return {
            "wer": self.wer,
            "cer": self.cer,
            "substitutions": self.substitutions,
            "deletions": self.deletions,
            "insertions": self.insertions,
            "hits": self.hits,
            "ref_words": n,
            "hyp_words": self.hyp_words,
            "ref_chars": self.ref_chars,
            "char_edits": self.char_edits,
            "substitution_rate": _rate(self.substitutions, n),
            "deletion_rate": _rate(self.deletions, n),
            "insertion_rate": _rate(self.insertions, n),
        }


def _rate(errors: int, total: int) -> float:
    if total > 0:
        return errors / total
    return 0.0 if errors == 0 else 1.0


@dataclass
class UtteranceScore:
    """One utterance, normalized, aligned and counted."""

    ref: str  # normalized reference
    hyp: str  # normalized hypothesis
    counts: ErrorCounts
    errors: list[WordError] = field(default_factory=list)

    @property
    def wer(self) -> float:
        return self.counts.wer

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "hyp": self.hyp,
            "wer": self.wer,
            "cer": self.counts.cer,
            "counts": self.counts.to_dict(),
            "errors": [asdict(e) for e in self.errors],
        }


def score_utterance(ref: str, hyp: str, normalizer: str | Normalizer | None = "whisper_en") -> UtteranceScore:
    """Normalize, align (jiwer, Levenshtein on words) and list the edits of one utterance."""
    import jiwer

    norm = resolve_normalizer(normalizer)
    r, h = norm(ref), norm(hyp)
    words = jiwer.process_words([r], [h])
    chars = jiwer.process_characters([r], [h])
    rw, hw = words.references[0], words.hypotheses[0]
    errors: list[WordError] = []
    for chunk in words.alignments[0]:
        ref_part = rw[chunk.ref_start_idx : chunk.ref_end_idx]
        hyp_part = hw[chunk.hyp_start_idx : chunk.hyp_end_idx]
        if chunk.type == "substitute":
            # jiwer merges runs of substitutions into one chunk; list them word by word
            for k, (a, b) in enumerate(zip(ref_part, hyp_part, strict=True)):
                errors.append(WordError("substitution", a, b, chunk.ref_start_idx + k))
        elif chunk.type == "delete":
            for k, a in enumerate(ref_part):
                errors.append(WordError("deletion", a, "", chunk.ref_start_idx + k))
        elif chunk.type == "insert":
            for b in hyp_part:
                errors.append(WordError("insertion", "", b, chunk.ref_start_idx))
    counts = ErrorCounts(
        substitutions=words.substitutions,
        deletions=words.deletions,
        insertions=words.insertions,
        hits=words.hits,
        char_edits=chars.substitutions + chars.deletions + chars.insertions,
        ref_chars=chars.substitutions + chars.deletions + chars.hits,
        hyp_words=len(hw),
    )
    return UtteranceScore(ref=r, hyp=h, counts=counts, errors=errors)


def error_rates(
    refs: Sequence[str], hyps: Sequence[str], normalizer: str | Normalizer | None = "whisper_en"
) -> dict[str, float | int]:
    """Corpus WER/CER (fractions) and edit counts of ``hyps`` against ``refs``.

    Keys: wer, cer, substitutions, deletions, insertions, hits, ref_words, hyp_words,
    ref_chars, char_edits, substitution_rate, deletion_rate, insertion_rate, utterances.
    """
    if len(refs) != len(hyps):
        raise ValueError(f"error_rates: {len(refs)} references but {len(hyps)} hypotheses")
    norm = resolve_normalizer(normalizer)
    total = ErrorCounts()
    for r, h in zip(refs, hyps, strict=True):
        total = total + score_utterance(r, h, norm).counts
    out = total.to_dict()
    out["utterances"] = len(refs)
    return out


# --------------------------------------------------------------------------- domain terms


def load_terms(path: str | Path) -> list[str]:
    """Domain terms, one per line; blank lines and ``#`` comments ignored; duplicates dropped."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise DataError(f"domain terms file not found: {p}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read domain terms file {p}: {exc}") from exc
    seen: dict[str, None] = {}
    for line in lines:
        term = line.split("#", 1)[0].strip()
        if term:
            seen.setdefault(term, None)
    if not seen:
        raise DataError(f"domain terms file {p} holds no terms (one term per line expected)")
    return list(seen)


@dataclass
class TermRecall:
    """Domain-term recall over a corpus (see module docstring for the definition)."""

    recall: float  # found / occurrences (0.0 when no term occurs in any reference)
    found: int
    occurrences: int
    per_term: dict[str, dict[str, int]]  # term -> {"occurrences": n, "found": k}, only terms that occur
    unusable_terms: list[str]  # terms that normalize to nothing

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _join_spelled(words: list[str]) -> list[str]:
    """Merge runs of single letters ("a p r", from "A.P.R.") into one token ("apr")."""
    out: list[str] = []
    run: list[str] = []
    for w in [*words, ""]:
        if len(w) == 1 and w.isalpha():
            run.append(w)
            continue
        if run:
            out.append("".join(run))
            run = []
        if w:
            out.append(w)
    return out


def _count(words: list[str], term: list[str]) -> int:
    n, k = len(words), len(term)
    return sum(1 for i in range(n - k + 1) if words[i : i + k] == term)


def domain_term_recall(
    refs: Sequence[str],
    hyps: Sequence[str],
    terms: Sequence[str],
    normalizer: str | Normalizer | None = "whisper_en",
) -> TermRecall:
    """Share of domain-term occurrences in the references that the hypotheses reproduce.

    Terms and texts go through the same normalizer (so matching is case-insensitive);
    runs of single letters are joined first, so "A.P.R." (normalized "a p r") matches
    "APR"; multi-word terms match as whole word sequences.
    """
    if len(refs) != len(hyps):
        raise ValueError(f"domain_term_recall: {len(refs)} references but {len(hyps)} hypotheses")
    norm = resolve_normalizer(normalizer)
    normalized: dict[str, list[str]] = {}
    unusable: list[str] = []
    for t in terms:
        words = _join_spelled(norm(t).lower().split())
        if words:
            normalized[t] = words
        else:
            unusable.append(t)
    per_term: dict[str, dict[str, int]] = {}
    for r, h in zip(refs, hyps, strict=True):
        rw, hw = _join_spelled(norm(r).lower().split()), _join_spelled(norm(h).lower().split())
        for t, tw in normalized.items():
            n_ref = _count(rw, tw)
            if n_ref:
                d = per_term.setdefault(t, {"occurrences": 0, "found": 0})
                d["occurrences"] += n_ref
                d["found"] += min(n_ref, _count(hw, tw))
    occ = sum(d["occurrences"] for d in per_term.values())
    found = sum(d["found"] for d in per_term.values())
    return TermRecall(
        recall=found / occ if occ else 0.0,
        found=found,
        occurrences=occ,
        per_term=dict(sorted(per_term.items())),
        unusable_terms=unusable,
    )
