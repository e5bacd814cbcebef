"""``evaluate`` (one model) and ``compare`` (base vs tuned) over a manifest.

Why: the product's proof is one command that loads both models the same way training and
serving do, runs them over exactly the same audio, and writes a report a person and a
script can both read. Transcription is ``whisper_tune.inference``: the backend the server
runs (``backend="hf"``, Transformers, the default; or ``"ct2"``, the CTranslate2 int8/float16
export the server runs with ``--backend ct2``), the same windows, token cap and decoding
options, so the WER is measured on what the server returns. The artifact scored is the one
served: ``backend="auto"`` (the CLI default) runs a CTranslate2 dir (``best/ct2``, an int8
export) on ``ct2`` in the compute type ``serve --backend ct2`` picks (or ``compute_type``),
never a float32 Transformers conversion of it; the report names backend, compute type, device
and the directory loaded. Each clip is decoded once and
its log-mel features computed once (a shared ``FeatureBank``); both models reuse them.
Unreadable clips are counted and listed as skips (with the manifest line), never silently
dropped or fatal.

Multilingual models are told the language (``language``; default ``en`` with the English
normalizer) instead of detecting it per clip, which misfires on noisy phone audio.
English-only models (``tiny.en``) ignore it.

A model spec is anything ``load_model`` accepts, or a training run directory (then its
``best/`` model is used, and for ``compare`` its training curves are plotted).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from whisper_tune.data.audio import SAMPLE_RATE
from whisper_tune.errors import DataError
from whisper_tune.inference import (
    BackendOptions,
    DecodeOptions,
    FeatureBank,
    load_backend,
    resolve_device,
    transcribe_audios,
)
from whisper_tune.inference.device import check_backend_kind
from whisper_tune.scoring.redact import redact_text
from whisper_tune.scoring.wer import domain_term_recall, load_terms, resolve_normalizer, score_utterance

from .markdown import render_evaluation
from .plots import plot_wer_by_group
from .report import EvalResult, UtteranceResult, resolve_group_fields

__all__ = [
    "EvalItem",
    "ScoredArtifact",
    "channel_index",
    "evaluate",
    "load_eval_items",
    "load_for_eval",
    "resolve_model_spec",
    "score_texts",
    "served_backend",
    "write_evaluation",
]

log = logging.getLogger(__name__)

DOMAIN_TERMS_FILE = "domain_terms.txt"


def resolve_model_spec(spec: str) -> str:
    """A run directory or URI (holding ``best/``) resolves to its ``best/``; anything else is kept.

    ``whisper_tune.runs.resolve_model_spec``: a run without ``best/`` yet is a user error naming
    the command that creates it; a URI (model or run dir, e.g. ``s3://bucket/runs/NAME``) is
    first copied locally.
    """
    from whisper_tune.runs import resolve_model_spec as resolve

    return resolve(spec)


def _run_dir_of(spec: str) -> str | None:
    """The local run directory a tuned-model spec names (for its training curves), else None."""
    from whisper_tune.runs import run_of_model_spec

    run = run_of_model_spec(spec)
    return str(run.local_copy()) if run is not None else None  # a URI: its cached copy


def load_for_eval(spec: str, device: str = "auto") -> tuple[Any, Any]:
    """(model, processor) via ``whisper_tune.models.load_model`` (dtype auto: fp32 on CPU, SDPA)."""
    from whisper_tune.models import load_model

    return load_model(resolve_model_spec(spec), dtype="auto", device=resolve_device(device))


def served_backend(spec: str, backend: str = "auto") -> str:
    """The backend that runs ``spec`` as served: ``auto`` -> ``ct2`` for a CTranslate2-only dir
    (scoring it on ``hf`` would score a float32 conversion, not the export), else ``hf``."""
    from whisper_tune.models import is_ct2_dir, is_hf_dir

    if backend != "auto":
        check_backend_kind(backend)
        return backend
    p = Path(resolve_model_spec(spec)).expanduser()
    return "ct2" if p.is_dir() and is_ct2_dir(p) and not is_hf_dir(p) else "hf"


@dataclass(frozen=True)
class ScoredArtifact:
    """What was scored: backend, number format, device and the model directory loaded."""

    backend: str
    compute_type: str
    device: str
    artifact: str


def _artifact_of(src: str, backend: str) -> str:
    """The directory ``load_backend`` runs for ``src`` (the CT2 dir, or the HF dir / hub id)."""
    from whisper_tune.inference.loader import ct2_dir_for
    from whisper_tune.models import ensure_hf_dir, is_ct2_dir, is_hf_dir

    if backend == "ct2":
        return str(ct2_dir_for(src))
    p = Path(src).expanduser()
    hf = ensure_hf_dir(src)
    if p.is_dir() and is_ct2_dir(p) and not is_hf_dir(p):
        log.warning(
            "%s: a CTranslate2 dir scored on --backend hf: its float32 conversion %s is scored", src, hf
        )
        return f"{hf} (float32 conversion of the CTranslate2 dir {p})"
    return hf


@dataclass
class EvalItem:
    """One decoded utterance ready to transcribe."""

    id: str
    text: str
    audio: np.ndarray
    meta: dict[str, Any]
    origin: str
    source: str = ""  # the audio file it was read from (empty for audio given as samples)

    @property
    def duration(self) -> float:
        return len(self.audio) / SAMPLE_RATE


def channel_index(s: Any) -> int | None:
    """A row's ``channel`` when it is an index (0 = left) into a multichannel file; a string
    (``phone``, a channel *type* in clip manifests) is a label, not an index."""
    ch = (s.meta or {}).get("channel")
    return ch if isinstance(ch, int) and not isinstance(ch, bool) else None


def _channel_audio(s: Any, ch: int) -> np.ndarray:
    """Channel ``ch`` of ``s.audio`` at 16 kHz, read in blocks with soundfile (the other channels
    are never held whole) and resampled once with soxr HQ, as ``data.longform.read_window``
    reads a training window; a mono file, a missing channel or a format soundfile cannot read
    is a DataError naming the row."""
    import soundfile as sf
    import soxr

    where = s.origin or s.audio
    try:
        with sf.SoundFile(s.audio) as f:
            sr, n_ch = int(f.samplerate), int(f.channels)
            if n_ch < 2 or not 0 <= ch < n_ch:
                raise DataError(f"{where}: channel {ch} asked, but {s.audio} has {n_ch} channel(s)")
            parts = [b[:, ch].copy() for b in f.blocks(blocksize=1 << 18, dtype="float32", always_2d=True)]
    except (RuntimeError, OSError) as exc:  # soundfile's LibsndfileError is a RuntimeError
        raise DataError(f"{where}: cannot read channel {ch} of {s.audio} (WAV/FLAC/OGG): {exc}") from None
    x = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    if sr != SAMPLE_RATE and x.size:
        x = soxr.resample(x, sr, SAMPLE_RATE, quality="HQ")
    return np.ascontiguousarray(x, dtype=np.float32)


def load_eval_items(
    data: str | Path | Sequence[Any], *, limit: int | None = None
) -> tuple[list[EvalItem], list[dict[str, Any]]]:
    """Decode every sample of ``data`` (a manifest path or ``Sample`` list) once.

    Returns (items, skipped); manifest rows the loader skipped and clips that fail to
    decode are both in ``skipped`` as ``{"origin", "reason", "message"}``.
    """
    from whisper_tune.data import load_audio, load_manifest

    skipped: list[dict[str, Any]] = []
    if isinstance(data, str | Path):
        res = load_manifest(str(data))
        samples: list[Any] = list(res.samples)
        skipped += [{"origin": s.origin, "reason": s.reason, "message": s.message} for s in res.skipped]
    else:
        samples = list(data)
    if limit is not None:
        samples = samples[:limit]
    items: list[EvalItem] = []
    seen: dict[str, int] = {}
    for s in samples:
        try:
            ch = channel_index(s)
            audio = load_audio(s.audio) if ch is None else _channel_audio(s, ch)
        except DataError as exc:  # AudioError is a DataError naming the file
            reason = str(getattr(exc, "reason", "unreadable_audio"))
            skipped.append({"origin": s.origin, "reason": reason, "message": str(exc)})
            log.warning("skipping %s: %s", s.origin or s.id, exc)
            continue
        if audio.size == 0:
            skipped.append({"origin": s.origin, "reason": "empty_audio", "message": f"{s.audio}: no samples"})
            continue
        uid = orig = str(s.id)
        if orig in seen:  # ids must be unique to pair base and tuned results
            seen[orig] += 1
            uid = f"{orig}#{seen[orig]}"
        else:
            seen[orig] = 1
        src = str(s.audio) if isinstance(s.audio, str | Path) else ""
        items.append(EvalItem(uid, s.text, audio, dict(s.meta or {}), s.origin, src))
    if skipped:
        log.warning("%d item(s) skipped (listed in the report)", len(skipped))
    if not items:
        detail = "; ".join(f"{s['origin']}: {s['message']}" for s in skipped[:5])
        raise DataError(
            f"no usable utterances in {data if isinstance(data, str | Path) else 'the given samples'}"
            + (f" ({detail})" if detail else "")
        )
    return items, skipped


def _find_terms(data: Any, domain_terms: str | Path | None) -> list[str] | None:
    if domain_terms is not None:
        return load_terms(domain_terms)
    if isinstance(data, str | Path) and Path(data).exists():
        auto = (Path(data) if Path(data).is_dir() else Path(data).parent) / DOMAIN_TERMS_FILE
        if auto.is_file():
            log.info("using domain terms from %s", auto)
            return load_terms(auto)
    return None


def score_texts(
    model: str,
    data_name: str,
    items: Sequence[Any],
    hyps: Sequence[str],
    *,
    normalizer: str = "whisper_en",
    group_by: Sequence[str] | None = None,
    terms: Sequence[str] | None = None,
    skipped: list[dict[str, Any]] | None = None,
    seconds: float = 0.0,
    device: str = "cpu",
    batch_size: int = 8,
) -> EvalResult:
    """Score hypotheses against items (anything with ``id``, ``text``, ``meta``, ``duration``, ``origin``)."""
    if len(items) != len(hyps):
        raise ValueError(f"{len(items)} items but {len(hyps)} hypotheses")
    norm = resolve_normalizer(normalizer)
    ortho = resolve_normalizer("none")
    utts = [
        UtteranceResult(
            id=str(it.id),
            ref=it.text,
            hyp=h,
            score=score_utterance(it.text, h, norm),
            ortho=score_utterance(it.text, h, ortho).counts,
            meta=dict(it.meta or {}),
            duration=it.duration,
            origin=getattr(it, "origin", ""),
        )
        for it, h in zip(items, hyps, strict=True)
    ]
    recall = domain_term_recall([it.text for it in items], list(hyps), terms, norm) if terms else None
    return EvalResult(
        model=model,
        data=data_name,
        normalizer=normalizer,
        utterances=utts,
        group_by=resolve_group_fields([u.meta for u in utts], group_by),
        skipped=list(skipped or []),
        seconds=seconds,
        device=device,
        batch_size=batch_size,
        domain_terms=recall,
    )


def _run_model(
    spec: str,
    items: list[EvalItem],
    bank: FeatureBank,
    *,
    data_name: str,
    normalizer: str,
    group_fields: list[str],
    terms: list[str] | None,
    skipped: list[dict[str, Any]],
    batch_size: int,
    device: str,
    num_beams: int,
    max_new_tokens: int | None = None,
    language: str | None = None,
    backend: str = "hf",
    precision: str = "auto",
    prompt: str | None = None,
) -> EvalResult:
    backend = served_backend(spec, backend)
    dev = resolve_device(device, backend)
    opts = BackendOptions(device=dev, dtype=precision, compute_type=precision, batch_size=batch_size)
    src = resolve_model_spec(spec)
    artifact = _artifact_of(src, backend)
    model = load_backend(src, backend, opts, model_name=spec)
    scored = ScoredArtifact(backend, str(model.precision), str(model.device), artifact)
    lang = language if language is not None else ("en" if normalizer == "whisper_en" else None)
    decode = DecodeOptions(
        language=lang if model.multilingual else None,  # English-only models ignore it
        beams=num_beams,
        max_new_tokens=max_new_tokens,
        prompt=prompt,
    )
    t0 = time.perf_counter()
    hyps = [
        t.text
        for t in transcribe_audios(model, bank, decode, progress=f"transcribing ({Path(spec).name or spec})")
    ]
    seconds = time.perf_counter() - t0
    label = spec if backend == "hf" else f"{spec} [{backend} {model.precision}]"
    if prompt:
        label += " + prompt"
    del model
    result = score_texts(
        label,
        data_name,
        items,
        hyps,
        normalizer=normalizer,
        group_by=group_fields,
        terms=terms,
        skipped=skipped,
        seconds=seconds,
        device=dev,
        batch_size=batch_size,
    )
    result.prompt = prompt
    result.backend, result.compute_type, result.artifact = backend, scored.compute_type, scored.artifact
    result.device = scored.device if scored.device != "?" else dev
    log.info(
        "%s: WER %.4f over %d utterances, transcribed in %.1f s",
        label,
        result.wer,
        len(result.utterances),
        seconds,
    )
    return result


def evaluate(
    model_spec: str,
    data: str | Path | Sequence[Any],
    out_dir: str | Path,
    *,
    group_by: Sequence[str] | None = None,
    batch_size: int = 8,
    device: str = "auto",
    normalizer: str = "whisper_en",
    domain_terms: str | Path | None = None,
    num_beams: int = 1,
    max_new_tokens: int | None = None,
    language: str | None = None,
    limit: int | None = None,
    backend: str = "auto",
    precision: str = "auto",
    longform: Any = None,
    redact: bool = False,
) -> EvalResult:
    """Transcribe ``data`` with one model; write predictions.jsonl, metrics.json, report.md, wer_by_group.png.

    ``backend``: ``hf`` (Transformers), ``ct2`` (the CTranslate2 export the server runs) or
    ``auto`` (``served_backend``: ``ct2`` for a CTranslate2 dir, else ``hf``);
    ``precision``: ``auto`` (``whisper_tune.inference.resolve_precision``, the rule ``serve``
    uses), a torch dtype for ``hf`` or a CTranslate2 compute type for ``ct2``.

    ``longform``: a ``LongformResult`` (``evaluate.longform.evaluate_longform``, which imports
    this module) for the report's long-form section. ``redact``: mask card/account/phone
    numbers and e-mail addresses in the written files (``scoring.redact``; scores use raw text).
    """
    resolve_normalizer(normalizer)  # fail early on an unknown kind
    items, skipped = load_eval_items(data, limit=limit)
    fields = resolve_group_fields([it.meta for it in items], group_by)
    result = _run_model(
        model_spec,
        items,
        FeatureBank([it.audio for it in items]),
        data_name=str(data) if isinstance(data, str | Path) else "<samples>",
        normalizer=normalizer,
        group_fields=fields,
        terms=_find_terms(data, domain_terms),
        skipped=skipped,
        batch_size=batch_size,
        device=device,
        num_beams=num_beams,
        max_new_tokens=max_new_tokens,
        language=language,
        backend=backend,
        precision=precision,
    )
    result.longform, result.redact = longform, redact
    write_evaluation(result, out_dir)
    return result


def write_evaluation(result: EvalResult, out_dir: str | Path) -> dict[str, Path]:
    """predictions.jsonl, metrics.json, wer_by_group.png and report.md for one model."""
    out = Path(out_dir)
    files = result.write(out)
    plot = plot_wer_by_group(result.groups(), out / "wer_by_group.png", overall={"wer": result.wer})
    md = out / "report.md"
    text = render_evaluation(result, {"WER by group": plot}, out)
    md.write_text((redact_text(text) if result.redact else text) + "\n", encoding="utf-8")
    files.update(wer_by_group=plot, report_md=md)
    return files
