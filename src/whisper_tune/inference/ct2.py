"""The CTranslate2 backend: ``ctranslate2.models.Whisper`` over an exported model directory.

Why its own module: it is what the server runs by default on CPUs (int8) and is several
times faster than Transformers; evaluation can now score that same int8/float16 artifact
(``--backend ct2``) instead of a Transformers stand-in. It carries the CTranslate2-specific
details: the prompt is built by hand, ``max_length`` counts differently, and a GPU without
CUDA 12's cuBLAS must fail at start-up with advice rather than on the first request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from whisper_tune.errors import ModelNotFoundError, UserError

from .backend import Backend
from .device import resolve_device, resolve_precision
from .options import BackendOptions, DecodeOptions

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
    """CTranslate2 ``models.Whisper`` over an exported model directory."""

    kind = "ct2"

    def __init__(
        self, ct2_dir: str | Path, model_name: str | None = None, opts: BackendOptions | None = None
    ) -> None:
        import ctranslate2

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
        self.model = ctranslate2.models.Whisper(
            str(path),
            device=kind,
            device_index=int(index or 0),
            compute_type=compute_type,
            intra_threads=opts.cpu_threads,
        )
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
    ) -> list[list[int]]:
        import ctranslate2

        sv = ctranslate2.StorageView.from_array(features)
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
        results = self.model.generate(
            sv,
            prompts,
            beam_size=options.beams,
            # Measured with CTranslate2 4.8.5: Whisper.generate emits at most max_length // 2 tokens
            # (whatever the prompt length), so twice the budget gives the same cap as Transformers.
            max_length=2 * max_new,
            suppress_blank=True,
            suppress_tokens=[-1],
            max_initial_timestamp_index=50,
        )
        return [[int(t) for t in r.sequences_ids[0] if t != self.eot] for r in results]
