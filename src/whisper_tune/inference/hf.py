"""The Transformers backend: ``WhisperForConditionalGeneration.generate`` behind ``Backend``.

Why its own module: it is the backend for any model training produces (no export step) and
for a model already in memory (``HFBackend(model, processor)``, used by ``transcribe``),
and it carries the Transformers-specific fixes: generation configs that lack timestamp
fields, and a warning Transformers repeats on every batch.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from .backend import Backend
from .bank import model_frames
from .device import resolve_device, resolve_precision
from .options import BackendOptions, DecodeOptions

__all__ = ["HFBackend"]

_NOISE = (
    # Whisper's generation config carries max_length=448 and we pass max_new_tokens on purpose
    "seem to have been set",
    # windows are padded to 30 s by the extractor and decoder rows share their start: no mask to pass
    "The attention mask is not set",
    # Whisper's own generate() passes suppress_tokens next to the generation config
    "Passing `generation_config` together with",
)


class _QuietLengthClash(logging.Filter):
    """Drops Transformers' per-call "Both `max_new_tokens` and `max_length` seem to have been set"
    (and the attention-mask notice), which repeated on every batch of a server or an evaluation."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not any(n in msg for n in _NOISE)


def _quiet_generation_warnings() -> None:
    gen_log = logging.getLogger("transformers.generation.utils")
    if not any(isinstance(f, _QuietLengthClash) for f in gen_log.filters):
        gen_log.addFilter(_QuietLengthClash())


class HFBackend(Backend):
    """Transformers ``WhisperForConditionalGeneration`` (SDPA attention)."""

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

    @property
    def frames(self) -> int:
        return model_frames(self.model)

    @property
    def max_target_positions(self) -> int:
        positions = getattr(getattr(self.model, "config", None), "max_target_positions", None)
        return positions if isinstance(positions, int) else super().max_target_positions

    @classmethod
    def from_spec(
        cls, spec: str, model_name: str | None = None, opts: BackendOptions | None = None
    ) -> HFBackend:
        import torch

        from whisper_tune.models import load_model

        opts = opts or BackendOptions()
        device = resolve_device(opts.device, "hf")
        dtype = getattr(torch, resolve_precision(opts.dtype, device, "hf"))
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
        options: DecodeOptions,
        max_new: int,
    ) -> list[list[int]]:
        import torch

        x = self._on_model(features)
        kwargs: dict[str, Any] = {
            "max_new_tokens": max_new,
            "return_timestamps": options.timestamps,
            "num_beams": options.beams,
            "do_sample": False,
        }
        if prompt_ids:
            kwargs["prompt_ids"] = torch.tensor(prompt_ids, device=x.device)
        if self.multilingual:
            kwargs["task"] = options.task
            if language:
                kwargs["language"] = language
        with torch.inference_mode():
            out = self.model.generate(x, **kwargs)
        seqs = out["sequences"] if isinstance(out, dict) else getattr(out, "sequences", out)
        result = []
        for row in seqs.tolist():
            if prompt_ids and self.sot in row:  # older versions return the prompt too
                row = row[row.index(self.sot) + 1 :]
            result.append([int(t) for t in row if t != self.eot])
        return result
