"""The CTranslate2 backend: faster-whisper's ``WhisperModel`` over an exported model directory.

Why its own module: it is what the server runs by default on CPUs (int8) and is several
times faster than Transformers; evaluation scores that same int8/float16 artifact
(``--backend ct2``). The model is loaded by faster-whisper (``faster_whisper.WhisperModel``:
the project's ``best/ct2`` dirs load unchanged), which also gives word alignment
(``WhisperModel.find_alignment``: the cross-attention alignment heads + DTW, with
faster-whisper's punctuation merging) and the Silero VAD (``inference.vad``).

Why the windows are still decoded here, with ``ctranslate2.models.Whisper.generate`` on the
model faster-whisper loaded, rather than by ``WhisperModel.transcribe`` or
``BatchedInferencePipeline.transcribe``: both take one file per call, so the windows of
different requests (or evaluation clips) cannot share a forward pass, and on the guard set's
24 short clips (tiny.en int8, 2-core CPU) they measured slower and no more exact than this
loop (docs/serve.md "faster-whisper"): 7.6-7.8 against 8.3 audio s/s, WER 1.71 % against
1.14 %. The per-window statistics are faster-whisper's (``return_scores``,
``return_no_speech_prob``, the same mean log-probability), the fallback and no-speech rules
OpenAI's (``inference.fallback``), shared with the Transformers backend.

It carries the CTranslate2-specific details too: the prompt is built by hand, ``max_length``
counts differently, and a GPU without CUDA 12's cuBLAS must fail at start-up with advice
rather than on the first request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from whisper_tune.errors import ModelNotFoundError, UserError

from .backend import Backend
from .device import resolve_device, resolve_precision
from .fallback import Decoded
from .options import BackendOptions, DecodeOptions
from .segments import APPEND_PUNCTUATIONS, PREPEND_PUNCTUATIONS

__all__ = ["CT2Backend"]


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


class CT2Backend(Backend):
    """faster-whisper's ``WhisperModel`` (CTranslate2) over an exported model directory."""

    kind = "ct2"

    def __init__(
        self, ct2_dir: str | Path, model_name: str | None = None, opts: BackendOptions | None = None
    ) -> None:
        from faster_whisper import WhisperModel

        from whisper_tune.models.processor import build_processor_from_tokenizer

        opts = opts or BackendOptions()
        path = Path(ct2_dir)
        tok_file = path / "tokenizer.json"
        if not tok_file.is_file():
            raise ModelNotFoundError(f"{path}: CTranslate2 model dir has no tokenizer.json")
        device = resolve_device(opts.device, "ct2")
        kind, _, index = device.partition(":")
        compute_type = resolve_precision(opts.compute_type, device, "ct2")
        self._device = kind
        self.compute_type = compute_type
        self.ct2_dir = path
        self.whisper = WhisperModel(
            str(path),
            device=kind,
            device_index=int(index or 0),
            compute_type=compute_type,
            cpu_threads=opts.cpu_threads,
        )
        self.model = self.whisper.model  # the ctranslate2.models.Whisper faster-whisper loaded
        if kind == "cuda":
            _probe_ct2_cuda(self.model, compute_type)
        processor = build_processor_from_tokenizer(tok_file, n_mels=int(self.model.n_mels))
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
        options: DecodeOptions,
        max_new: int,
        temperature: float = 0.0,
    ) -> list[Decoded]:
        import ctranslate2

        sv = ctranslate2.StorageView.from_array(np.ascontiguousarray(features))
        prompts: list[list[int]] = []
        if self.multilingual and not language:
            language = self._detect(features)[0]  # transcribe_bank detects per file; this is a fallback
        for _ in range(features.shape[0]):
            p = list(prompt_ids) + [self.sot]
            if self.multilingual:
                lang_tok = int(self.tokenizer.convert_tokens_to_ids(f"<|{language}|>"))
                p += [lang_tok, self._task_token(options.task)]
            if not options.timestamps:
                p.append(self.no_timestamps)
            prompts.append(p)
        if temperature > 0:  # faster-whisper's sampling: best_of hypotheses, no top-k
            how: dict[str, Any] = {
                "beam_size": 1,
                "num_hypotheses": options.best_of,
                "sampling_topk": 0,
                "sampling_temperature": temperature,
            }
        else:
            how = {"beam_size": options.beams}
        results = self.model.generate(
            sv,
            prompts,
            # Measured with CTranslate2 4.8.5: Whisper.generate emits at most max_length // 2 tokens
            # (whatever the prompt length), so twice the budget gives the same cap as Transformers.
            max_length=2 * max_new,
            suppress_blank=True,
            suppress_tokens=[-1],
            max_initial_timestamp_index=50,
            return_scores=True,
            return_no_speech_prob=True,
            **how,
        )
        out = []
        for r in results:
            seq = [int(t) for t in r.sequences_ids[0]]
            # CTranslate2's score is the sum of log-probabilities / length (length_penalty 1);
            # faster-whisper's (and OpenAI's) mean counts the end-of-text token too: / (len + 1)
            n = len(seq)
            avg = float(r.scores[0]) * n / (n + 1) if r.scores else 0.0
            out.append(Decoded([t for t in seq if t != self.eot], avg, float(r.no_speech_prob)))
        return out

    def _align(
        self,
        features: np.ndarray,
        language: str | None,
        options: DecodeOptions,
        texts: list[list[int]],
        seconds: list[float],
    ) -> list[list[dict[str, Any]]] | None:
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import merge_punctuations

        fw = self.whisper
        tok = Tokenizer(fw.hf_tokenizer, self.multilingual, task=options.task, language=language or "en")
        frames = [max(1, min(self.frames, int(round(s * 100)))) for s in seconds]
        aligned = fw.find_alignment(tok, texts, fw.encode(np.ascontiguousarray(features)), frames)
        for words in aligned:
            merge_punctuations(words, PREPEND_PUNCTUATIONS, APPEND_PUNCTUATIONS)
            for w in words:
                w["start"], w["end"] = float(w["start"]), float(w["end"])
                w["probability"] = round(float(w["probability"]), 4)
        return aligned
