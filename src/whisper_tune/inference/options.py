"""What to decode (``DecodeOptions``), how to run a backend (``BackendOptions``), and the one
token-cap rule.

Why one place: evaluation reported WER with one decoding setup and the server ran another
(a different token cap, a different splitter), so a report did not measure what users got.
Both now build these options and hand them to the same backend.

The token cap (``token_cap``), per 30 s window:

* Whisper's decoder has 448 positions (``max_target_positions``). The start sequence
  (``<|startoftranscript|>``, language, task, ``<|notimestamps|>``) takes up to 4, a prompt
  (``<|startofprev|>`` + at most 223 tokens) takes the rest of the first half.
* At most ``448 // 2 = 224`` new tokens, like OpenAI's decoder (``sample_len = n_text_ctx // 2``):
  30 s of even fast speech is well under 200 tokens (about 3 words/s at ~1.3 tokens a word,
  plus timestamp pairs), so more only ever feeds a repetition loop.
* And at most 8 tokens per second of audio + 16: a short clip's repetition loop then stops
  after a few dozen steps instead of 224, which matters when a badly tuned model loops on
  every clip of an evaluation, or on one short request batched with others.
* An explicit ``max_new_tokens`` replaces both limits but never runs past the decoder's
  positions left after the start sequence and the prompt.

The cap is per window, not per batch: backends generate to the batch's largest cap and each
window's tokens are cut to its own (greedy decoding is causal, so this equals decoding the
window alone with its cap), so a transcript never depends on what it was batched with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from whisper_tune.errors import UserError

if TYPE_CHECKING:  # gate.py imports InvalidOptionError from here
    from .gate import SpeechGate

__all__ = [
    "BackendOptions",
    "DecodeOptions",
    "InvalidOptionError",
    "MAX_NEW_TOKENS",
    "MAX_TARGET_POSITIONS",
    "PROMPT_MAX_TOKENS",
    "TASKS",
    "TEMPERATURE_LADDER",
    "temperature_ladder",
    "token_cap",
]

MAX_TARGET_POSITIONS = 448  # Whisper's decoder positions (every released size)
START_TOKENS = 4  # <|startoftranscript|> <|lang|> <|task|> <|notimestamps|>
MAX_NEW_TOKENS = MAX_TARGET_POSITIONS // 2  # 224, OpenAI's per-window sample length
PROMPT_MAX_TOKENS = MAX_TARGET_POSITIONS // 2 - 1  # prompt text tokens kept after <|startofprev|>
TOKENS_PER_SECOND = 8.0
TOKEN_MARGIN = 16
TASKS = ("transcribe", "translate")
# OpenAI's (and faster-whisper's) fallback ladder: a window whose greedy text is too repetitive
# (gzip compression ratio > 2.4) or too unlikely (mean log-probability < -1.0) is decoded again,
# sampling at the next temperature, unless it looks like silence (no-speech probability > 0.6)
TEMPERATURE_LADDER = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def temperature_ladder(temperature: float) -> tuple[float, ...]:
    """A request's ``temperature`` (OpenAI: a number from 0 to 1) -> the temperatures to try.

    OpenAI's rule: 0 lets the model "use log probability to automatically increase the
    temperature until certain thresholds are hit", i.e. ``TEMPERATURE_LADDER``; any other
    value samples at that one temperature, without fallback.
    """
    if not (math.isfinite(temperature) and 0.0 <= temperature <= 1.0):
        raise InvalidOptionError(f"temperature must be a number from 0 to 1, got {temperature}")
    return TEMPERATURE_LADDER if temperature == 0.0 else (float(temperature),)


class InvalidOptionError(UserError, ValueError):
    """A decoding or backend option out of range; the message names the option."""


def token_cap(
    seconds: float,
    *,
    prompt_len: int = 0,
    max_new_tokens: int | None = None,
    positions: int = MAX_TARGET_POSITIONS,
) -> int:
    """New tokens a window of ``seconds`` may generate (the rule in the module docstring).

    ``prompt_len``: tokens of the prompt including ``<|startofprev|>``; ``positions``: the
    decoder's ``max_target_positions``.
    """
    room = positions - prompt_len - START_TOKENS
    if max_new_tokens is not None:
        return max(1, min(max_new_tokens, room))
    by_length = int(math.ceil(seconds * TOKENS_PER_SECOND)) + TOKEN_MARGIN
    return max(1, min(positions // 2, room, by_length))


@dataclass(frozen=True)
class DecodeOptions:
    """How to decode: the same fields for an evaluation run and for a request to the server.

    ``language``: ``None`` = the model's own (English-only models) or detected once per file
    on its first window (multilingual models); ``timestamps``: decode Whisper's timestamp
    tokens into segments (the server does for verbose_json/srt/vtt; evaluation does not);
    ``gate``: skip silent windows and files under 0.1 s (``SpeechGate``; the server sets one,
    evaluation does not, so every test utterance is decoded). ``prompt``: only its last
    ``PROMPT_MAX_TOKENS`` tokens are used (OpenAI's rule: the model sees the final 224 tokens,
    ``<|startofprev|>`` included).

    ``temperatures``: tried in order per window (``temperature_ladder``); the first is 0 =
    greedy (or beam search with ``beams`` > 1); a window falls back to the next when it fails
    ``compression_ratio_threshold`` or ``log_prob_threshold`` and does not look silent
    (``no_speech_threshold``). The default ``(0.0,)`` never falls back (evaluation's greedy
    decode); the server passes the ladder for ``temperature=0``, as OpenAI does.
    ``word_timestamps``: per-word times from the cross-attention alignment heads
    (``Segment.words``). ``vad``: cut windows on Silero VAD speech instead of energy minima
    (``inference.vad``), so long silences never reach the model. ``hotwords``: words placed
    before the prompt in ``<|startofprev|>`` (faster-whisper's hotwords rule).
    ``speech_times``: with ``timestamps``, segment times moved onto the speech they cover
    (``inference.speech_times``: Whisper's own are coarse and let a segment run over a pause;
    the server sets it, long-form evaluation scores both); ``split_pause_s``: with word times, the
    pause that cuts a segment in two there.
    """

    language: str | None = None
    task: str = "transcribe"  # transcribe | translate (multilingual models only)
    beams: int = 1  # 1 = greedy, like Whisper's reported WERs
    max_new_tokens: int | None = None  # None: the rule of ``token_cap``
    prompt: str | None = None  # previous-text conditioning (OpenAI's ``prompt``)
    timestamps: bool = False
    gate: SpeechGate | None = None
    temperatures: tuple[float, ...] = (0.0,)
    best_of: int = 5  # samples per window at a temperature > 0; the likeliest is kept
    compression_ratio_threshold: float | None = 2.4
    log_prob_threshold: float | None = -1.0
    no_speech_threshold: float | None = 0.6
    word_timestamps: bool = False
    vad: bool = False
    hotwords: str | None = None
    skip_silence: bool = False  # drop windows OpenAI's no-speech rule calls silent (the server does)
    speech_times: bool = False
    split_pause_s: float = 0.5  # speech_times with words: a pause this long between two words cuts a segment

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise InvalidOptionError(f"task must be one of {', '.join(TASKS)}, got {self.task!r}")
        if self.beams < 1:
            raise InvalidOptionError(f"beams (num_beams) must be >= 1, got {self.beams}")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise InvalidOptionError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if not self.temperatures or any(not (0.0 <= t <= 1.0) for t in self.temperatures):
            raise InvalidOptionError(f"temperatures must be numbers from 0 to 1, got {self.temperatures}")
        if self.best_of < 1:
            raise InvalidOptionError(f"best_of must be >= 1, got {self.best_of}")
        if not self.split_pause_s > 0:
            raise InvalidOptionError(f"split_pause_s must be > 0 seconds, got {self.split_pause_s}")


@dataclass
class BackendOptions:
    """How to run a backend. ``auto`` picks the GPU when one is visible."""

    device: str = "auto"  # auto | cpu | cuda | cuda:N
    dtype: str = "auto"  # HF: auto (bf16/fp16 on GPU, fp32 on CPU) | float32 | float16 | bfloat16
    # CT2: auto (int8 on CPU, float16 on GPU) | int8 | int8_float16 | float16 | float32 | ...
    compute_type: str = "auto"
    batch_size: int = 8  # windows per forward pass
    cpu_threads: int = 0  # CT2 intra-op threads (0: library default)
    feature_device: str = "auto"  # log-mel on: auto (the GPU when the model runs on one) | cpu | cuda
    decode: DecodeOptions = field(default_factory=DecodeOptions)  # defaults for every request

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise InvalidOptionError(f"batch_size must be >= 1, got {self.batch_size}")
