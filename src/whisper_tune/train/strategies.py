"""What part of Whisper is trained: full, decoder-only, cross-attention-only, encoder-only or LoRA.

Why: on small domain corpora the encoder already hears fine; most of the domain gap
is vocabulary, which lives in the decoder. Freezing the encoder cuts the backward pass
(0.82 -> 0.25 s/sample on 2 CPU cores with tiny.en) and, because its output is then a
constant per clip, lets the encoder run once (``train.cache_encoder_outputs``). LoRA
(peft) trains small adapters; they are merged into the weights on export so ``best/``
is a plain Whisper. SpecAugment is the model config's own masking.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from whisper_tune.train.config import TrainSection

__all__ = ["StrategyInfo", "apply_strategy", "count_parameters"]

log = logging.getLogger(__name__)


@dataclass
class StrategyInfo:
    strategy: str
    trainable_params: int
    total_params: int

    @property
    def trainable_fraction(self) -> float:
        return self.trainable_params / max(1, self.total_params)


def count_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = total = 0
    for p in model.parameters():
        n = p.numel()
        total += n
        if p.requires_grad:
            trainable += n
    return trainable, total


def _make_inputs_require_grad(module: Any, _inputs: Any, output: Any) -> None:
    output.requires_grad_(True)


def _freeze_lower_encoder(encoder: Any, n_layers: int) -> None:
    """Freeze the conv front end and the ``n_layers`` lowest encoder layers (0: nothing).

    The backward pass then stops at the first trainable layer: on a 2-core CPU, tiny.en with its
    top 2 of 4 layers trainable measured 0.38 vs 0.56 s per 30 s clip (bf16 autocast).
    """
    if n_layers <= 0:
        return
    layers = encoder.layers
    if n_layers >= len(layers):
        from whisper_tune.config import ConfigError

        raise ConfigError(
            f"train.frozen_encoder_layers: {n_layers} would freeze all {len(layers)} encoder layers "
            "(use train.strategy decoder to train none)"
        )
    for module in (encoder.conv1, encoder.conv2, *layers[:n_layers]):
        for p in module.parameters():
            p.requires_grad_(False)


def apply_strategy(model: Any, train: TrainSection) -> tuple[Any, StrategyInfo]:
    """Configure ``model`` for ``train.strategy``; returns the (possibly peft-wrapped) model."""
    cfg = model.config
    cfg.apply_spec_augment = bool(train.spec_augment)
    if train.spec_augment:
        cfg.mask_time_prob = train.mask_time_prob
        cfg.mask_feature_prob = train.mask_feature_prob
    if train.gradient_checkpointing:
        cfg.use_cache = False  # incompatible with checkpointing during training
    # Whisper's encoder position table is fixed sinusoids (a buffer in OpenAI's model; HF marks
    # it requires_grad=False at construction) but ``from_pretrained`` in transformers 5.x
    # hands it back trainable. Keep it fixed: a shortened context is then exactly a prefix of
    # the 30 s table, and export can restore the full table (runs.restore_full_context).
    model.get_encoder().embed_positions.weight.requires_grad_(False)

    if train.strategy == "decoder":
        encoder = model.get_encoder()
        for p in encoder.parameters():
            p.requires_grad_(False)
    elif train.strategy == "cross_attention":
        # Only the decoder's cross-attention (and its layer norm) learns: how the text side
        # reads the audio. Token embeddings, the tied output projection, self-attention and the
        # feed-forward blocks -- where Whisper's language prior lives -- stay the base model's.
        # Gheini et al. 2021 ("Cross-attention is all you need", EMNLP) found this nearly
        # matches full fine-tuning for MT while forgetting far less.
        for name, p in model.named_parameters():
            p.requires_grad_(".decoder." in f".{name}" and ".encoder_attn" in name)
    elif train.strategy == "encoder":
        # Acoustic adaptation only: the decoder (Whisper's language model, embeddings and output
        # projection included) stays the base model's, so its prior over words cannot drift
        # towards the domain corpus' phrasing.
        for p in model.get_decoder().parameters():
            p.requires_grad_(False)
        model.get_output_embeddings().weight.requires_grad_(False)
        _freeze_lower_encoder(model.get_encoder(), train.frozen_encoder_layers)
    elif train.strategy == "lora":
        from peft import LoraConfig, get_peft_model

        lcfg = LoraConfig(
            r=train.lora.r,
            lora_alpha=train.lora.alpha,
            lora_dropout=train.lora.dropout,
            target_modules=list(train.lora.target_modules),
            bias="none",
        )
        if train.gradient_checkpointing:
            # Frozen inputs would give checkpointed blocks no grad path: make the first
            # encoder conv output (and decoder embeddings) require grad.
            model.get_encoder().conv1.register_forward_hook(_make_inputs_require_grad)
            model.enable_input_require_grads()
        try:
            model = get_peft_model(model, lcfg)
        except ValueError as exc:
            from whisper_tune.config import ConfigError

            raise ConfigError(f"train.lora.target_modules: {exc}") from exc
    trainable, total = count_parameters(model)
    info = StrategyInfo(train.strategy, trainable, total)
    log.info(
        "strategy %s: %d of %d parameters trainable (%.1f %%)",
        train.strategy,
        trainable,
        total,
        100 * info.trainable_fraction,
    )
    return model, info
