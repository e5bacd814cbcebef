"""Two inference backends behind one ``transcribe_batch`` interface.

Why two: the Transformers model (torch, bf16/fp16 on GPU, fp32 on CPU, SDPA) is what
training produces and needs no export step; CTranslate2 (int8 on CPU, float16 on GPU)
is several times faster for the same greedy transcript. The server, the benchmark and the
tests only see ``Backend.transcribe_batch(audios, language, prompt, timestamps)``.

Long audio: Whisper sees 30 s windows. Files longer than that are cut on silence into
<= 30 s windows, every window of every file in a batch is decoded together (so a
10-minute call fills batches instead of running 20 sequential passes) and the windows'
segments are shifted by their start time. Timestamps come from Whisper's own timestamp
tokens, parsed the same way for both backends; without them each window is one segment.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from whisper_tune.errors import ModelNotFoundError, UserError
from whisper_tune.serve.audio import SAMPLE_RATE, split_long_audio
from whisper_tune.serve.types import Segment, Transcript

__all__ = [
    "Backend",
    "BackendOptions",
    "DeadlineExceeded",
    "CT2Backend",
    "HFBackend",
    "UnsupportedLanguageError",
    "load_backend",
    "resolve_model_dir",
    "tokens_to_segments",
]

log = logging.getLogger(__name__)

WINDOW_S = 30.0
TIME_PRECISION = 0.02
MAX_TARGET_POSITIONS = 448


class UnsupportedLanguageError(UserError, ValueError):
    """The requested language is not one the model can transcribe."""


class DeadlineExceeded(TimeoutError):
    """``transcribe_batch`` stopped between windows because its deadline passed."""


@dataclass
class BackendOptions:
    """How to run a backend. ``auto`` picks the GPU when one is visible."""

    device: str = "auto"  # auto | cpu | cuda | cuda:N
    dtype: str = "auto"  # HF: auto | float32 | float16 | bfloat16
    compute_type: str = (
        "auto"  # CT2: auto (int8 on CPU, float16 on GPU) | int8 | int8_float16 | float16 | float32
    )
    batch_size: int = 8  # windows per forward pass
    max_new_tokens: int | None = None  # cap on generated tokens per window (None: the model's limit)
    cpu_threads: int = 0  # CT2 intra-op threads (0: library default)
    feature_device: str = "auto"  # log-mel on: auto (the GPU when the model runs on one) | cpu | cuda


def tokens_to_segments(
    ids: Sequence[int],
    *,
    timestamp_begin: int,
    eot: int,
    offset: float,
    window_s: float,
    decode: Any,
) -> list[tuple[float, float, str, list[int]]]:
    """Cut one window's generated ids into ``(start, end, text, tokens)`` with absolute times.

    Whisper emits ``<|t0|> text <|t1|>`` pairs; a window without timestamp tokens (or a
    trailing text run without a closing one) extends to the window's end. Times are
    clamped into the window and made non-decreasing.
    """
    raw: list[tuple[float | None, float | None, list[int]]] = []
    cur: list[int] = []
    cur_start: float | None = None
    last_end = 0.0
    for t in ids:
        t = int(t)
        if t >= timestamp_begin:
            ts = (t - timestamp_begin) * TIME_PRECISION
            if cur:
                raw.append((cur_start if cur_start is not None else last_end, ts, cur))
                cur = []
                cur_start = None
                last_end = ts
            else:
                cur_start = ts
        elif t >= eot or t < 0:
            continue  # special tokens, padding
        else:
            cur.append(t)
    if cur:
        raw.append((cur_start if cur_start is not None else last_end, None, cur))
    out: list[tuple[float, float, str, list[int]]] = []
    prev_end = 0.0
    for start, end, toks in raw:
        text = decode(toks)
        if not text.strip():
            continue
        s = min(max(start or 0.0, prev_end), window_s)
        e = window_s if end is None else min(max(end, s), window_s)
        out.append((offset + s, offset + e, text, toks))
        prev_end = e
    return out


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
        self.timestamp_begin = self.no_timestamps + 1
        self.multilingual = bool(self._model_is_multilingual())
        # cumulative, for /healthz and benchmarks: where a replica's time goes
        self.stats: dict[str, float] = {"batches": 0, "windows": 0, "features_s": 0.0, "model_s": 0.0}

    @abstractmethod
    def _model_is_multilingual(self) -> bool: ...

    @abstractmethod
    def _generate(
        self,
        features: np.ndarray,
        language: str | None,
        prompt_ids: list[int],
        timestamps: bool,
        max_new: int,
    ) -> list[list[int]]:
        """Greedy-decode a batch of log-mel windows; return the generated ids (no prompt)."""

    @property
    def device(self) -> str:
        return "cpu"

    @property
    def precision(self) -> str:
        """Number format the model runs in (HF: torch dtype; CT2: compute type)."""
        return "?"

    # -- shared logic -------------------------------------------------------------------------------
    def check_language(self, language: str | None) -> str | None:
        """Normalise the request's language; raise UnsupportedLanguageError for one the model lacks."""
        return normalize_language(language, multilingual=self.multilingual, model_name=self.model_name)

    def _prompt_ids(self, prompt: str | None) -> list[int]:
        if not prompt or not prompt.strip():
            return []
        ids = self.tokenizer.encode(" " + prompt.strip(), add_special_tokens=False)
        return [self.startofprev, *ids[-(MAX_TARGET_POSITIONS // 2 - 1) :]]

    def _max_new(self, prompt_len: int) -> int:
        # OpenAI's decoder samples at most n_text_ctx // 2 = 224 tokens per window; both backends follow it.
        room = min(MAX_TARGET_POSITIONS // 2, MAX_TARGET_POSITIONS - prompt_len - 4)
        cap = self.opts.max_new_tokens or room
        return max(1, min(cap, room))

    def _decode(self, ids: list[int]) -> str:
        return str(self.tokenizer.decode(ids, skip_special_tokens=True))

    def _detect(self, features: np.ndarray) -> list[str]:
        """Language codes ("de") for a batch of windows; only called for multilingual models."""
        raise NotImplementedError

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

    def _features(self, pieces: list[np.ndarray]) -> np.ndarray:
        t0 = time.perf_counter()
        kwargs: dict[str, Any] = {}
        device = self._feature_device()
        if device != "cpu":
            kwargs["device"] = device
        feats = self.feature_extractor(
            pieces, sampling_rate=SAMPLE_RATE, return_tensors="np", **kwargs
        ).input_features
        out = np.ascontiguousarray(feats, dtype=np.float32)
        self.stats["features_s"] += time.perf_counter() - t0
        return out

    def transcribe_batch(
        self,
        audios: Sequence[np.ndarray],
        language: str | None = None,
        prompt: str | None = None,
        timestamps: bool = False,
        deadline: float | None = None,
    ) -> list[Transcript]:
        """Transcribe 16 kHz mono float32 arrays of any length; one Transcript per input, in order.

        Multilingual models without ``language`` detect it once per file, on its first window.
        ``deadline`` (``time.monotonic()`` seconds): stop between window batches once it has
        passed and raise DeadlineExceeded, so an abandoned hour-long upload frees the replica.
        """
        lang = self.check_language(language)
        prompt_ids = self._prompt_ids(prompt)
        max_new = self._max_new(len(prompt_ids))
        per_file_windows: list[list[tuple[float, np.ndarray]]] = []
        for i, audio in enumerate(audios):
            a = np.asarray(audio, dtype=np.float32)
            if a.ndim != 1:
                raise ValueError(f"audio {i}: expected a 1-D mono array, got shape {a.shape}")
            per_file_windows.append(split_long_audio(a, SAMPLE_RATE, WINDOW_S))
        bs = max(1, self.opts.batch_size)
        file_langs: list[str | None] = [lang] * len(audios)
        if self.multilingual and lang is None:
            firsts = [w[0][1] for w in per_file_windows]
            file_langs = []
            for b in range(0, len(firsts), bs):
                file_langs.extend(self._detect(self._features(firsts[b : b + bs])))
        # (file, start, samples); windows sharing a language are decoded together, in batches
        windows = [(i, start, piece) for i, ws in enumerate(per_file_windows) for start, piece in ws]
        generated: dict[int, list[int]] = {}
        for code in dict.fromkeys(file_langs):
            todo = [k for k, w in enumerate(windows) if file_langs[w[0]] == code]
            for b in range(0, len(todo), bs):
                if deadline is not None and time.monotonic() > deadline:
                    raise DeadlineExceeded(f"stopped after {len(generated)} of {len(windows)} windows")
                idx = todo[b : b + bs]
                feats = self._features([windows[k][2] for k in idx])
                t0 = time.perf_counter()
                out = self._generate(feats, code, prompt_ids, timestamps, max_new)
                self.stats["model_s"] += time.perf_counter() - t0
                self.stats["batches"] += 1
                self.stats["windows"] += len(idx)
                generated.update(zip(idx, out, strict=True))
        per_file: list[list[Segment]] = [[] for _ in audios]
        for k, (i, start, piece) in enumerate(windows):
            ids = generated[k]
            win_s = len(piece) / SAMPLE_RATE
            if timestamps:
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
            for s0, e0, text, toks in parts:
                per_file[i].append(
                    Segment(id=len(per_file[i]), start=s0, end=e0, text=text, tokens=toks, seek=start)
                )
        from transformers.models.whisper.tokenization_whisper import LANGUAGES

        return [
            Transcript(
                text=" ".join(s.text.strip() for s in segs).strip(),
                segments=segs,
                language=LANGUAGES.get(file_langs[i] or "en", file_langs[i] or "english"),
                duration=len(audios[i]) / SAMPLE_RATE,
            )
            for i, segs in enumerate(per_file)
        ]

    def warmup(self) -> None:
        """One tiny decode so the first request does not pay for lazy initialisation."""
        saved = self.opts.max_new_tokens
        self.opts.max_new_tokens = 2
        try:
            self.transcribe_batch([np.zeros(SAMPLE_RATE // 2, dtype=np.float32)])
        finally:
            self.opts.max_new_tokens = saved


def normalize_language(language: str | None, *, multilingual: bool, model_name: str) -> str | None:
    """``"English"``/``"en"``/``""`` -> ``"en"``/``"en"``/``None``; UnsupportedLanguageError when the
    model cannot transcribe it (any non-English language on an ``.en`` model, an unknown name)."""
    lang = (language or "").strip().lower() or None
    if lang is None:
        return None
    if not multilingual:
        if lang not in ("en", "english"):
            raise UnsupportedLanguageError(
                f"model {model_name} is English-only; language={language!r} is not supported"
            )
        return "en"
    from transformers.models.whisper.tokenization_whisper import LANGUAGES, TO_LANGUAGE_CODE

    code = TO_LANGUAGE_CODE.get(lang, lang)
    if code not in LANGUAGES:
        raise UnsupportedLanguageError(f"unknown language {language!r} (use an ISO 639-1 code such as 'en')")
    return code


def _probe_ct2_cuda(model: Any, compute_type: str) -> None:
    """Run one encoder pass so a missing CUDA library fails at start-up, with advice.

    CTranslate2 loads cuBLAS lazily at the first matrix product; PyPI's 4.x wheels are
    built for CUDA 12 (``libcublas.so.12``), so on a CUDA-13-only machine the first request
    would fail instead of the deployment.
    """
    import ctranslate2

    x = ctranslate2.StorageView.from_array(np.zeros((1, int(model.n_mels), 3000), dtype=np.float32))
    try:
        model.encode(x, to_cpu=True)
    except RuntimeError as e:
        raise UserError(
            f"CTranslate2 {ctranslate2.__version__} cannot run on this GPU ({e}; compute type "
            f"{compute_type}). PyPI's CTranslate2 wheels need CUDA 12's cuBLAS: install "
            "nvidia-cublas-cu12 and put its lib/ folder on LD_LIBRARY_PATH, or serve with "
            "--backend hf, or run CTranslate2 on the CPU (--device cpu)."
        ) from e


def _auto_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class _QuietLengthClash(logging.Filter):
    """Drops Transformers' per-call "Both `max_new_tokens` and `max_length` seem to have been set".

    Whisper's generation config carries ``max_length=448`` and we pass ``max_new_tokens``
    (OpenAI's 224-token cap) on purpose; the warning repeated on every batch of a server.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "seem to have been set" not in record.getMessage()


def _quiet_generation_warnings() -> None:
    gen_log = logging.getLogger("transformers.generation.utils")
    if not any(isinstance(f, _QuietLengthClash) for f in gen_log.filters):
        gen_log.addFilter(_QuietLengthClash())


class HFBackend(Backend):
    """Transformers ``WhisperForConditionalGeneration`` (SDPA attention), greedy decoding."""

    kind = "hf"

    def __init__(
        self, model: Any, processor: Any, model_name: str, opts: BackendOptions | None = None
    ) -> None:
        self.model = model.eval()
        _quiet_generation_warnings()
        gc = self.model.generation_config
        tok = processor.tokenizer
        # Some saved generation configs (random-init, converted ones) lack what timestamp decoding needs.
        if getattr(gc, "no_timestamps_token_id", None) is None:
            gc.no_timestamps_token_id = tok.convert_tokens_to_ids("<|notimestamps|>")
        if getattr(gc, "max_initial_timestamp_index", None) is None:
            gc.max_initial_timestamp_index = 50
        super().__init__(tok, processor.feature_extractor, model_name, opts or BackendOptions())
        if getattr(gc, "is_multilingual", None) is None:
            gc.is_multilingual = self.multilingual

    def _model_is_multilingual(self) -> bool:
        gc = self.model.generation_config
        flag = getattr(gc, "is_multilingual", None)
        if flag is not None:
            return bool(flag)
        return int(self.model.config.vocab_size) >= 51865

    @property
    def device(self) -> str:
        return str(next(self.model.parameters()).device)

    @property
    def precision(self) -> str:
        return str(next(self.model.parameters()).dtype).removeprefix("torch.")

    @classmethod
    def from_spec(
        cls, spec: str, model_name: str | None = None, opts: BackendOptions | None = None
    ) -> HFBackend:
        import torch

        from whisper_tune.models import load_model

        opts = opts or BackendOptions()
        device = _auto_device(opts.device)
        dtype: Any = opts.dtype
        if dtype != "auto":
            dtype = getattr(torch, dtype)
        model, processor = load_model(spec, dtype=dtype, device=device, attn_implementation="sdpa")
        return cls(model, processor, model_name or spec, opts)

    def _on_model(self, features: np.ndarray) -> Any:
        """Log-mel features as a tensor on the model's device, in its dtype."""
        import torch

        p = next(self.model.parameters())
        return torch.from_numpy(features).to(device=p.device, dtype=p.dtype)

    def _detect(self, features: np.ndarray) -> list[str]:
        import torch

        x = self._on_model(features)
        with torch.inference_mode():
            ids = self.model.detect_language(x)
        return [str(t).strip("<|>") for t in self.tokenizer.convert_ids_to_tokens(ids.reshape(-1).tolist())]

    def _generate(
        self,
        features: np.ndarray,
        language: str | None,
        prompt_ids: list[int],
        timestamps: bool,
        max_new: int,
    ) -> list[list[int]]:
        import torch

        x = self._on_model(features)
        kwargs: dict[str, Any] = {
            "max_new_tokens": max_new,
            "return_timestamps": timestamps,
            "num_beams": 1,
            "do_sample": False,
        }
        if prompt_ids:
            kwargs["prompt_ids"] = torch.tensor(prompt_ids, device=x.device)
        if self.multilingual:
            kwargs["task"] = "transcribe"
            if language:
                kwargs["language"] = language
        with torch.inference_mode():
            out = self.model.generate(x, **kwargs)
        seqs = out["sequences"] if isinstance(out, dict) else out
        result = []
        for row in seqs.tolist():
            if prompt_ids and self.sot in row:  # older versions return the prompt too
                row = row[row.index(self.sot) + 1 :]
            result.append([int(t) for t in row if t != self.eot])
        return result


class CT2Backend(Backend):
    """CTranslate2 ``models.Whisper`` over an exported model directory, greedy decoding."""

    kind = "ct2"

    def __init__(
        self, ct2_dir: str | Path, model_name: str | None = None, opts: BackendOptions | None = None
    ) -> None:
        import ctranslate2

        from whisper_tune.models.random_init import make_processor

        opts = opts or BackendOptions()
        path = Path(ct2_dir)
        tok_file = path / "tokenizer.json"
        if not tok_file.is_file():
            raise ModelNotFoundError(f"{path}: CTranslate2 model dir has no tokenizer.json")
        if opts.device == "auto":
            device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
        else:
            device = opts.device.split(":")[0]
        compute_type = opts.compute_type
        if compute_type == "auto":
            compute_type = "float16" if device == "cuda" else "int8"
        self._device = device
        self.compute_type = compute_type
        self.ct2_dir = path
        self.model = ctranslate2.models.Whisper(
            str(path), device=device, compute_type=compute_type, intra_threads=opts.cpu_threads
        )
        if device == "cuda":
            _probe_ct2_cuda(self.model, compute_type)
        processor = make_processor(tok_file, n_mels=int(self.model.n_mels))
        super().__init__(processor.tokenizer, processor.feature_extractor, model_name or str(path), opts)

    def _model_is_multilingual(self) -> bool:
        return bool(self.model.is_multilingual)

    @property
    def device(self) -> str:
        return self._device

    @property
    def precision(self) -> str:
        return self.compute_type

    def _detect(self, features: np.ndarray) -> list[str]:
        import ctranslate2

        detected = self.model.detect_language(ctranslate2.StorageView.from_array(features))
        return [d[0][0].strip("<|>") for d in detected]

    def _generate(
        self,
        features: np.ndarray,
        language: str | None,
        prompt_ids: list[int],
        timestamps: bool,
        max_new: int,
    ) -> list[list[int]]:
        import ctranslate2

        sv = ctranslate2.StorageView.from_array(features)
        prompts: list[list[int]] = []
        if self.multilingual and not language:
            language = self._detect(features)[0]  # transcribe_batch detects per file; this is a fallback
        for _ in range(features.shape[0]):
            p = list(prompt_ids) + [self.sot]
            if self.multilingual:
                p += [int(self.tokenizer.convert_tokens_to_ids(f"<|{language}|>")), self.transcribe_tok]
            if not timestamps:
                p.append(self.no_timestamps)
            prompts.append(p)
        results = self.model.generate(
            sv,
            prompts,
            beam_size=1,
            # Measured with CTranslate2 4.8.5: Whisper.generate emits at most max_length // 2 tokens
            # (whatever the prompt length), so twice the budget gives the same cap as Transformers.
            max_length=2 * max_new,
            suppress_blank=True,
            suppress_tokens=[-1],
            max_initial_timestamp_index=50,
        )
        return [[int(t) for t in r.sequences_ids[0] if t != self.eot] for r in results]


def resolve_model_dir(spec: str) -> str:
    """A run dir means its ``best/``; a URI is copied locally first (``runs.resolve_model_spec``);
    anything else is passed on unchanged."""
    from whisper_tune.runs import resolve_model_spec

    return resolve_model_spec(spec)


def _cache_dir() -> Path:
    return Path(os.environ.get("WHISPER_TUNE_CACHE", Path.home() / ".cache" / "whisper-tune"))


def _ct2_dir_for(spec: str) -> Path:
    """The CTranslate2 copy of ``spec``: as is, its ``ct2/`` subdir, or an export cached by content stamp."""
    from whisper_tune.models import ensure_hf_dir, export_ct2, is_ct2_dir

    p = Path(spec).expanduser()
    if p.is_dir() and is_ct2_dir(p):
        return p
    if p.is_dir() and is_ct2_dir(p / "ct2"):
        return p / "ct2"
    hf_dir = ensure_hf_dir(spec)
    hp = Path(hf_dir)
    if not hp.is_dir():
        raise ModelNotFoundError(f"{spec}: no local model directory to export to CTranslate2 (got {hf_dir})")
    stamp = "|".join(
        f"{f.name}:{f.stat().st_size}:{int(f.stat().st_mtime)}" for f in sorted(hp.iterdir()) if f.is_file()
    )
    key = hashlib.sha1(f"{hp.resolve()}|{stamp}".encode()).hexdigest()[:16]
    out = _cache_dir() / "serve-ct2" / key
    if not is_ct2_dir(out):
        log.info("exporting %s to CTranslate2 at %s", hf_dir, out)
        export_ct2(hp, out)  # writes atomically
    return out


def load_backend(
    spec: str, kind: str = "hf", opts: BackendOptions | None = None, model_name: str | None = None
) -> Backend:
    """Load ``spec`` (bundled name, HF dir, run dir, CTranslate2 dir) into the ``kind`` backend."""
    opts = opts or BackendOptions()
    src = resolve_model_dir(spec)
    name = model_name or _display_name(spec)
    if kind == "hf":
        return HFBackend.from_spec(src, name, opts)
    if kind == "ct2":
        return CT2Backend(_ct2_dir_for(src), name, opts)
    raise UserError(f"--backend must be 'hf' or 'ct2', got {kind!r}")


def _display_name(spec: str) -> str:
    p = Path(spec).expanduser()
    if p.exists():
        parts = [x for x in p.resolve().parts if x]
        if parts and parts[-1] in ("best", "ct2") and len(parts) > 1:
            return "/".join(parts[-2:])
        return parts[-1] if parts else spec
    return spec
