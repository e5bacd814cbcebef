"""Synthetic corpus orchestration: plan every clip up front, render in parallel, document it.

Why plan first: every decision (sentence, split, speaker, channel, SNR, level, babble
sources) is drawn in the parent from the seed before any audio exists, so the same seed
gives the same corpus whatever the number of workers; workers only render. Rendering
runs in fixed-size chunks (the Piper noise stream is reseeded per chunk, see ``tts``),
in a process pool, because TTS is CPU-bound and single-threaded per process.

Splits hold out sentences *and* speakers: every sentence is unique in the corpus (so a
test sentence is never in train) and each speaker belongs to exactly one split.

Output (see contracts): ``OUT/{train,validation,test}.jsonl`` (NeMo style, audio paths
relative to OUT), ``OUT/metadata.csv`` (HF audiofolder), ``OUT/datasheet.{md,json}``,
``OUT/domain_terms.txt``, ``OUT/audio/<split>/<id>.wav`` (16 kHz mono PCM16).
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing as mp
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from whisper_tune.data.synth import channel as ch
from whisper_tune.data.synth import text as textgen
from whisper_tune.data.synth.datasheet import write_outputs
from whisper_tune.data.synth.tts import (
    SR,
    EspeakEngine,
    PiperEngine,
    Speaker,
    TTSError,
    available_engines,
    espeak_variants,
    espeak_voices,
)
from whisper_tune.errors import UserError

__all__ = ["SynthConfig", "CorpusInfo", "ClipPlan", "synthesize_corpus", "plan_corpus", "build_speakers"]

_LOG = logging.getLogger(__name__)
SPLITS = ("train", "validation", "test")
_OUTPUT_NAMES = (
    "train.jsonl",
    "validation.jsonl",
    "test.jsonl",
    "metadata.csv",
    "datasheet.md",
    "datasheet.json",
    "domain_terms.txt",
    "audio",
)


@dataclass
class SynthConfig:
    """Options of ``whisper-tune data synth`` (all defaults are the demo's)."""

    out: str
    n: int = 1000
    seed: int = 0
    domain: str = "banking"
    workers: int | None = None  # None = all cores
    phone_share: float = 0.4  # share of clips through the telephone channel
    noise_share: float = 0.4  # share of clips with additive noise
    snr_db: tuple[float, float] = (
        8.0,
        28.0,
    )  # SNR range for noisy clips (below ~8 dB espeak + phone is unintelligible)
    general_share: float = 0.25  # share of everyday-English sentences
    piper_share: float = 0.5  # share of clips spoken by Piper (rest espeak-ng)
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)  # train, validation, test
    speaker_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)  # of each engine's speakers
    holdout_templates: float = (
        0.0  # >0: this share of each intent's templates is used only in validation/test
    )
    noise_types: tuple[str, ...] = ch.NOISE_TYPES
    n_piper_speakers: int = 20
    n_espeak_speakers: int = 96
    chunk_size: int = 40  # clips per work unit (fixed so output does not depend on workers)
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.domain != "banking":
            raise UserError(f"--domain: only 'banking' is implemented, got {self.domain!r}")
        if self.n < 1:
            raise UserError(f"--n must be >= 1, got {self.n}")
        for name in ("phone_share", "noise_share", "general_share", "piper_share"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise UserError(f"{name} must be within [0, 1], got {v}")
        lo, hi = self.snr_db
        if lo > hi:
            raise UserError(f"snr_db range must be low,high with low <= high, got {lo},{hi}")
        for name in ("split_fractions", "speaker_fractions"):
            fr = getattr(self, name)
            if len(fr) != 3 or any(f < 0 for f in fr) or abs(sum(fr) - 1.0) > 1e-6:
                raise UserError(f"{name} must be 3 non-negative numbers summing to 1, got {fr}")
        bad = [t for t in self.noise_types if t not in ch.NOISE_TYPES]
        if bad or not self.noise_types:
            raise UserError(f"noise_types {bad or '(empty)'} not in {', '.join(ch.NOISE_TYPES)}")
        if self.workers is not None and self.workers < 1:
            raise UserError(f"--workers must be >= 1, got {self.workers}")
        if not 0.0 <= self.holdout_templates < 1.0:
            raise UserError(f"holdout_templates must be within [0, 1), got {self.holdout_templates}")
        if self.chunk_size < 1:
            raise UserError("chunk_size must be >= 1")


@dataclass
class ClipPlan:
    """Everything needed to render one clip, decided before rendering."""

    index: int
    id: str
    split: str
    rel_path: str
    text: str
    spoken: str
    domain: str
    intent: str
    topic: str
    template: str
    speaker: Speaker
    channel: str  # "phone" | "wideband"
    noise: str  # noise type or "none"
    snr_db: float | None
    peak_dbfs: float
    babble: list[tuple[str, Speaker]] = field(default_factory=list)
    terms: list[str] = field(default_factory=list)  # domain terms in ``text``


@dataclass
class CorpusInfo:
    """What :func:`synthesize_corpus` wrote."""

    out_dir: Path
    manifests: dict[str, Path]
    metadata_csv: Path
    datasheet_md: Path
    datasheet_json: Path
    domain_terms: Path
    clips: dict[str, int]  # per split
    hours: dict[str, float]  # per split
    failed: int
    engines: dict[str, bool]
    messages: list[str]
    wall_s: float


def _split_sizes(n: int, fractions: tuple[float, float, float]) -> list[int]:
    sizes = [int(round(n * f)) for f in fractions]
    # each requested split gets at least one item when there are enough
    for i, f in enumerate(fractions):
        if f > 0 and sizes[i] == 0 and n >= 3:
            sizes[i] = 1
    sizes[0] = n - sizes[1] - sizes[2]
    if sizes[0] < 0:
        raise UserError(f"cannot split {n} items as {fractions}")
    return sizes


def build_speakers(cfg: SynthConfig, engines: dict[str, bool]) -> dict[str, list[Speaker]]:
    """Speaker pool per split (deterministic for the seed); each speaker in exactly one split."""
    rng = random.Random(f"speakers:{cfg.seed}")
    pools: dict[str, list[Speaker]] = {s: [] for s in SPLITS}
    by_engine: dict[str, list[Speaker]] = {}
    if engines.get("piper"):
        grid = [
            Speaker("piper", "joe", length_scale=ls, noise_scale=ns, noise_w=nw, warp=w)
            for ls in (0.85, 0.95, 1.05, 1.15)
            for ns in (0.45, 0.667, 0.85)
            for nw in (0.6, 0.9)
            for w in (0.9, 0.95, 1.0, 1.05, 1.1)
        ]
        by_engine["piper"] = rng.sample(grid, min(cfg.n_piper_speakers, len(grid)))
    if engines.get("espeak"):
        voices = espeak_voices()
        variants = espeak_variants()
        seen: set[str] = set()
        sp: list[Speaker] = []
        for k in range(cfg.n_espeak_speakers * 5):
            if len(sp) >= cfg.n_espeak_speakers:
                break
            s = Speaker(
                "espeak",
                voices[k % len(voices)],
                variant=rng.choice(variants) if variants else "",
                speed=rng.randrange(135, 186, 5),
                pitch=rng.randrange(25, 76, 5),
            )
            if s.id not in seen:
                seen.add(s.id)
                sp.append(s)
        by_engine["espeak"] = sp
    for _engine, speakers in sorted(by_engine.items()):
        speakers = speakers[:]
        rng.shuffle(speakers)
        sizes = _split_sizes(len(speakers), cfg.speaker_fractions)
        pos = 0
        for split, size in zip(SPLITS, sizes, strict=True):
            pools[split].extend(speakers[pos : pos + size])
            pos += size
    return pools


def _stratified_split(utts: list[textgen.Utterance], sizes: list[int]) -> dict[str, list[textgen.Utterance]]:
    """Split so every intent/topic is spread over the splits in proportion (exact ``sizes``).

    Utterances are ordered by intent (stable within the already shuffled list) and dealt
    by largest deficit against the target sizes, so each intent lands ~8:1:1 by default.
    """
    n = len(utts)
    if n == 0:
        return {s: [] for s in SPLITS}
    order = sorted(range(n), key=lambda i: (utts[i].intent, utts[i].topic, i))
    assigned = [0, 0, 0]
    out: dict[str, list[tuple[int, textgen.Utterance]]] = {s: [] for s in SPLITS}
    for rank, i in enumerate(order):
        deficits = [sizes[k] * (rank + 1) / n - assigned[k] for k in range(3)]
        k = max(range(3), key=lambda j: (deficits[j], -j))
        assigned[k] += 1
        out[SPLITS[k]].append((i, utts[i]))
    # back to the shuffled order inside each split
    return {s: [u for _i, u in sorted(v, key=lambda t: t[0])] for s, v in out.items()}


def plan_corpus(cfg: SynthConfig, engines: dict[str, bool]) -> list[ClipPlan]:
    """Decide every clip from the seed (no audio is made here)."""
    sizes = _split_sizes(cfg.n, cfg.split_fractions)
    if cfg.holdout_templates > 0:
        # validation/test sentences come only from templates train never sees
        held = textgen.held_out_templates(cfg.holdout_templates, cfg.seed)
        seen: set[str] = set()
        train = textgen.generate_sentences(
            sizes[0], cfg.seed, cfg.general_share, template_filter=lambda k: k not in held, seen=seen
        )
        evals = textgen.generate_sentences(
            sizes[1] + sizes[2],
            cfg.seed,
            cfg.general_share,
            template_filter=held.__contains__,
            seen=seen,
            salt=":eval",
        )
        by_split = _stratified_split(evals, [0, sizes[1], sizes[2]])
        by_split["train"] = train
    else:
        by_split = _stratified_split(textgen.generate_sentences(cfg.n, cfg.seed, cfg.general_share), sizes)
    pools = build_speakers(cfg, engines)
    rng = random.Random(f"plan:{cfg.seed}")
    babble_rng = random.Random(f"babble:{cfg.seed}")
    noise_types = list(cfg.noise_types)
    use_piper = engines.get("piper", False)
    use_espeak = engines.get("espeak", False)
    plans: list[ClipPlan] = []
    for split in SPLITS:
        piper_pool = [s for s in pools[split] if s.engine == "piper"]
        espeak_pool = [s for s in pools[split] if s.engine == "espeak"]
        babble_pool = espeak_pool or piper_pool
        for j, u in enumerate(by_split[split]):
            if (
                use_piper
                and piper_pool
                and (not use_espeak or not espeak_pool or rng.random() < cfg.piper_share)
            ):
                speaker = rng.choice(piper_pool)
            else:
                speaker = rng.choice(espeak_pool)
            phone = rng.random() < cfg.phone_share
            noisy = rng.random() < cfg.noise_share
            noise = rng.choice(noise_types) if noisy else "none"
            snr = round(rng.uniform(*cfg.snr_db), 1) if noisy else None
            peak = round(rng.uniform(-12.0, -2.0), 1)
            babble: list[tuple[str, Speaker]] = []
            if noise == "babble":
                for _ in range(babble_rng.randint(3, 5)):
                    babble.append(
                        (textgen.generate_general(babble_rng).spoken, babble_rng.choice(babble_pool))
                    )
            cid = f"{split}_{j:06d}"
            plans.append(
                ClipPlan(
                    index=len(plans),
                    id=cid,
                    split=split,
                    rel_path=f"audio/{split}/{cid}.wav",
                    text=u.text,
                    spoken=u.spoken,
                    domain=u.domain,
                    intent=u.intent,
                    topic=u.topic,
                    template=u.template,
                    speaker=speaker,
                    channel="phone" if phone else "wideband",
                    noise=noise,
                    snr_db=snr,
                    peak_dbfs=peak,
                    babble=babble,
                    terms=u.terms,
                )
            )
    return plans


# ---------------------------------------------------------------- rendering (in workers)
_ENGINES: dict[str, Any] = {}


def _init_worker(engines: dict[str, bool]) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _ENGINES.clear()
    if engines.get("espeak"):
        _ENGINES["espeak"] = EspeakEngine()
    if engines.get("piper"):
        _ENGINES["piper"] = PiperEngine()


def _speak(text: str, speaker: Speaker) -> np.ndarray:
    engine = _ENGINES.get(speaker.engine)
    if engine is None:
        raise TTSError(f"engine {speaker.engine!r} is not available in this worker")
    audio: np.ndarray = engine.synthesize(text, speaker)
    return audio


def render_clip(plan: ClipPlan, seed: int) -> np.ndarray:
    """TTS -> trim/pad -> noise at SNR -> phone channel -> peak level. Returns float32 16 kHz."""
    rng = np.random.default_rng([seed, plan.index])
    audio = ch.trim_and_pad(_speak(plan.spoken, plan.speaker))
    if not np.any(audio):
        raise TTSError(f"{plan.speaker.id} produced silence for {plan.spoken[:60]!r}")
    if plan.noise != "none" and plan.snr_db is not None:
        sources = [ch.trim_and_pad(_speak(t, s), lead_s=0, trail_s=0.3) for t, s in plan.babble]
        noise = ch.make_noise(plan.noise, len(audio), rng, sources)
        audio = ch.mix_at_snr(audio, noise, plan.snr_db)  # noise in the room, before the phone line
    if plan.channel == "phone":
        audio = ch.telephone(audio)
    return ch.set_peak_dbfs(audio, plan.peak_dbfs)


def _render_chunk(chunk_index: int, plans: list[ClipPlan], out_dir: str, seed: int) -> list[dict[str, Any]]:
    piper = _ENGINES.get("piper")
    if piper is not None:
        piper.reseed(seed * 1_000_003 + chunk_index)
    results: list[dict[str, Any]] = []
    for plan in plans:
        t0 = time.perf_counter()
        try:
            audio = render_clip(plan, seed)
            path = Path(out_dir) / plan.rel_path
            path.parent.mkdir(parents=True, exist_ok=True)
            pcm = ch.to_pcm16(audio)
            sf.write(str(path), pcm, SR, subtype="PCM_16")
            results.append(
                {"index": plan.index, "ok": True, "samples": len(pcm), "render_s": time.perf_counter() - t0}
            )
        except Exception as exc:  # one bad clip is a counted, logged skip, never a lost corpus
            results.append({"index": plan.index, "ok": False, "error": f"{type(exc).__name__}: {exc}"})
    return results


# ---------------------------------------------------------------- driver
def _prepare_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a directory")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise UserError(f"--out {out} is not empty; choose a new folder or pass --overwrite")
        for name in _OUTPUT_NAMES:
            p = out / name
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    out.mkdir(parents=True, exist_ok=True)


def synthesize_corpus(cfg: SynthConfig) -> CorpusInfo:
    """Make the corpus described by ``cfg``; see the module docstring for the layout."""
    t0 = time.perf_counter()
    engines, why = available_engines()
    messages = list(why.values())
    for m in messages:
        _LOG.warning("%s", m)
    if not any(engines.values()):
        raise UserError("no TTS engine is usable: " + "; ".join(messages))
    out = Path(cfg.out)
    _prepare_out(out, cfg.overwrite)
    plans = plan_corpus(cfg, engines)
    chunks = [plans[i : i + cfg.chunk_size] for i in range(0, len(plans), cfg.chunk_size)]
    workers = min(cfg.workers or os.cpu_count() or 1, len(chunks))
    _LOG.info(
        "synthesizing %d clips in %d chunks with %d worker(s) into %s", len(plans), len(chunks), workers, out
    )
    results: list[dict[str, Any]] = []
    if workers <= 1:
        _init_worker(engines)
        for k, c in enumerate(chunks):
            results.extend(_render_chunk(k, c, str(out), cfg.seed))
    else:
        ctx = mp.get_context("spawn")  # no inherited onnxruntime/torch threads
        with cf.ProcessPoolExecutor(
            workers, mp_context=ctx, initializer=_init_worker, initargs=(engines,)
        ) as ex:
            futs = {ex.submit(_render_chunk, k, c, str(out), cfg.seed): c for k, c in enumerate(chunks)}
            for done, f in enumerate(cf.as_completed(futs), start=1):
                try:
                    results.extend(f.result())
                except Exception as exc:  # a worker died (e.g. killed for memory): count its clips
                    err = f"worker failed: {type(exc).__name__}: {exc}"
                    results.extend({"index": p.index, "ok": False, "error": err} for p in futs[f])
                if done % max(1, len(chunks) // 10) == 0:
                    _LOG.info("rendered %d/%d chunks", done, len(chunks))
    by_index = {r["index"]: r for r in results}
    failures = [(plans[i], r["error"]) for i, r in sorted(by_index.items()) if not r["ok"]]
    for plan, err in failures[:20]:
        _LOG.warning("clip %s (%s) skipped: %s", plan.id, plan.speaker.id, err)
    for plan, _err in failures:  # no orphan audio: the folder holds exactly what the manifests list
        (out / plan.rel_path).unlink(missing_ok=True)
    good = [(p, by_index[p.index]["samples"] / SR) for p in plans if by_index[p.index]["ok"]]
    if not good:
        raise UserError(f"no clip could be synthesized; first error: {failures[0][1] if failures else '?'}")
    info = write_outputs(out, cfg, good, failures, engines, messages)
    wall = time.perf_counter() - t0
    _LOG.info("wrote %d clips (%d failed) in %.1f s", len(good), len(failures), wall)
    return CorpusInfo(
        out_dir=out,
        manifests={s: out / f"{s}.jsonl" for s in SPLITS},
        metadata_csv=out / "metadata.csv",
        datasheet_md=out / "datasheet.md",
        datasheet_json=out / "datasheet.json",
        domain_terms=out / "domain_terms.txt",
        clips=info["clips"],
        hours=info["hours"],
        failed=len(failures),
        engines=engines,
        messages=messages,
        wall_s=wall,
    )
