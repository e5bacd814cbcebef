"""The Transformers backend: ``WhisperForConditionalGeneration.generate`` behind ``Backend``.

Why its own module: it is the backend for any model training produces (no export step) and
for a model already in memory (``HFBackend(model, processor)``, used by ``transcribe``),
and it carries the Transformers-specific fixes: generation configs that lack timestamp
fields, and a warning Transformers repeats on every batch.

Statistics (the same fields as the CTranslate2 backend, see ``inference.fallback``): the
encoder runs once per batch and ``generate`` gets its output; then one teacher-forced decoder
pass over prompt + start tokens + the generated ids + EOT gives ``avg_logprob`` (the mean
log-probability of the chosen tokens, EOT included, from the raw logits: OpenAI takes them
after its suppress/timestamp filters, which makes its values slightly higher) and
``no_speech_prob`` (P(``<|nocaptions|>``) at the step after ``<|startoftranscript|>``, where
OpenAI and CTranslate2 read it). Sampling (fallback temperatures) runs ``best_of`` draws per
window and keeps the likeliest. Word timestamps: Transformers' ``return_token_timestamps``
(DTW over the cross-attention of the generation config's ``alignment_heads``); a word runs
from the time of the token before it to the time of its last token, its probability is the
mean of its tokens'. A model whose generation config has no ``alignment_heads`` (random-init
test models, some converted checkpoints) returns no ``words`` (``Segment.words`` is None).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from .backend import Backend
from .bank import model_frames
from .device import resolve_device, resolve_precision
from .fallback import Decoded
from .options import BackendOptions, DecodeOptions
from .segments import APPEND_PUNCTUATIONS, PREPEND_PUNCTUATIONS

__all__ = ["HFBackend"]

_NOISE = (
    # Whisper's generation config carries max_length=448 and we pass max_new_tokens on purpose
    "seem to have been set",
    # windows are padded to 30 s by the extractor and decoder rows share their start: no mask to pass
    "The attention mask is not set",
    # Whisper's own generate() passes suppress_tokens next to the generation config
    "Passing `generation_config` together with",
    # return_token_timestamps: windows are padded to 30 s and each is aligned on its own frames
    "make sure to pass an `attention_mask`",
    # return_timestamps + return_dict_in_generate: the segments it adds are not read
    "automatically sets `return_segments=True`",
)


class _QuietLengthClash(logging.Filter):
    """Drops Transformers' per-call "Both `max_new_tokens` and `max_length` seem to have been set"
    (and the attention-mask notice), which repeated on every batch of a server or an evaluation."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not any(n in msg for n in _NOISE)


def _quiet_generation_warnings() -> None:
    for name in ("transformers.generation.utils", "transformers.models.whisper.generation_whisper"):
        gen_log = logging.getLogger(name)
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
        temperature: float = 0.0,
    ) -> list[Decoded]:
        import torch

        x = self._on_model(features)
        kwargs: dict[str, Any] = {
            "max_new_tokens": max_new,
            "return_timestamps": options.timestamps,
            "return_dict_in_generate": True,
            # One decode per window: the windows are ours. Transformers 5 otherwise seeks inside a
            # 30 s window whose last segment is unfinished (the token cap hit) and, in a batch
            # where another window is done, slices input_features -- None when encoder_outputs
            # are passed -- and crashed the batch (TypeError; 3 joined test recordings, chunked).
            "force_unique_generate_call": True,
        }
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature, top_k=0)
        else:
            kwargs.update(do_sample=False, num_beams=options.beams)
        if options.word_timestamps and self.can_align:
            kwargs["return_token_timestamps"] = True
        if prompt_ids:
            kwargs["prompt_ids"] = torch.tensor(prompt_ids, device=x.device)
        if self.multilingual:
            kwargs["task"] = options.task
            if language:
                kwargs["language"] = language
        start = self._start_ids(language, options)
        best: list[Decoded] | None = None
        get_encoder = getattr(self.model, "get_encoder", None)  # absent on stand-in test models
        with torch.inference_mode():
            enc = get_encoder()(x) if get_encoder is not None else None
            for _ in range(options.best_of if temperature > 0 else 1):
                out = (
                    self.model.generate(x, **kwargs)
                    if enc is None
                    else self.model.generate(encoder_outputs=enc, **kwargs)
                )
                rows = self._rows(out, len(start))
                if enc is not None:
                    self._score(enc, prompt_ids + start, rows)
                if best is None:
                    best = rows
                else:  # sampling: keep each window's likeliest draw
                    best = [
                        b if b.avg_logprob >= r.avg_logprob else r for b, r in zip(best, rows, strict=True)
                    ]
        assert best is not None
        return best

    def _start_ids(self, language: str | None, options: DecodeOptions) -> list[int]:
        ids = [self.sot]
        if self.multilingual:
            ids += [
                int(self.tokenizer.convert_tokens_to_ids(f"<|{language or 'en'}|>")),
                self._task_token(options.task),
            ]
        if not options.timestamps:
            ids.append(self.no_timestamps)
        return ids

    def _rows(self, out: Any, n_start: int) -> list[Decoded]:
        """Generated ids (no prompt, no start tokens, no EOT) and word times per window;
        ``n_start``: the start sequence's length (``<|startoftranscript|>`` included)."""
        seqs = out["sequences"] if isinstance(out, dict) else getattr(out, "sequences", out)
        times = out.get("token_timestamps") if isinstance(out, dict) else None
        result: list[Decoded] = []
        for r, row in enumerate(seqs.tolist()):
            # with return_timestamps the start sequence is cut off already; else it (and the prompt) lead
            j0 = row.index(self.sot) + n_start if self.sot in row else 0
            gen = row[j0:]
            end = gen.index(self.eot) if self.eot in gen else len(gen)
            d = Decoded([int(t) for t in gen[:end]])
            if times is not None:
                t = times[r].tolist()
                d.words = self.group_words(d.tokens, [t[j0 - 1] if j0 else 0.0, *t[j0 : j0 + end]])
            result.append(d)
        return result

    def _score(self, enc: Any, head: list[int], rows: list[Decoded]) -> None:
        """One teacher-forced decoder pass over ``head`` (prompt + start tokens) + each window's
        ids + EOT: the chosen tokens' mean log-probability (EOT included) and P(no-speech) at the
        step after ``<|startoftranscript|>``; word probabilities from the same pass."""
        import torch

        seqs = [head + d.tokens + [self.eot] for d in rows]
        width = max(len(q) for q in seqs)
        ids = torch.tensor(
            [q + [self.eot] * (width - len(q)) for q in seqs], device=enc.last_hidden_state.device
        )
        logits = self.model(encoder_outputs=enc, decoder_input_ids=ids).logits.float()
        logp = logits.log_softmax(-1)
        at_sot = head.index(self.sot)
        for r, (d, q) in enumerate(zip(rows, seqs, strict=True)):
            n = len(q) - len(head)  # generated tokens + EOT
            pos = torch.arange(len(head) - 1, len(q) - 1, device=ids.device)
            picked = logp[r, pos, ids[r, pos + 1]].tolist()
            d.avg_logprob = float(sum(picked) / max(1, n))
            if self.no_speech >= 0:
                d.no_speech_prob = float(logp[r, at_sot, self.no_speech].exp())
            if d.words:
                text_p = [math.exp(v) for v, t in zip(picked, d.tokens, strict=False) if t < self.eot]
                k = 0
                for w in d.words:
                    group = text_p[k : k + len(w["tokens"])]
                    w["probability"] = round(sum(group) / max(1, len(group)), 4)
                    k += len(w["tokens"])

    @property
    def can_align(self) -> bool:
        return bool(getattr(self.model.generation_config, "alignment_heads", None))

    def group_words(self, gen: list[int], times: list[float]) -> list[dict[str, Any]]:
        """Token times (``times[0]``: the step before ``gen[0]``) grouped into words by the
        tokenizer's word rule (faster-whisper's ``split_to_word_tokens``, spaces or unicode)."""
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import merge_punctuations

        text = [t for t in gen if t < self.eot]
        at = [times[j + 1] for j, t in enumerate(gen) if t < self.eot]
        before = [times[j] for j, t in enumerate(gen) if t < self.eot]
        tok = Tokenizer(self.tokenizer.backend_tokenizer, self.multilingual, task="transcribe", language="en")
        words, groups = tok.split_to_word_tokens(text + [self.eot])
        out: list[dict[str, Any]] = []
        k = 0
        for word, group in zip(words, groups, strict=False):
            group = [t for t in group if t < self.eot]
            if not group:
                continue
            s0, e0 = before[k], at[k + len(group) - 1]
            out.append(
                {
                    "word": word,
                    "tokens": group,
                    "start": float(s0),
                    "end": float(max(e0, s0)),
                    "probability": 0.0,
                }
            )
            k += len(group)
        merge_punctuations(out, PREPEND_PUNCTUATIONS, APPEND_PUNCTUATIONS)
        return out

    def _align(
        self,
        features: np.ndarray,
        language: str | None,
        options: DecodeOptions,
        texts: list[list[int]],
        seconds: list[float],
    ) -> list[list[dict[str, Any]]] | None:
        """Words were timed during ``generate`` (``Decoded.words``); nothing more to align."""
        return None
