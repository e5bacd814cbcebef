"""Evaluation results, breakdowns and the base-vs-tuned report (markdown + JSON).

Why: a fine-tuning claim is only as good as its evidence. Besides the headline WER and
the seed's line ``WER difference: -x.xxx %``, the report shows where the gain comes from
(breakdown by any manifest field: intent, voice/speaker, channel, domain), what is still
wrong (worst utterances with their aligned errors, most frequent substitutions), whether
the domain vocabulary improved (domain-term recall), and where tuning made things worse
(regressions), so a memorizing model cannot hide behind an average.

The WER difference line: relative change of the normalized corpus WER, tuned vs base, in
percent with 3 decimals and an explicit ASCII sign (``-`` = tuned is better, ``+`` =
worse): ``WER difference: -31.250 %``. When the base WER is 0 the relative change is
undefined and the line reads ``WER difference: n/a (base WER is 0)``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from whisper_tune.errors import DataError
from whisper_tune.scoring.redact import redact_obj
from whisper_tune.scoring.wer import ErrorCounts, TermRecall, UtteranceScore

from .evidence import entities_of, paired_significance

__all__ = [
    "ComparisonResult",
    "EvalResult",
    "UtteranceResult",
    "format_wer_difference",
    "relative_change_pct",
    "resolve_group_fields",
]

MISSING = "(missing)"
MAX_AUTO_GROUP_VALUES = 50


@dataclass
class UtteranceResult:
    """One scored utterance: raw texts, normalized alignment, orthographic counts."""

    id: str
    ref: str
    hyp: str
    score: UtteranceScore  # on normalized text
    ortho: ErrorCounts  # on text as written
    meta: dict[str, Any] = field(default_factory=dict)
    duration: float | None = None
    origin: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ref": self.ref,
            "hyp": self.hyp,
            "ref_norm": self.score.ref,
            "hyp_norm": self.score.hyp,
            "wer": self.score.wer,
            "wer_ortho": self.ortho.wer,
            "cer": self.score.counts.cer,
            "word_errors": self.score.counts.word_errors,
            "ref_words": self.score.counts.ref_words,
            "errors": [str(e) for e in self.score.errors],
            "duration": self.duration,
            "meta": self.meta,
            "origin": self.origin,
        }


def _group_value(meta: dict[str, Any], key: str) -> str:
    v = meta.get(key)
    return MISSING if v is None or v == "" else str(v)


def resolve_group_fields(metas: Sequence[dict[str, Any]], group_by: Sequence[str] | None) -> list[str]:
    """Fields to break down by: ``group_by`` as given, or (None) every categorical meta field.

    Auto: string/bool/int fields with 2..50 distinct values that are not unique per
    utterance (ids, paths and free text are left out; floats like snr_db too).
    """
    if group_by is not None:
        fields = [g for g in group_by if g]
        present = {k for m in metas for k in m}
        unknown = [g for g in fields if g not in present]
        if unknown:
            raise DataError(
                f"group-by field(s) {', '.join(unknown)} not in any utterance's manifest fields "
                f"(available: {', '.join(sorted(present)) or 'none'})"
            )
        return fields
    keys: dict[str, None] = {}
    for m in metas:
        for k, v in m.items():
            if isinstance(v, str | bool | int) and not isinstance(v, float):
                keys.setdefault(k, None)
    out = []
    for k in keys:
        values = {_group_value(m, k) for m in metas}
        if 2 <= len(values) <= MAX_AUTO_GROUP_VALUES and len(values) < len(metas):
            out.append(k)
    return sorted(out)


def relative_change_pct(base: float, tuned: float) -> float | None:
    """(tuned - base) / base * 100; None when base is 0 (0.0 when both are 0)."""
    if base == 0:
        return 0.0 if tuned == 0 else None
    return (tuned - base) / base * 100.0


def format_wer_difference(base_wer: float, tuned_wer: float) -> str:
    """The seed's line, e.g. ``WER difference: -31.250 %`` (ASCII sign, always shown)."""
    pct = relative_change_pct(base_wer, tuned_wer)
    if pct is None:
        return "WER difference: n/a (base WER is 0)"
    return f"WER difference: {pct:+.3f} %"


@dataclass
class EvalResult:
    """One model over one data set."""

    model: str
    data: str
    normalizer: str
    utterances: list[UtteranceResult]
    group_by: list[str] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)  # {"origin", "reason", "message"}
    seconds: float = 0.0  # transcription wall time (features + generation)
    device: str = "cpu"
    batch_size: int = 8
    domain_terms: TermRecall | None = None
    prompt: str | None = None  # the initial prompt the model decoded with (prompt baseline)
    backend: str = "hf"
    compute_type: str = ""  # what the backend ran in (torch dtype for hf, CTranslate2 compute type)
    artifact: str = ""  # the model directory (or hub id) the backend loaded
    longform: Any = None  # evaluate.longform.LongformResult: whole recordings decoded long-form
    redact: bool = False  # mask PII (scoring.redact) in what write() writes; scores use raw text

    # ------------------------------------------------------------------ aggregates
    @property
    def counts(self) -> ErrorCounts:
        total = ErrorCounts()
        for u in self.utterances:
            total = total + u.score.counts
        return total

    @property
    def ortho_counts(self) -> ErrorCounts:
        total = ErrorCounts()
        for u in self.utterances:
            total = total + u.ortho
        return total

    @property
    def wer(self) -> float:
        return self.counts.wer

    @property
    def wer_ortho(self) -> float:
        return self.ortho_counts.wer

    @property
    def cer(self) -> float:
        return self.counts.cer

    @property
    def audio_seconds(self) -> float:
        return sum(u.duration or 0.0 for u in self.utterances)

    def groups(self) -> dict[str, dict[str, dict[str, Any]]]:
        """field -> value -> {n, wer, wer_ortho, cer, ref_words}; values sorted by name."""
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for key in self.group_by:
            acc: dict[str, tuple[int, ErrorCounts, ErrorCounts]] = {}
            for u in self.utterances:
                v = _group_value(u.meta, key)
                n, c, o = acc.get(v, (0, ErrorCounts(), ErrorCounts()))
                acc[v] = (n + 1, c + u.score.counts, o + u.ortho)
            out[key] = {
                v: {"n": n, "wer": c.wer, "wer_ortho": o.wer, "cer": c.cer, "ref_words": c.ref_words}
                for v, (n, c, o) in sorted(acc.items())
            }
        return out

    def worst(self, n: int = 10) -> list[UtteranceResult]:
        """The ``n`` utterances with the highest normalized WER (ties: more errors first)."""
        ranked = sorted(self.utterances, key=lambda u: (-u.score.wer, -u.score.counts.word_errors, u.id))
        return [u for u in ranked[:n] if u.score.counts.word_errors > 0]

    def top_substitutions(self, n: int = 15) -> list[tuple[str, str, int]]:
        """Most frequent (reference word, hypothesis word) substitutions."""
        c: Counter[tuple[str, str]] = Counter()
        for u in self.utterances:
            for e in u.score.errors:
                if e.kind == "substitution":
                    c[(e.ref, e.hyp)] += 1
        return [(r, h, k) for (r, h), k in c.most_common(n)]

    def metrics(self) -> dict[str, Any]:
        """Everything but the per-utterance lines (those go to predictions.jsonl)."""
        n = len(self.utterances)
        return {
            "model": self.model,
            "data": self.data,
            "normalizer": self.normalizer,
            "utterances": n,
            "skipped": len(self.skipped),
            "wer": self.wer,
            "wer_ortho": self.wer_ortho,
            "cer": self.cer,
            "counts": self.counts.to_dict(),
            "groups": self.groups(),
            "domain_terms": self.domain_terms.to_dict() if self.domain_terms else None,
            "entities": entities_of(self.utterances).to_dict(),
            "prompt": self.prompt,
            "backend": self.backend,
            "compute_type": self.compute_type,
            "device": self.device,
            "artifact": self.artifact,
            "top_substitutions": [{"ref": r, "hyp": h, "count": k} for r, h, k in self.top_substitutions()],
            "timing": {
                "seconds": self.seconds,
                "audio_seconds": self.audio_seconds,
                "clips_per_second": n / self.seconds if self.seconds > 0 else None,
                "rtfx": self.audio_seconds / self.seconds if self.seconds > 0 else None,
                "device": self.device,
                "batch_size": self.batch_size,
            },
            "skipped_items": self.skipped,
            "longform": self.longform.to_dict() if self.longform is not None else None,
        }

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """``predictions.jsonl`` (one line per utterance) and ``metrics.json`` in ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        scrub = redact_obj if self.redact else (lambda x: x)
        pred = out / "predictions.jsonl"
        with pred.open("w", encoding="utf-8") as f:
            for u in self.utterances:
                f.write(json.dumps(scrub(u.to_dict()), ensure_ascii=False, default=str) + "\n")
        met = out / "metrics.json"
        met.write_text(
            json.dumps(scrub(self.metrics()), indent=2, ensure_ascii=False, default=str) + "\n",
            encoding="utf-8",
        )
        return {"predictions": pred, "metrics": met}


@dataclass
class ComparisonResult:
    """Base vs tuned over the same utterances."""

    base: EvalResult
    tuned: EvalResult
    out_dir: Path | None = None
    files: dict[str, Path] = field(default_factory=dict)
    run_dir: str | None = None
    prompt_baseline: EvalResult | None = None  # base model decoding with the domain terms as prompt
    guard: ComparisonResult | None = None  # base vs tuned on the real-speech guard
    guard_note: str | None = None  # why there is no guard column ("no real-speech guard")
    selection: dict[str, Any] | None = None  # how the run chose its export (best/metrics.json)
    longform: Any = None  # evaluate.longform.LongformComparison: base vs tuned on long recordings

    _significance: Any = field(default=None, init=False, repr=False, compare=False)

    def significance(self) -> Any:
        """Paired bootstrap of the WER difference (``scoring.BootstrapResult``), computed once:
        the report asks for it several times and each run resamples the set 2,000 times."""
        if self._significance is None:
            self._significance = paired_significance(self.pairs())
        return self._significance

    def ci_line(self) -> str:
        """The seed's line's companion: absolute and relative difference with their 95 % CIs and POI."""
        return f"WER difference, paired bootstrap (tuned - base): {self.significance().summary()}"

    @property
    def wer_difference_pct(self) -> float | None:
        return relative_change_pct(self.base.wer, self.tuned.wer)

    def wer_difference_line(self) -> str:
        return format_wer_difference(self.base.wer, self.tuned.wer)

    def group_table(self) -> dict[str, dict[str, dict[str, Any]]]:
        """field -> value -> {n, base_wer, tuned_wer, relative_change_pct}."""
        bg, tg = self.base.groups(), self.tuned.groups()
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for key, values in bg.items():
            out[key] = {}
            for v, b in values.items():
                t = tg.get(key, {}).get(v)
                if t is None:
                    continue
                out[key][v] = {
                    "n": b["n"],
                    "base_wer": b["wer"],
                    "tuned_wer": t["wer"],
                    "relative_change_pct": relative_change_pct(b["wer"], t["wer"]),
                }
        return out

    def pairs(self) -> list[tuple[UtteranceResult, UtteranceResult]]:
        tuned = {u.id: u for u in self.tuned.utterances}
        return [(b, tuned[b.id]) for b in self.base.utterances if b.id in tuned]

    def worst(self, n: int = 10) -> list[tuple[UtteranceResult, UtteranceResult]]:
        """The ``n`` pairs where the tuned model is worst (normalized WER, then error count)."""
        ranked = sorted(
            self.pairs(), key=lambda p: (-p[1].score.wer, -p[1].score.counts.word_errors, p[1].id)
        )
        return [p for p in ranked[:n] if p[1].score.counts.word_errors > 0]

    def regressions(self, n: int = 10) -> tuple[int, list[tuple[UtteranceResult, UtteranceResult]]]:
        """How many utterances got worse (more word errors), and the ``n`` worst of them."""
        worse = [p for p in self.pairs() if p[1].score.counts.word_errors > p[0].score.counts.word_errors]
        worse.sort(key=lambda p: (p[0].score.counts.word_errors - p[1].score.counts.word_errors, p[1].id))
        return len(worse), worse[:n]

    def to_dict(self) -> dict[str, Any]:
        n_reg, reg = self.regressions()
        improved = sum(1 for b, t in self.pairs() if t.score.counts.word_errors < b.score.counts.word_errors)

        def pair(p: tuple[UtteranceResult, UtteranceResult]) -> dict[str, Any]:
            b, t = p
            return {
                "id": t.id,
                "ref": t.ref,
                "base_hyp": b.hyp,
                "tuned_hyp": t.hyp,
                "base_wer": b.score.wer,
                "tuned_wer": t.score.wer,
                "base_errors": [str(e) for e in b.score.errors],
                "tuned_errors": [str(e) for e in t.score.errors],
                "meta": t.meta,
            }

        sig = self.significance()
        prompt = self.prompt_baseline
        return {
            "wer_difference_pct": self.wer_difference_pct,
            "wer_difference_line": self.wer_difference_line(),
            "significance": sig.to_dict(),
            "ci_line": self.ci_line(),
            "prompt_baseline": None
            if prompt is None
            else {
                "prompt": prompt.prompt,
                "wer": prompt.wer,
                "wer_ortho": prompt.wer_ortho,
                "domain_terms": prompt.domain_terms.to_dict() if prompt.domain_terms else None,
                "entities": entities_of(prompt.utterances).to_dict(),
                "tuned_beats_prompt": self.tuned.wer < prompt.wer,
            },
            "guard": None
            if self.guard is None
            else {
                "data": self.guard.base.data,
                "utterances": len(self.guard.pairs()),
                "base_wer": self.guard.base.wer,
                "tuned_wer": self.guard.tuned.wer,
                "wer_difference_line": self.guard.wer_difference_line(),
                "significance": self.guard.significance().to_dict(),
                "regressed": self.guard.regressions()[0],
            },
            "guard_note": self.guard_note,
            "selection": self.selection,
            "longform": self.longform.to_dict() if self.longform is not None else None,
            "sign_convention": "relative change of normalized WER, (tuned - base) / base * 100; negative = tuned better",
            "base": self.base.metrics(),
            "tuned": self.tuned.metrics(),
            "groups": self.group_table(),
            "utterances_compared": len(self.pairs()),
            "improved": improved,
            "regressed": n_reg,
            "worst": [pair(p) for p in self.worst()],
            "regressions": [pair(p) for p in reg],
            "run_dir": self.run_dir,
            "files": {k: str(v) for k, v in self.files.items()},
        }
