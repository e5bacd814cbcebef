"""Manifests, audiofolder metadata, datasheet and domain-term list of a synthetic corpus.

Why a datasheet: a synthetic corpus is only trustworthy if one can see what is in it
(counts per intent, voice, channel, domain, hours per split, which speakers are held
out, how transcripts are written) and check that against the files. Everything written
here is derived from the rendered clips only (failed clips are listed, not counted), and
contains no timestamps, so the same seed gives byte-identical text files.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from whisper_tune.data.synth.text import INTENTS, domain_terms

if TYPE_CHECKING:
    from whisper_tune.data.synth.corpus import ClipPlan, SynthConfig

__all__ = ["write_outputs", "TRANSCRIPT_CONVENTION", "manifest_row"]

SPLITS = ("train", "validation", "test")

TRANSCRIPT_CONVENTION = """\
`text` (the label) is the written form Whisper emits; `spoken` is what the TTS engine read.
- sentence case with punctuation; no disfluencies ("um", "uh")
- dollar amounts: `$1,250`, `$45.99` (no `.00`)  <- "one thousand two hundred fifty dollars"
- percentages: `19.99%`  <- "nineteen point nine nine percent"
- dates: `March 3rd`, `the 15th`  <- "March third", "the fifteenth"; years `2024`
- account/card/routing/zip digits: `4521`  <- "four five two one"; house numbers `1142 Main Street`
- acronyms in capitals: APR, ATM, ACH, IBAN, SWIFT, PIN, HELOC, CD, FDIC, SBA, EIN, LLC, CVV
  (spoken "A P R", "eye ban", "swift", "hee lock", ...)
- brands as written by the brand: Zelle (spoken "zell"), PayPal, Venmo, Cash App, Apple Pay,
  Google Pay, Visa, Mastercard, American Express, Discover
- small counts and times of day stay words/`7 o'clock` style: "two transactions", `7 o'clock`
"""


def manifest_row(plan: ClipPlan, duration: float) -> dict[str, Any]:
    """One NeMo-style JSONL row (audio path relative to the corpus folder)."""
    sp = plan.speaker
    return {
        "audio_filepath": plan.rel_path,
        "text": plan.text,
        "duration": round(duration, 3),
        "id": plan.id,
        "spoken": plan.spoken,
        "domain": plan.domain,
        "intent": plan.intent,
        "topic": plan.topic,
        "template": plan.template,
        "engine": sp.engine,
        "voice": sp.voice_name,
        "speaker": sp.id,
        "channel": plan.channel,
        "noise": plan.noise,
        "snr_db": plan.snr_db,
        "peak_dbfs": plan.peak_dbfs,
        "split": plan.split,
    }


def _config_dict(cfg: SynthConfig) -> dict[str, Any]:
    d = asdict(cfg)
    for k in ("out", "overwrite", "workers"):  # do not change the corpus
        d.pop(k, None)
    return d


def _table(title: str, counts: dict[str, dict[str, int]], keys: list[str]) -> list[str]:
    lines = [f"### {title}", "", "| " + title.split(" ")[-1] + " | train | validation | test | total |"]
    lines.append("|---|---:|---:|---:|---:|")
    for k in keys:
        row = [counts.get(s, {}).get(k, 0) for s in SPLITS]
        lines.append(f"| {k} | " + " | ".join(str(v) for v in row) + f" | {sum(row)} |")
    lines.append("")
    return lines


def write_outputs(
    out: Path,
    cfg: SynthConfig,
    good: list[tuple[ClipPlan, float]],
    failures: list[tuple[ClipPlan, str]],
    engines: dict[str, bool],
    messages: list[str],
) -> dict[str, Any]:
    """Write manifests, metadata.csv, datasheet.{md,json}, domain_terms.txt; return the summary."""
    rows = {s: [manifest_row(p, d) for p, d in good if p.split == s] for s in SPLITS}
    for s in SPLITS:
        with open(out / f"{s}.jsonl", "w", encoding="utf-8") as fh:
            for r in rows[s]:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    csv_cols = ["file_name", "transcription", "split", "id", "duration", "domain", "intent", "engine",
                "voice", "speaker", "channel", "noise", "snr_db"]  # fmt: skip
    with open(out / "metadata.csv", "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(csv_cols)
        for s in SPLITS:
            for r in rows[s]:
                w.writerow(
                    [r["audio_filepath"], r["text"]] + ["" if r[c] is None else r[c] for c in csv_cols[2:]]
                )

    def per(field: str) -> dict[str, dict[str, int]]:
        return {s: dict(sorted(Counter(str(r[field]) for r in rows[s]).items())) for s in SPLITS}

    clips = {s: len(rows[s]) for s in SPLITS}
    seconds = {s: round(sum(r["duration"] for r in rows[s]), 2) for s in SPLITS}
    hours = {s: round(seconds[s] / 3600.0, 4) for s in SPLITS}
    speakers = {s: sorted({r["speaker"] for r in rows[s]}) for s in SPLITS}
    texts = {s: {r["text"] for r in rows[s]} for s in SPLITS}
    templates = {s: {r["template"] for r in rows[s]} for s in SPLITS}
    terms = domain_terms(p for p, _ in good)
    (out / "domain_terms.txt").write_text("".join(t + "\n" for t in terms), encoding="utf-8")
    durations = [r["duration"] for s in SPLITS for r in rows[s]]
    sheet: dict[str, Any] = {
        "name": f"whisper-tune synthetic {cfg.domain} speech",
        "config": _config_dict(cfg),
        "engines": engines,
        "engine_messages": messages,
        "sample_rate": 16000,
        "format": "wav, mono, PCM16",
        "clips": clips,
        "clips_total": sum(clips.values()),
        "seconds": seconds,
        "hours": hours,
        "hours_total": round(sum(seconds.values()) / 3600.0, 4),
        "duration_s": {
            "min": round(min(durations), 3),
            "mean": round(sum(durations) / len(durations), 3),
            "max": round(max(durations), 3),
        },
        "per_domain": per("domain"),
        "per_intent": per("intent"),
        "per_engine": per("engine"),
        "per_voice": per("voice"),
        "per_channel": per("channel"),
        "per_noise": per("noise"),
        "speakers": speakers,
        "held_out": {
            "speakers_shared_between_splits": sorted(
                (set(speakers["train"]) & (set(speakers["validation"]) | set(speakers["test"])))
                | (set(speakers["validation"]) & set(speakers["test"]))
            ),
            "templates_in_train_and_eval": len(
                templates["train"] & (templates["validation"] | templates["test"])
            ),
            "templates_eval_only": len((templates["validation"] | templates["test"]) - templates["train"]),
            "sentences_shared_between_splits": len(
                (texts["train"] & (texts["validation"] | texts["test"]))
                | (texts["validation"] & texts["test"])
            ),
        },
        "failed": [{"id": p.id, "speaker": p.speaker.id, "error": e} for p, e in failures],
        "domain_terms": terms,
        "transcript_convention": TRANSCRIPT_CONVENTION,
        "determinism": (
            "Same seed -> same sentences, speakers, channels, SNRs and levels. espeak-ng output is "
            "deterministic; Piper's in-graph noise is reseeded per chunk of "
            f"{cfg.chunk_size} clips, so audio bytes are identical for a seed on the same machine "
            "and library versions, whatever the worker count."
        ),
    }
    (out / "datasheet.json").write_text(
        json.dumps(sheet, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (out / "datasheet.md").write_text(_markdown(sheet), encoding="utf-8")
    return sheet


def _markdown(sheet: dict[str, Any]) -> str:
    c = sheet["clips"]
    lines = [
        f"# Datasheet: {sheet['name']}",
        "",
        "Synthetic speech made offline by `whisper-tune data synth` (Piper + espeak-ng TTS, "
        "simulated telephone channel and noise). It is **not** recorded human speech: use it to "
        "adapt and smoke-test, and judge a model on real calls before trusting it.",
        "",
        "## Summary",
        "",
        "| split | clips | hours | speakers |",
        "|---|---:|---:|---:|",
    ]
    for s in SPLITS:
        lines.append(f"| {s} | {c[s]} | {sheet['hours'][s]:.3f} | {len(sheet['speakers'][s])} |")
    lines.append(f"| total | {sheet['clips_total']} | {sheet['hours_total']:.3f} | "
                 f"{sum(len(v) for v in sheet['speakers'].values())} |")  # fmt: skip
    d = sheet["duration_s"]
    lines += [
        "",
        f"Clip duration: min {d['min']} s, mean {d['mean']} s, max {d['max']} s. "
        f"16 kHz mono PCM16 WAV. Failed clips: {len(sheet['failed'])}.",
        "",
        "Held out: every sentence is unique in the corpus (test sentences never occur in train) and "
        "every speaker belongs to one split only "
        f"(speakers shared between splits: {len(sheet['held_out']['speakers_shared_between_splits'])}, "
        f"sentences shared: {sheet['held_out']['sentences_shared_between_splits']}; sentence templates "
        f"used in train and evaluation: {sheet['held_out']['templates_in_train_and_eval']}, only in "
        f"evaluation: {sheet['held_out']['templates_eval_only']}). A *speaker* is one "
        "engine + voice + variant + speed/pitch (espeak-ng) or one set of length/noise scales + formant "
        "warp of the single Piper voice `joe` (so the Piper timbre itself is shared across splits).",
        "",
    ]
    if sheet["engine_messages"]:
        lines += ["Engine notes: " + "; ".join(sheet["engine_messages"]), ""]
    lines += ["## Counts", ""]
    lines += _table("per domain", sheet["per_domain"], ["banking", "general"])
    lines += _table("per intent", sheet["per_intent"], [*INTENTS, "general"])
    lines += _table(
        "per engine", sheet["per_engine"], sorted({k for v in sheet["per_engine"].values() for k in v})
    )
    lines += _table(
        "per channel", sheet["per_channel"], sorted({k for v in sheet["per_channel"].values() for k in v})
    )
    lines += _table(
        "per noise", sheet["per_noise"], sorted({k for v in sheet["per_noise"].values() for k in v})
    )
    lines += _table(
        "per voice", sheet["per_voice"], sorted({k for v in sheet["per_voice"].values() for k in v})
    )
    cfg = sheet["config"]
    lines += [
        "## Generation settings",
        "",
        f"seed {cfg['seed']}, phone share {cfg['phone_share']}, noise share {cfg['noise_share']} at SNR "
        f"{cfg['snr_db'][0]}-{cfg['snr_db'][1]} dB ({', '.join(cfg['noise_types'])}), general-English share "
        f"{cfg['general_share']}, Piper share {cfg['piper_share']}. Phone channel: 8 kHz, 300-3400 Hz band-pass, "
        "8-bit mu-law, back to 16 kHz. Noise is added before the phone channel (room noise). "
        "Leading/trailing silence trimmed to 0.15 s / 0.2 s; peak level drawn from -12..-2 dBFS.",
        "",
        "## Transcript convention",
        "",
        sheet["transcript_convention"],
        "## Determinism",
        "",
        sheet["determinism"],
        "",
        "## Domain terms",
        "",
        ", ".join(sheet["domain_terms"]),
        "",
    ]
    return "\n".join(lines)
