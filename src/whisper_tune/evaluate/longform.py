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
(0.5 s), and the converse share of predicted boundaries near a reference one. A recording
decoded as its mix whose file has two or more channels (a stereo call) also gives the
segment-time step its channels' levels (``data.channel_levels``), so a turn change cuts and
trims segments (``inference.speech_times``); the speech and the levels are found once per
recording, not once per mode.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from whisper_tune.data.audio import SAMPLE_RATE, load_audio
from whisper_tune.data.channel_levels import channel_levels
from whisper_tune.errors import DataError, UserError
from whisper_tune.inference import BackendOptions, DecodeOptions, FeatureBank, load_backend, resolve_device
from whisper_tune.inference.options import MAX_NEW_TOKENS
from whisper_tune.inference.speech_times import SPLIT_PAUSE_S, snap_segments, speaker_labels, speech_spans
from whisper_tune.inference.types import Segment, Word
from whisper_tune.scoring.boundaries import TOLERANCE_S, BoundaryScore, boundary_score

from .longform_results import LongformComparison, LongformResult, ModeResult
from .pipeline import EvalItem, channel_index, load_eval_items, resolve_model_spec, score_texts

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
) -> list[list[Segment]]:
    """Transformers long-form generate, ``batch_size`` recordings at a time; with
    ``decode.word_timestamps`` (and alignment heads) each segment gets word times from
    Transformers' ``return_token_timestamps``, grouped into words as the chunked path does.

    Transformers 5.24's token timestamps can fail inside its fallback loop (an IndexError in
    ``_extract_token_timestamps``, seen on base tiny.en with a synthetic call): the batch is then
    decoded one recording at a time, and a recording that still fails is decoded without word
    times (a logged warning naming it), so one recording never costs the others theirs."""
    words = bool(decode.word_timestamps and backend.can_align)
    out: list[list[Segment]] = []
    for b in range(0, len(audios), batch_size):
        batch = audios[b : b + batch_size]
        try:
            out += _generate_long(backend, batch, decode, words)
        except (IndexError, RuntimeError):
            if not words:
                raise
            for k, audio in enumerate(batch):
                try:
                    out += _generate_long(backend, [audio], decode, True)
                except (IndexError, RuntimeError) as e:
                    log.warning(
                        "long-form recording %d: word times failed (%s: %s); decoded without them",
                        b + k,
                        type(e).__name__,
                        e,
                    )
                    out += _generate_long(backend, [audio], decode, False)
    return out


def _generate_long(
    backend: Any, batch: list[np.ndarray], decode: DecodeOptions, words: bool
) -> list[list[Segment]]:
    import torch

    model, fe, tok = backend.model, backend.feature_extractor, backend.tokenizer
    p = next(model.parameters())
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
    if long or words:  # token timestamps need the frame count the mask gives
        kwargs["attention_mask"] = feats["attention_mask"].to(p.device)
    if words:
        kwargs["return_token_timestamps"] = True
    if backend.multilingual:
        kwargs["task"] = decode.task
        if decode.language:
            kwargs["language"] = decode.language
    torch.manual_seed(0)  # fallback temperatures sample: same run, same transcript
    with torch.inference_mode():
        res = model.generate(feats["input_features"].to(device=p.device, dtype=p.dtype), **kwargs)
    out: list[list[Segment]] = []
    for segs in res["segments"]:
        rows: list[Segment] = []
        for s in segs:
            text = tok.decode(s["tokens"], skip_special_tokens=True)
            if not text.strip():
                continue
            seg = Segment(len(rows), float(s["start"]), float(s["end"]), str(text))
            if words and s.get("token_timestamps") is not None:
                ids = [int(t) for t in s["tokens"]]
                times = [float(seg.start), *(float(t) for t in s["token_timestamps"])]
                seg.tokens = [t for t in ids if t < backend.eot]
                seg.words = [
                    Word(w["word"], w["start"], w["end"], 0.0, w["tokens"])
                    for w in backend.group_words(ids, times)
                    if str(w["word"]).strip()  # punctuation merged into a neighbour
                ]
            rows.append(seg)
        out.append(rows)
    return out


def _recording_speech(
    items: list[EvalItem],
) -> tuple[list[list[tuple[float, float]]], list[np.ndarray | None]]:
    """Per item, once for all modes: the speech spans its segment times snap to, and the channel
    levels of a multichannel file decoded as its mix (the turn rule of ``inference.speech_times``).

    One side of a stereo call (an integer ``channel``) takes the spans Silero finds in the file's
    mix that belong to that side's channel, not the spans of the side alone: on one telephone
    channel Silero misses speech it finds in the mix. Measured on 4 synthetic calls, the tuned
    model's boundaries per side: 77 -> 95 % sequential, 67 -> 87 % chunked (docs/evaluate.md).
    The mix of a file is decoded and searched once, for both its sides."""
    mixes: dict[str, tuple[list[tuple[float, float]], list[int] | None]] = {}

    def mix_speech(path: str) -> tuple[list[tuple[float, float]], list[int] | None]:
        if path not in mixes:
            try:
                sp = speech_spans(load_audio(path))
            except DataError as exc:  # the side itself was read: time it on its own speech
                log.warning("long-form: %s: no mix to find speech in (%s); a side uses its own", path, exc)
                sp = []
            mixes[path] = (sp, speaker_labels(sp, channel_levels(path)) if sp else None)
        return mixes[path]

    spans: list[list[tuple[float, float]]] = []
    levels: list[np.ndarray | None] = []
    for it in items:
        side = channel_index(it)
        if side is None:
            lv = channel_levels(it.source) if it.source else None
            spans.append(speech_spans(it.audio))
            levels.append(lv)
            continue
        sp, labels = mix_speech(it.source) if it.source else ([], None)
        spans.append(
            [a for a, who in zip(sp, labels, strict=True) if who == side]
            if labels
            else speech_spans(it.audio)
        )
        levels.append(None)  # one speaker: no turns inside it
    turns = sum(lv is not None for lv in levels)
    if turns or mixes:
        log.info(
            "long-form: %d mix(es) with channel levels, %d side(s) timed on their mix's speech",
            turns,
            sum(channel_index(it) is not None for it in items),
        )
    return spans, levels


def _chunked(backend: Any, audios: list[np.ndarray], decode: DecodeOptions) -> list[list[Segment]]:
    return [t.segments for t in backend.transcribe_bank(FeatureBank(audios, cache=False), decode)]


def _rows(segments: list[Segment]) -> list[tuple[float, float, str]]:
    return [(s.start, s.end, s.text) for s in segments]


def _bounds(
    refs: list[list[tuple[float, float]] | None], segs: list[list[tuple[float, float, str]]], tol: float
) -> list[BoundaryScore | None]:
    return [
        boundary_score(r, [(s, e) for s, e, _t in rows], tol) if r is not None else None
        for r, rows in zip(refs, segs, strict=True)
    ]


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
    speech_times: bool = True,
    split_pause_s: float = SPLIT_PAUSE_S,
    items: list[EvalItem] | None = None,
    skipped: list[dict[str, Any]] | None = None,
) -> LongformResult:
    """Decode every recording of ``data`` with ``model_spec`` (Transformers, in ``precision``: a
    torch dtype or ``auto``) in each of ``modes``. ``speech_times``: segment times moved onto the
    speech they cover, as the server returns them (``inference.speech_times``); the model's own
    timestamps are scored beside them; ``split_pause_s``: the pause between two words that cuts
    a segment there."""

    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise UserError(f"long-form modes {bad or '(none)'}: choose from {', '.join(MODES)}")
    if not split_pause_s > 0:
        raise UserError(f"split pause must be > 0 seconds, got {split_pause_s}")
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
    # once per recording, not per mode: the speech, and on a multichannel file who speaks when
    spans, levels = _recording_speech(items) if speech_times else ([], [])
    results: dict[str, ModeResult] = {}
    for mode in modes:
        t0 = time.perf_counter()
        # word times let speech_times cut a segment at a pause (inference.speech_times)
        timed = replace(decode, word_timestamps=speech_times)
        if mode == "sequential":
            raw = _sequential(backend, audios, timed, batch_size)
        else:
            raw = _chunked(backend, audios, timed)
        seconds = time.perf_counter() - t0
        raw_segs = [_rows(x) for x in raw]
        segs = (
            [
                _rows(snap_segments(x, a, split_pause_s=split_pause_s, levels=lv, spans=sp))
                for x, a, lv, sp in zip(raw, audios, levels, spans, strict=True)
            ]
            if speech_times
            else raw_segs
        )
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
        results[mode] = ModeResult(
            mode,
            scored,
            segs,
            _bounds(refs, segs, tolerance_s),
            seconds,
            _bounds(refs, raw_segs, tolerance_s) if speech_times else None,
        )
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
