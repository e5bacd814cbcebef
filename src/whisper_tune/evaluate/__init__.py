"""Evaluation: a model over a manifest, base vs tuned, and the reports that prove (or not) the gain.

Why: fine-tuning is only worth shipping when it measurably helps on the target domain
without hurting general speech. This package measures that the way the Whisper paper and
the seed do (Whisper's English normalizer, greedy decoding, corpus WER) and explains it
(breakdowns by manifest field, worst utterances, domain-term recall, regressions).

Public API: ``evaluate``, ``compare``, the result types; the scoring functions
(``get_normalizer``, ``error_rates``...) come from ``whisper_tune.scoring`` and are re-exported.
Transcription itself is ``whisper_tune.inference`` (``transcribe``, ``transcribe_bank`` and
``FeatureBank`` are re-exported from there), the code the server runs. Heavy imports (torch,
transformers, matplotlib) happen inside the functions.
"""

from __future__ import annotations

from whisper_tune.inference import FeatureBank, transcribe, transcribe_bank  # evaluate's API before
from whisper_tune.scoring.normalizers import NORMALIZER_KINDS, get_normalizer
from whisper_tune.scoring.wer import (
    ErrorCounts,
    TermRecall,
    UtteranceScore,
    WordError,
    domain_term_recall,
    error_rates,
    load_terms,
    score_utterance,
)

from .comparison import compare, write_comparison
from .pipeline import (
    evaluate,
    load_eval_items,
    load_for_eval,
    resolve_model_spec,
    score_texts,
    write_evaluation,
)
from .report import ComparisonResult, EvalResult, UtteranceResult, format_wer_difference, relative_change_pct

__all__ = [
    "NORMALIZER_KINDS",
    "ComparisonResult",
    "ErrorCounts",
    "EvalResult",
    "FeatureBank",
    "TermRecall",
    "UtteranceResult",
    "UtteranceScore",
    "WordError",
    "compare",
    "domain_term_recall",
    "error_rates",
    "evaluate",
    "format_wer_difference",
    "get_normalizer",
    "load_eval_items",
    "load_for_eval",
    "load_terms",
    "relative_change_pct",
    "resolve_model_spec",
    "score_texts",
    "score_utterance",
    "transcribe",
    "transcribe_bank",
    "write_comparison",
    "write_evaluation",
]
