"""Datasheet of a built real-speech guard set (``datasheet.json`` + ``datasheet.md``).

Why: a guard set is only useful if one can see what it measures -- which recordings, from
which package and version, under which licence and attribution, how many clips and
seconds per source, speaker and content kind, and how the transcripts were checked -- and
if it says what was left out. Everything is derived from the clips actually written, with
no timestamps, so the same packages and options give byte-identical files.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
from collections import Counter
from typing import Any

from whisper_tune.data.guard_spec import GuardResult, GuardSpec

__all__ = ["LICENCE_NOTE", "datasheet_dict", "installed_version", "write_datasheet"]

LICENCE_NOTE = (
    "The audio is not part of whisper-tune: it is made on your machine from the Debian packages "
    "listed above and stays under their licences ({licences}). Redistributing the built files needs "
    "the attribution and licence named for each source; the 16 kHz resampling is a modification. "
    "The transcripts in guard_sources.json come from the packages, from published texts, or were "
    "checked as described above; each clip's transcript_origin says which."
)


def installed_version(package: str) -> str | None:
    """The installed Debian version of ``package`` (``None`` without dpkg or when not installed)."""
    dpkg = shutil.which("dpkg-query")
    if dpkg is None:
        return None
    try:
        out = subprocess.run(
            [dpkg, "-W", "-f", "${Version}", package], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    version = out.stdout.strip()
    return version if out.returncode == 0 and version else None


def _durations(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {
        "min": round(min(values), 3),
        "median": round(statistics.median(values), 3),
        "mean": round(statistics.fmean(values), 3),
        "max": round(max(values), 3),
    }


def datasheet_dict(
    result: GuardResult, spec: GuardSpec, *, max_clips: int | None, lenient: bool
) -> dict[str, Any]:
    """The datasheet as plain data (what ``datasheet.json`` holds)."""
    rows = result.rows
    origin = {c.id: c.transcript_origin for c in spec.clips}
    sources: dict[str, Any] = {}
    for name, src in spec.sources.items():
        mine = [r for r in rows if r["source"] == name]
        if not mine:
            continue
        sources[name] = {
            "package": src.package,
            "verified_version": src.package_version,
            "installed_version": installed_version(src.package),
            "files_in": src.root,
            "licence": src.licence,
            "attribution": src.attribution,
            "transcripts": src.transcripts,
            "clips": len(mine),
            "seconds": round(sum(r["duration"] for r in mine), 3),
            "speakers": sorted({r["speaker"] for r in mine}),
            "kinds": dict(sorted(Counter(r["kind"] for r in mine).items())),
            "original_sample_rates": sorted({int(r["orig_sr"]) for r in mine}),
        }
    return {
        "name": "whisper-tune real-speech guard",
        "spec_version": spec.version,
        "spec_fingerprint": spec.fingerprint(),
        "max_clips": max_clips,
        "lenient": lenient,
        "manifest": result.manifest.name,
        "audio": {"format": "WAV PCM_16", "sample_rate": 16000, "channels": 1},
        "clips": len(rows),
        "seconds": round(result.seconds, 3),
        "duration_s": _durations([r["duration"] for r in rows]),
        "sources": sources,
        "speakers": dict(sorted(Counter(r["speaker"] for r in rows).items())),
        "kinds": dict(sorted(Counter(r["kind"] for r in rows).items())),
        "transcript_origins": dict(sorted(Counter(origin.get(r["id"], "?") for r in rows).items())),
        "verification": spec.verification,
        "dropped": result.dropped,
        "licence_note": LICENCE_NOTE.format(
            licences=", ".join(sorted({s["licence"] for s in sources.values()}))
        ),
    }


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(v) for v in r) + " |" for r in rows]
    return out


def _markdown(d: dict[str, Any]) -> str:
    dur = d["duration_s"]
    lines = [
        "# Real-speech guard set",
        "",
        f"{d['clips']} clips, {d['seconds'] / 60:.1f} min of real human speech "
        f"({dur.get('min', 0):.1f}-{dur.get('max', 0):.1f} s, median {dur.get('median', 0):.1f} s), "
        f"{len(d['speakers'])} speakers, {len(d['sources'])} sources; 16 kHz mono WAV. "
        f"Manifest: `{d['manifest']}`. Spec {d['spec_fingerprint']}"
        + (f", first {d['max_clips']} of a stratified order" if d["max_clips"] else "")
        + ".",
        "",
        "## Sources",
        "",
    ]
    lines += _table(
        [
            "source",
            "Debian package (verified / installed)",
            "licence",
            "clips",
            "seconds",
            "speakers",
            "kinds",
        ],
        [
            [
                name,
                f"{s['package']} {s['verified_version']} / {s['installed_version'] or '?'}",
                s["licence"],
                s["clips"],
                f"{s['seconds']:.1f}",
                len(s["speakers"]),
                ", ".join(f"{k} {n}" for k, n in s["kinds"].items()),
            ]
            for name, s in d["sources"].items()
        ],
    )
    lines += ["", "Attribution and where the transcripts come from:", ""]
    for name, s in d["sources"].items():
        lines.append(f"- **{name}** ({s['files_in']}): {s['attribution']}. Transcripts: {s['transcripts']}")
    lines += ["", "## Content kinds", ""]
    lines += _table(["kind", "clips"], [[k, n] for k, n in d["kinds"].items()])
    lines += ["", "## Speakers", ""]
    lines += _table(["speaker", "clips"], [[k, n] for k, n in d["speakers"].items()])
    lines += ["", "## How the transcripts were verified", "", d["verification"] or "(not stated)", ""]
    lines += ["Transcript origins: " + ", ".join(f"{k} {n}" for k, n in d["transcript_origins"].items()), ""]
    if d["dropped"]:
        lines += ["## Left out", ""]
        lines += _table(
            ["id", "reason", "message"], [[x["id"], x["reason"], x["message"]] for x in d["dropped"]]
        )
        lines.append("")
    lines += ["## Licence", "", d["licence_note"], ""]
    return "\n".join(lines)


def write_datasheet(result: GuardResult, spec: GuardSpec, *, max_clips: int | None, lenient: bool) -> None:
    """Write ``datasheet.json`` and ``datasheet.md`` next to the manifest."""
    d = datasheet_dict(result, spec, max_clips=max_clips, lenient=lenient)
    (result.out_dir / "datasheet.json").write_text(
        json.dumps(d, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (result.out_dir / "datasheet.md").write_text(_markdown(d), encoding="utf-8")
