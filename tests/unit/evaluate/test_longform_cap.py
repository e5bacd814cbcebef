"""The sequential long-form token cap leaves room for the previous text Transformers prompts with."""

from __future__ import annotations

from whisper_tune.evaluate.longform import sequential_token_cap


def test_cap_plus_the_longest_prompt_fits_the_decoder() -> None:
    # measured failure: English-only, 223 previous tokens + <|startofprev|> + <|startoftranscript|>
    # = 225 prompt tokens, + 224 new = 449 > 448 positions (ValueError inside generate)
    assert sequential_token_cap(224, 448, multilingual=False) == 223
    assert 225 + sequential_token_cap(224, 448, multilingual=False) <= 448
    # multilingual: language and task tokens too
    assert 227 + sequential_token_cap(224, 448, multilingual=True) <= 448
    assert sequential_token_cap(50, 448, multilingual=True) == 50  # a smaller request is kept
