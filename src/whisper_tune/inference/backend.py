"""The one decode loop, behind which the Transformers and CTranslate2 backends differ only in
``_generate``/``_detect``.

Why two backends: the Transformers model (torch, bf16/fp16 on GPU, fp32 on CPU, SDPA) is what
training produces and needs no export step; CTranslate2 (int8 on CPU, float16 on GPU) is
several times faster for the same greedy transcript. Why one loop: evaluation scores
exactly what the server returns. The server calls ``transcribe_batch`` (arrays, per-request
options); evaluation calls ``transcribe_bank`` with a caching ``FeatureBank`` so base and
tuned models share features; both end in the same code below.

Long audio: files longer than the encoder's window are cut on silence into windows
(``FeatureBank.pieces``); the windows of every file in a call are decoded together, sorted
by length, in batches of ``BackendOptions.batch_size`` (a 10-minute call fills batches
instead of running 20 sequential passes), and each window's segments are shifted by its
start time. Every window gets its own token cap (``options.token_cap``), so a transcript
does not depend on what it was batched with. Timestamps come from Whisper's own timestamp
tokens, parsed the same way for both backends; without them each window is one segment.

Statistics and fallback: each backend's ``_generate`` returns a ``Decoded`` per window (ids,
mean log-probability, no-speech probability); this loop adds the compression ratio, decodes
windows that fail the thresholds again at the next of ``DecodeOptions.temperatures``
(``fallback``: OpenAI's rule), drops windows judged silent when ``skip_silence`` is set, and
asks the backend for word alignments (``_align``) when ``word_timestamps`` is set.

Silence: with ``DecodeOptions.gate`` (a ``SpeechGate``; the server sets one) windows without
enough energy and files under 0.1 s never reach the model and get no text, so Whisper cannot
invent words for them; without a gate (evaluation) every window is decoded.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from .bank import FRAMES_PER_SECOND, FULL_FRAMES, SAMPLE_RATE, FeatureBank
from .fallback import Decoded, compression_ratio, is_silent, needs_fallback, pick
from .language import check_task, language_name, normalize_language
from .options import MAX_TARGET_POSITIONS, PROMPT_MAX_TOKENS, BackendOptions, DecodeOptions, token_cap
from .segments import assign_words, tokens_to_segments
from .speech_times import snap_segments
from .types import Segment, Transcript, Word

__all__ = ["Backend", "DeadlineExceeded"]


class DeadlineExceeded(TimeoutError):
    """``transcribe_batch`` stopped between windows because its deadline passed."""


class Backend(ABC):
    """A loaded model that turns 16 kHz mono float32 arrays into transcripts."""

    kind: str = "?"

    def __init__(self, tokenizer: Any, feature_extractor: Any, model_name: str, opts: BackendOptions) -> None:
        self.tokenizer = tokenizer
        self.feature_extractor = feature_extractor
        self.model_name = model_name
        self.opts = opts
        ids = tokenizer.convert_tokens_to_ids
        self.sot = int(ids("<|startoftranscript|>"))
        self.eot = int(ids("<|endoftext|>"))
        self.no_timestamps = int(ids("<|notimestamps|>"))
        self.startofprev = int(ids("<|startofprev|>"))
        self.transcribe_tok = int(ids("<|transcribe|>"))
        self.translate_tok = int(ids("<|translate|>"))
        self.timestamp_begin = self.no_timestamps + 1
        self.no_speech = self._no_speech_id()
        self.multilingual = bool(self._model_is_multilingual())
        # cumulative, for /healthz and benchmarks: where a replica's time goes
        self.stats: dict[str, float] = {"batches": 0, "windows": 0, "features_s": 0.0, "model_s": 0.0}

    @abstractmethod
    def _model_is_multilingual(self) -> bool: ...

    def _no_speech_id(self) -> int:
        """``<|nospeech|>`` (large-v3) or ``<|nocaptions|>`` (earlier models); -1 if the vocabulary lacks both."""
        unk = getattr(self.tokenizer, "unk_token_id", None)
        for name in ("<|nospeech|>", "<|nocaptions|>"):
            tid = self.tokenizer.convert_tokens_to_ids(name)
            if isinstance(tid, int) and tid >= 0 and tid != unk:
                return int(tid)
        return -1

    @abstractmethod
    def _generate(
        self,
        features: np.ndarray,
        language: str | None,
        prompt_ids: list[int],
        options: DecodeOptions,
        max_new: int,
        temperature: float = 0.0,
    ) -> list[Decoded]:
        """Decode a batch of log-mel windows at ``temperature`` (0: greedy or beam search, else
        the likeliest of ``options.best_of`` samples); ids without prompt and EOT, with statistics."""

    def _align(
        self,
        features: np.ndarray,
        language: str | None,
        options: DecodeOptions,
        texts: list[list[int]],
        seconds: list[float],
    ) -> list[list[dict[str, Any]]] | None:
        """Word alignments (word, tokens, start, end, probability; seconds from the window start)
        of each window's text ids; None when the model cannot align (no alignment heads)."""
        return None

    def _detect(self, features: np.ndarray) -> list[str]:
        """Language codes ("de") for a batch of windows; only called for multilingual models."""
        raise NotImplementedError

    @property
    def device(self) -> str:
        return "cpu"

    @property
    def precision(self) -> str:
        """Number format the model runs in (HF: torch dtype; CT2: compute type)."""
        return "?"

    @property
    def frames(self) -> int:
        """Mel frames per window the encoder takes (3000 = 30 s unless shortened)."""
        return FULL_FRAMES

    @property
    def window_s(self) -> float:
        return self.frames / FRAMES_PER_SECOND

    @property
    def max_target_positions(self) -> int:
        return MAX_TARGET_POSITIONS

    # -- options ------------------------------------------------------------------------------------
    def check_language(self, language: str | None) -> str | None:
        """Normalise the request's language; raise UnsupportedLanguageError for one the model lacks."""
        return normalize_language(language, multilingual=self.multilingual, model_name=self.model_name)

    def _prompt_ids(self, prompt: str | None, hotwords: str | None = None) -> list[int]:
        """``<|startofprev|>`` + hotwords + the prompt's last tokens, at most ``PROMPT_MAX_TOKENS``
        after ``<|startofprev|>`` (hotwords first, as faster-whisper places them)."""
        ids: list[int] = []
        for text in (hotwords, prompt):
            if text and text.strip():
                ids += self.tokenizer.encode(" " + text.strip(), add_special_tokens=False)
        if not ids:
            return []
        return [self.startofprev, *ids[-PROMPT_MAX_TOKENS:]]

    def _task_token(self, task: str) -> int:
        return self.translate_tok if task == "translate" else self.transcribe_tok

    def _decode(self, ids: list[int]) -> str:
        return str(self.tokenizer.decode(ids, skip_special_tokens=True))

    # -- features -----------------------------------------------------------------------------------
    def _feature_device(self) -> str:
        """Where the log-mel spectrogram is computed.

        On the CPU, Transformers' extractor costs ~10-25 ms per 30 s window and thread (measured
        on the 2-core dev VM), and Serve replicas run with one intra-op thread, so a batch of 32
        spends most of its time there; next to a GPU model, the same STFT on the GPU is ~free.
        """
        want = self.opts.feature_device
        if want == "auto":
            want = "cuda" if self.device.startswith("cuda") else "cpu"
        if want.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                return "cpu"
        return want

    def _features(self, bank: FeatureBank, idx: Sequence[int], vad: bool = False) -> np.ndarray:
        t0 = time.perf_counter()
        feats = bank.features(
            self.feature_extractor, self.frames, idx, device=self._feature_device(), vad=vad
        )
        out = np.ascontiguousarray(np.stack(feats), dtype=np.float32)
        self.stats["features_s"] += time.perf_counter() - t0
        return out

    # -- the decode loop ----------------------------------------------------------------------------
    def transcribe_batch(
        self,
        audios: Sequence[np.ndarray],
        language: str | None = None,
        prompt: str | None = None,
        timestamps: bool = False,
        deadline: float | None = None,
        levels: Sequence[np.ndarray | None] | None = None,
        **changes: Any,
    ) -> list[Transcript]:
        """Transcribe 16 kHz mono float32 arrays of any length; one Transcript per input, in order.

        What the server's ``Model`` deployment calls: the backend's default ``DecodeOptions``
        (``BackendOptions.decode``) with this request's language, prompt and timestamps, any
        other ``DecodeOptions`` field in ``changes`` (task, temperatures, word_timestamps, ...),
        and ``levels``: a stereo input's channel power (``FeatureBank.levels``)."""
        opts = self.opts.decode
        options = replace(
            opts,
            language=language if language is not None else opts.language,
            prompt=prompt if prompt is not None else opts.prompt,
            timestamps=timestamps or bool(changes.get("word_timestamps")),
            **changes,
        )
        bank = FeatureBank(audios, cache=False, levels=levels)
        return self.transcribe_bank(bank, options, deadline=deadline)

    def transcribe_bank(
        self,
        bank: FeatureBank,
        options: DecodeOptions | None = None,
        *,
        deadline: float | None = None,
        progress: str | None = None,
    ) -> list[Transcript]:
        """Transcribe every clip of ``bank``; one Transcript per clip, in order.

        Multilingual models without ``options.language`` detect it once per file, on its first
        window. ``deadline`` (``time.monotonic()`` seconds): stop between window batches once
        it has passed and raise DeadlineExceeded, so an abandoned hour-long upload frees the
        replica. ``progress``: a label for a progress bar on a terminal (tqdm; silent otherwise).
        """
        options = options or self.opts.decode
        lang = self.check_language(options.language)
        check_task(options.task, multilingual=self.multilingual, model_name=self.model_name)
        prompt_ids = self._prompt_ids(options.prompt, options.hotwords)
        pieces = bank.pieces(self.frames, vad=options.vad)
        skipped = self._gated(bank, pieces, options)
        caps = [
            token_cap(
                p.seconds,
                prompt_len=len(prompt_ids),
                max_new_tokens=options.max_new_tokens,
                positions=self.max_target_positions,
            )
            for p in pieces
        ]
        bs = self.opts.batch_size
        file_langs: list[str | None] = [lang] * bank.n_clips
        if self.multilingual and lang is None and pieces:
            first: dict[int, int] = {}  # the first window of each file that will be decoded
            for k, p in enumerate(pieces):
                if k not in skipped:
                    first.setdefault(p.clip, k)
            firsts = list(first.values())
            detected: list[str] = []
            for b in range(0, len(firsts), bs):
                detected.extend(self._detect(self._features(bank, firsts[b : b + bs], options.vad)))
            for clip, code in zip(first, detected, strict=True):
                file_langs[clip] = code
        generated = self._run_windows(
            bank, pieces, caps, file_langs, prompt_ids, options, deadline, progress, skipped
        )
        return self._assemble(bank, pieces, generated, file_langs, options)

    def _run_windows(
        self,
        bank: FeatureBank,
        pieces: list[Any],
        caps: list[int],
        file_langs: list[str | None],
        prompt_ids: list[int],
        options: DecodeOptions,
        deadline: float | None,
        progress: str | None,
        skipped: set[int],
    ) -> dict[int, Decoded]:
        """Decoded windows: windows sharing a language batched together, shortest first;
        ``skipped`` windows (the gate's) generate nothing."""
        from tqdm.auto import tqdm

        bs = self.opts.batch_size
        generated: dict[int, Decoded] = {k: Decoded([]) for k in skipped}
        total = len(pieces) - len(skipped)
        bar = tqdm(total=total, desc=progress, unit="window", disable=None if progress else True)
        try:
            for code in dict.fromkeys(file_langs):
                todo = [k for k, p in enumerate(pieces) if file_langs[p.clip] == code and k not in skipped]
                todo.sort(key=lambda k: len(pieces[k].audio))  # similar caps and lengths per batch
                for b in range(0, len(todo), bs):
                    if deadline is not None and time.monotonic() > deadline:
                        done = len(generated) - len(skipped)
                        raise DeadlineExceeded(f"stopped after {done} of {total} windows")
                    idx = todo[b : b + bs]
                    feats = self._features(bank, idx, options.vad)
                    t0 = time.perf_counter()
                    out = self._decode_windows(feats, code, prompt_ids, options, [caps[k] for k in idx])
                    if options.word_timestamps:
                        self._add_words(feats, code, options, out, [pieces[k].seconds for k in idx])
                    self.stats["model_s"] += time.perf_counter() - t0
                    self.stats["batches"] += 1
                    self.stats["windows"] += len(idx)
                    generated.update(zip(idx, out, strict=True))
                    bar.update(len(idx))
        finally:
            bar.close()
        return generated

    def _decode_windows(
        self,
        feats: np.ndarray,
        code: str | None,
        prompt_ids: list[int],
        options: DecodeOptions,
        caps: list[int],
    ) -> list[Decoded]:
        """One batch at ``options.temperatures[0]``, then the failing windows at each next
        temperature (``fallback``); every window cut to its own cap (= decoding it alone)."""

        def run(rows: list[int], temperature: float) -> list[Decoded]:
            sub = feats if len(rows) == len(caps) else feats[rows]
            outs = self._generate(sub, code, prompt_ids, options, max(caps[i] for i in rows), temperature)
            for i, d in zip(rows, outs, strict=True):
                d.tokens = d.tokens[: caps[i]]
                d.temperature = temperature
                d.compression_ratio = compression_ratio(self._decode([t for t in d.tokens if t < self.eot]))
            return outs

        temps = options.temperatures
        rows = list(range(len(caps)))
        first = run(rows, temps[0])
        tried: dict[int, list[Decoded]] = {i: [d] for i, d in zip(rows, first, strict=True)}
        pending = [i for i in rows if needs_fallback(first[i], options)] if len(temps) > 1 else []
        for t in temps[1:]:
            if not pending:
                break
            for i, d in zip(pending, run(pending, t), strict=True):
                tried[i].append(d)
            pending = [i for i in pending if needs_fallback(tried[i][-1], options)]
        return [pick(tried[i], options) if i in pending else tried[i][-1] for i in rows]

    def _add_words(
        self,
        feats: np.ndarray,
        code: str | None,
        options: DecodeOptions,
        out: list[Decoded],
        secs: list[float],
    ) -> None:
        texts = [[t for t in d.tokens if t < self.eot] for d in out]
        rows = [i for i, t in enumerate(texts) if t]
        if not rows:
            return
        aligned = self._align(feats[rows], code, options, [texts[i] for i in rows], [secs[i] for i in rows])
        if aligned is None:
            return
        for i, words in zip(rows, aligned, strict=True):
            out[i].words = [w for w in words if w["start"] <= secs[i] + 0.5]

    @staticmethod
    def _gated(bank: FeatureBank, pieces: list[Any], options: DecodeOptions) -> set[int]:
        """Windows the options' ``SpeechGate`` keeps from the model (none without a gate)."""
        gate = options.gate
        if gate is None:
            return set()
        short = {i for i, a in enumerate(bank.audios) if gate.too_short(a)}
        return {k for k, p in enumerate(pieces) if p.clip in short or not gate.passes(p.audio)}

    def _assemble(
        self,
        bank: FeatureBank,
        pieces: list[Any],
        generated: dict[int, Decoded],
        file_langs: list[str | None],
        options: DecodeOptions,
    ) -> list[Transcript]:
        per_file: list[list[Segment]] = [[] for _ in range(bank.n_clips)]
        for k, piece in enumerate(pieces):
            dec = generated[k]
            if options.skip_silence and is_silent(dec, options):
                continue  # OpenAI's no-speech rule: a silent window's text would be invented
            ids = dec.tokens
            start, win_s = piece.start, piece.seconds
            if options.timestamps:
                parts = tokens_to_segments(
                    ids,
                    timestamp_begin=self.timestamp_begin,
                    eot=self.eot,
                    offset=start,
                    window_s=win_s,
                    decode=self._decode,
                )
            else:
                text_ids = [int(t) for t in ids if 0 <= int(t) < self.eot]
                text = self._decode(text_ids)
                parts = [(start, start + win_s, text, text_ids)] if text.strip() else []
            words = assign_words([p[3] for p in parts], dec.words) if options.word_timestamps else None
            for j, (s0, e0, text, toks) in enumerate(parts):
                segs = per_file[piece.clip]
                seg = Segment(
                    id=len(segs),
                    start=s0,
                    end=e0,
                    text=text,
                    tokens=toks,
                    seek=start,
                    avg_logprob=round(dec.avg_logprob, 6),
                    compression_ratio=round(dec.compression_ratio, 6),
                    no_speech_prob=round(dec.no_speech_prob, 6),
                    temperature=dec.temperature,
                )
                if words is not None:
                    seg.words = [
                        Word(  # times inside the window: DTW may run into its padding
                            w["word"],
                            round(start + min(w["start"], win_s), 3),
                            round(start + min(w["end"], win_s), 3),
                            w["probability"],
                            [int(x) for x in w.get("tokens", ())],
                        )
                        for w in words[j]
                    ]
                segs.append(seg)
        if options.timestamps and options.speech_times:
            per_file = [
                snap_segments(
                    segs, bank.audios[i], split_pause_s=options.split_pause_s, levels=bank.levels[i]
                )
                for i, segs in enumerate(per_file)
            ]
        return [
            Transcript(
                text=" ".join(s.text.strip() for s in segs).strip(),
                segments=segs,
                language=language_name(file_langs[i]),
                duration=len(bank.audios[i]) / SAMPLE_RATE,
                task=options.task,
            )
            for i, segs in enumerate(per_file)
        ]

    def warmup(self) -> None:
        """One tiny decode so the first request does not pay for lazy initialisation."""
        bank = FeatureBank([np.zeros(SAMPLE_RATE // 2, dtype=np.float32)], cache=False)
        # gate=None: the gate would skip this silent clip and leave the model cold
        warm = replace(
            self.opts.decode, max_new_tokens=2, language=None, prompt=None, gate=None, temperatures=(0.0,)
        )
        self.transcribe_bank(bank, warm)
