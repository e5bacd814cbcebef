"""Long-form evaluation: whole recordings (> 30 s) decoded two ways, with timestamp accuracy.

Why: a bank's material is whole calls, and a model tuned on short clips without timestamps
can keep its short-clip WER while losing long-form quality and timestamp prediction
(transformers #30148, faster-whisper #428). A clip-level WER cannot show that, so the report
gets a long-form section from a manifest of long recordings (``--longform``; one line per
recording: ``audio_filepath``, ``text`` = the full transcript, optional ``segments`` =
``[{"start", "end", ...}]`` reference times, e.g. ``data synth --calls``' ``longform.jsonl``),
decoded in two modes:

* ``sequential``: Transformers' own long-form ``generate`` (OpenAI's algorithm, transformers
  5.24 ``WhisperGenerationMixin``): the full log-mel (``truncation=False``) with its attention
  mask, ``return_timestamps=True``, each 30 s window starts where the last complete segment
  ended (timestamp-driven seeking), conditioned on the previous window's text
  (``condition_on_prev_tokens``) with temperature fallback (compression-ratio and log-prob
  thresholds, as the Transformers docs recommend). What a user of the model's
  ``generate`` gets; one file's windows are decoded one after another.
* ``chunked``: the project's own batch path (``whisper_tune.inference``, what the server
  runs): the recording is cut on silence into <= 30 s windows, all windows are decoded in
  parallel batches with timestamp tokens, segments shifted by the window start.

For each mode: WER over the full transcripts (normalized; the same scorer as clips), the
time it took, and segment-boundary accuracy: the share of reference boundaries (each
reference segment's start and end) with a predicted segment boundary within ``tolerance_s``
(0.5 s), and the converse share of predicted boundaries near a reference one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from whisper_tune.data.audio import SAMPLE_RATE
from whisper_tune.inference import BackendOptions, DecodeOptions, FeatureBank, load_backend, resolve_device
from whisper_tune.inference.options import MAX_NEW_TOKENS
from whisper_tune.scoring.boundaries import TOLERANCE_S, BoundaryScore, boundary_score

from .markdown import _pct, _rel, _table
from .pipeline import EvalItem, load_eval_items, resolve_model_spec, score_texts
from .report import EvalResult, relative_change_pct

__all__ = [
    "MODES",
    "LongformComparison",
    "LongformResult",
    "ModeResult",
    "compare_longform",
    "evaluate_longform",
    "reference_segments",
]

log = logging.getLogger(__name__)

MODES = ("sequential", "chunked")
FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def reference_segments(meta: dict[str, Any], origin: str = "") -> list[tuple[float, float]] | None:
    """``segments`` of a manifest line as ``(start, end)``; None when absent. ``start``/``end``,
    or ``offset``/``duration``; a malformed list is a DataError naming the line and segment."""
    from whisper_tune.errors import DataError

    raw = meta.get("segments")
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise DataError(f"{origin}: 'segments' must be a list of {{start, end}} objects")
    out: list[tuple[float, float]] = []
    for k, s in enumerate(raw):
        try:
            start = float(s["start"] if "start" in s else s["offset"])
            end = float(s["end"]) if "end" in s else start + float(s["duration"])
        except (KeyError, TypeError, ValueError):
            raise DataError(
                f"{origin}: segment {k} needs start/end (or offset/duration) numbers: {s!r}"
            ) from None
        if end < start:
            raise DataError(f"{origin}: segment {k} ends ({end}) before it starts ({start})")
        out.append((start, end))
    return out


@dataclass
class ModeResult:
    """One model, one decoding mode, over the long-form set."""

    mode: str
    result: EvalResult  # full-transcript WER (one "utterance" per recording)
    segments: list[list[tuple[float, float, str]]]  # per recording
    boundaries: list[BoundaryScore | None]  # per recording; None without reference segments
    seconds: float

    @property
    def boundary(self) -> BoundaryScore | None:
        scored = [b for b in self.boundaries if b is not None]
        return sum(scored, BoundaryScore()) if scored else None

    def to_dict(self) -> dict[str, Any]:
        b = self.boundary
        audio = self.result.audio_seconds
        return {
            "wer": self.result.wer,
            "wer_ortho": self.result.wer_ortho,
            "counts": self.result.counts.to_dict(),
            "boundaries": b.to_dict() if b is not None else None,
            "seconds": self.seconds,
            "rtfx": audio / self.seconds if self.seconds > 0 else None,
            "recordings": [
                {
                    "id": u.id,
                    "duration": u.duration,
                    "wer": u.score.wer,
                    "ref": u.ref,
                    "hyp": u.hyp,
                    "boundaries": bs.to_dict() if bs is not None else None,
                    "segments": [{"start": round(s, 2), "end": round(e, 2), "text": t} for s, e, t in segs],
                }
                for u, segs, bs in zip(self.result.utterances, self.segments, self.boundaries, strict=True)
            ],
        }


@dataclass
class LongformResult:
    """One model over the long-form set, in each decoding mode."""

    model: str
    data: str
    modes: dict[str, ModeResult]
    tolerance_s: float = TOLERANCE_S
    skipped: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        first = next(iter(self.modes.values()))
        return {
            "model": self.model,
            "data": self.data,
            "recordings": len(first.result.utterances),
            "audio_seconds": first.result.audio_seconds,
            "tolerance_s": self.tolerance_s,
            "modes": {m: r.to_dict() for m, r in self.modes.items()},
            "skipped": self.skipped,
        }

    def markdown_lines(self) -> list[str]:
        first = next(iter(self.modes.values()))
        lines = [
            f"## Long-form ({len(first.result.utterances)} recordings, "
            f"{first.result.audio_seconds / 60:.1f} min, `{Path(self.data).name}`)",
            "",
        ]
        rows = []
        for m, r in self.modes.items():
            b = r.boundary
            rows.append(
                (
                    m,
                    _pct(r.result.wer),
                    _pct(b.accuracy if b else None),
                    _pct(b.precision if b else None),
                    f"{r.seconds:.1f} s",
                )
            )
        lines += _table(
            [
                "decoding",
                "WER",
                f"ref. boundaries within {self.tolerance_s} s",
                "pred. boundaries near ref.",
                "time",
            ],
            rows,
        )
        return lines + _explainer()


def _explainer() -> list[str]:
    return [
        "sequential = Transformers' long-form generate (timestamp-driven seeking, conditioned on the "
        "previous text, temperature fallback); chunked = cut on silence into <= 30 s windows decoded "
        "in parallel batches (the server's path). Boundaries: each reference segment's start and end.",
        "",
    ]


@dataclass
class LongformComparison:
    """Base vs tuned on the long-form set (the compare report's long-form section)."""

    base: LongformResult
    tuned: LongformResult

    def to_dict(self) -> dict[str, Any]:
        modes = {}
        for m, b in self.base.modes.items():
            t = self.tuned.modes.get(m)
            if t is None:
                continue
            bb, tb = b.boundary, t.boundary
            modes[m] = {
                "base_wer": b.result.wer,
                "tuned_wer": t.result.wer,
                "relative_change_pct": relative_change_pct(b.result.wer, t.result.wer),
                "base_boundary_accuracy": bb.accuracy if bb else None,
                "tuned_boundary_accuracy": tb.accuracy if tb else None,
                "base_seconds": b.seconds,
                "tuned_seconds": t.seconds,
            }
        return {"summary": modes, "base": self.base.to_dict(), "tuned": self.tuned.to_dict()}

    def markdown_lines(self) -> list[str]:
        first = next(iter(self.base.modes.values()))
        lines = [
            f"## Long-form ({len(first.result.utterances)} recordings, "
            f"{first.result.audio_seconds / 60:.1f} min, `{Path(self.base.data).name}`)",
            "",
        ]
        rows = []
        for m, s in self.to_dict()["summary"].items():
            rows.append(
                (
                    m,
                    _pct(s["base_wer"]),
                    _pct(s["tuned_wer"]),
                    _rel(s["relative_change_pct"]),
                    _pct(s["base_boundary_accuracy"]),
                    _pct(s["tuned_boundary_accuracy"]),
                    f"{s['base_seconds']:.1f} / {s['tuned_seconds']:.1f} s",
                )
            )
        tol = self.base.tolerance_s
        lines += _table(
            [
                "decoding",
                "base WER",
                "tuned WER",
                "change",
                f"base boundaries ({tol} s)",
                f"tuned boundaries ({tol} s)",
                "time base / tuned",
            ],
            rows,
        )
        lines += _explainer()
        tuned_seq = self.tuned.modes.get("sequential") or next(iter(self.tuned.modes.values()))
        if tuned_seq.result.utterances:
            u, segs = tuned_seq.result.utterances[0], tuned_seq.segments[0]
            lines += [f"First recording (`{u.id}`), tuned, {tuned_seq.mode}, first segments:", ""]
            lines += _table(
                ["start", "end", "text"], [(f"{s:.2f}", f"{e:.2f}", t.strip()) for s, e, t in segs[:12]]
            )
        return lines


# ---------------------------------------------------------------- decoding
def sequential_token_cap(wanted: int, positions: int, multilingual: bool) -> int:
    """``max_new_tokens`` that fits beside the previous text in sequential decoding.

    ``condition_on_prev_tokens`` prompts each window with up to ``positions // 2 - 1`` previous
    tokens after ``<|startofprev|>``, then the start tokens (``<|startoftranscript|>``, plus
    language and task on multilingual models); Transformers rejects a window whose prompt plus
    ``max_new_tokens`` exceeds the decoder's positions (it did here: 225 + 224 > 448 on a dense
    minute of banking speech). OpenAI's 224 is one too many for an English-only model.
    """
    prompt = (positions // 2 - 1) + 1 + (3 if multilingual else 1)
    return max(1, min(wanted, positions - prompt))


def _sequential(
    backend: Any, audios: list[np.ndarray], decode: DecodeOptions, batch_size: int
) -> list[list[tuple[float, float, str]]]:
    """Transformers long-form generate, ``batch_size`` recordings at a time."""
    import torch

    model, fe, tok = backend.model, backend.feature_extractor, backend.tokenizer
    p = next(model.parameters())
    out: list[list[tuple[float, float, str]]] = []
    for b in range(0, len(audios), batch_size):
        batch = audios[b : b + batch_size]
        long = max(len(a) for a in batch) > fe.n_samples
        feats = fe(
            batch,
            sampling_rate=SAMPLE_RATE,
            return_tensors="pt",
            truncation=not long,
            padding="longest" if long else "max_length",
            return_attention_mask=True,
        )
        kwargs: dict[str, Any] = {
            "return_timestamps": True,
            "return_segments": True,
            "condition_on_prev_tokens": True,
            "temperature": FALLBACK_TEMPERATURES,
            "compression_ratio_threshold": 1.35,  # on token ids, zlib; the Transformers docs' value
            "logprob_threshold": -1.0,
            "num_beams": decode.beams,
            "max_new_tokens": sequential_token_cap(
                decode.max_new_tokens or MAX_NEW_TOKENS, backend.max_target_positions, backend.multilingual
            ),
        }
        if long:
            kwargs["attention_mask"] = feats["attention_mask"].to(p.device)
        if backend.multilingual:
            kwargs["task"] = decode.task
            if decode.language:
                kwargs["language"] = decode.language
        torch.manual_seed(0)  # fallback temperatures sample: same run, same transcript
        with torch.inference_mode():
            res = model.generate(feats["input_features"].to(device=p.device, dtype=p.dtype), **kwargs)
        for segs in res["segments"]:
            rows = []
            for s in segs:
                text = tok.decode(s["tokens"], skip_special_tokens=True)
                if text.strip():
                    rows.append((float(s["start"]), float(s["end"]), str(text)))
            out.append(rows)
    return out


def _chunked(
    backend: Any, audios: list[np.ndarray], decode: DecodeOptions
) -> list[list[tuple[float, float, str]]]:
    transcripts = backend.transcribe_bank(FeatureBank(audios, cache=False), decode)
    return [[(s.start, s.end, s.text) for s in t.segments] for t in transcripts]


def evaluate_longform(
    model_spec: str,
    data: str | Path,
    *,
    modes: Sequence[str] = MODES,
    normalizer: str = "whisper_en",
    batch_size: int = 8,
    device: str = "auto",
    precision: str = "auto",
    num_beams: int = 1,
    max_new_tokens: int | None = None,
    language: str | None = None,
    limit: int | None = None,
    tolerance_s: float = TOLERANCE_S,
    items: list[EvalItem] | None = None,
    skipped: list[dict[str, Any]] | None = None,
) -> LongformResult:
    """Decode every recording of ``data`` with ``model_spec`` (Transformers, in ``precision``: a
    torch dtype or ``auto``) in each of ``modes``."""
    from whisper_tune.errors import UserError

    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise UserError(f"long-form modes {bad or '(none)'}: choose from {', '.join(MODES)}")
    if items is None:
        items, skipped = load_eval_items(str(data), limit=limit)
    refs = [reference_segments(it.meta, it.origin) for it in items]
    # scored without the reference segments (a list is no breakdown field, and it is long)
    plain = [
        EvalItem(it.id, it.text, it.audio, {k: v for k, v in it.meta.items() if k != "segments"}, it.origin)
        for it in items
    ]
    dev = resolve_device(device, "hf")
    backend = load_backend(
        resolve_model_spec(model_spec),
        "hf",
        BackendOptions(device=dev, batch_size=batch_size, dtype=precision),
        model_name=model_spec,
    )
    lang = language if language is not None else ("en" if normalizer == "whisper_en" else None)
    decode = DecodeOptions(
        language=lang if backend.multilingual else None,
        beams=num_beams,
        max_new_tokens=max_new_tokens,
        timestamps=True,
    )
    audios = [it.audio for it in items]
    results: dict[str, ModeResult] = {}
    for mode in modes:
        t0 = time.perf_counter()
        segs = (
            _sequential(backend, audios, decode, batch_size)
            if mode == "sequential"
            else _chunked(backend, audios, decode)
        )
        seconds = time.perf_counter() - t0
        hyps = [" ".join(t.strip() for _s, _e, t in rows).strip() for rows in segs]
        scored = score_texts(
            model_spec,
            str(data),
            plain,
            hyps,
            normalizer=normalizer,
            group_by=[],
            seconds=seconds,
            device=dev,
            batch_size=batch_size,
        )
        bounds = [
            boundary_score(r, [(s, e) for s, e, _t in rows], tolerance_s) if r is not None else None
            for r, rows in zip(refs, segs, strict=True)
        ]
        results[mode] = ModeResult(mode, scored, segs, bounds, seconds)
        b = results[mode].boundary
        log.info(
            "long-form %s (%s): WER %.4f, boundaries within %.1f s: %s, %.1f s",
            mode,
            model_spec,
            scored.wer,
            tolerance_s,
            "n/a" if b is None or b.accuracy is None else f"{b.accuracy:.3f}",
            seconds,
        )
    del backend
    return LongformResult(model_spec, str(data), results, tolerance_s, list(skipped or []))


def compare_longform(base_spec: str, tuned_spec: str, data: str | Path, **kwargs: Any) -> LongformComparison:
    """Base and tuned over the same long recordings (decoded once from disk)."""
    items, skipped = load_eval_items(str(data), limit=kwargs.pop("limit", None))
    base = evaluate_longform(base_spec, data, items=items, skipped=skipped, **kwargs)
    tuned = evaluate_longform(tuned_spec, data, items=items, skipped=skipped, **kwargs)
    return LongformComparison(base, tuned)
