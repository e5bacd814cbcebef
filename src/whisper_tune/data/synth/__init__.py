"""Synthetic domain speech corpus (banking call-centre requests + everyday English).

Why: no recordings and no dataset hub here, yet the demo must train and evaluate on domain
speech. ``synthesize_corpus`` writes audio made offline by Piper and espeak-ng, through a
simulated telephone channel and background noise, with held-out sentences and speakers,
manifests and a datasheet. See ``text`` for the transcript convention (written form
Whisper emits vs spoken form the TTS reads).
"""

from __future__ import annotations

from whisper_tune.data.synth.corpus import CorpusInfo, SynthConfig, synthesize_corpus

__all__ = ["SynthConfig", "CorpusInfo", "synthesize_corpus"]
