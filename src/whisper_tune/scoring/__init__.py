"""Scoring: pure functions from texts (and error counts) to numbers.

Why a package of its own: training scores checkpoints (WER at every evaluation), evaluation
scores whole test sets and compares systems, and neither should import the other's stage.
Everything here depends only on the standard library, numpy, jiwer and Transformers'
normalizers, so every stage above it may use it.
"""

from whisper_tune.scoring.entities import ENTITY_KINDS, EntityAccuracy, entity_accuracy, extract_entities
from whisper_tune.scoring.significance import DEFAULT_REPLICATES, BootstrapResult, paired_bootstrap

__all__ = [
    "DEFAULT_REPLICATES",
    "ENTITY_KINDS",
    "BootstrapResult",
    "EntityAccuracy",
    "entity_accuracy",
    "extract_entities",
    "paired_bootstrap",
]
