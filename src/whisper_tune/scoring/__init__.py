"""Scoring: pure functions from texts (and error counts) to numbers.

Why a package of its own: training scores checkpoints (WER at every evaluation), evaluation
scores whole test sets and compares systems, and neither should import the other's stage.
Everything here depends only on the standard library, numpy, jiwer and Transformers'
normalizers, so every stage above it may use it.
"""

from whisper_tune.scoring.entities import ENTITY_KINDS, EntityAccuracy, entity_accuracy, extract_entities
from whisper_tune.scoring.normalizers import NORMALIZER_KINDS, get_normalizer
from whisper_tune.scoring.significance import DEFAULT_REPLICATES, BootstrapResult, paired_bootstrap
from whisper_tune.scoring.wer import (
    ErrorCounts,
    TermRecall,
    UtteranceScore,
    WordError,
    domain_term_recall,
    error_rates,
    load_terms,
    resolve_normalizer,
    score_utterance,
)

__all__ = [
    "NORMALIZER_KINDS",
    "ErrorCounts",
    "TermRecall",
    "UtteranceScore",
    "WordError",
    "domain_term_recall",
    "error_rates",
    "get_normalizer",
    "load_terms",
    "resolve_normalizer",
    "score_utterance",
    "DEFAULT_REPLICATES",
    "ENTITY_KINDS",
    "BootstrapResult",
    "EntityAccuracy",
    "entity_accuracy",
    "extract_entities",
    "paired_bootstrap",
]
