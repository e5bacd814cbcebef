"""Both backends on a random toy Whisper: same greedy ids, long audio windows, options, health.

Moved from tests/unit/serve/test_backends.py with the backends (now ``whisper_tune.inference``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from whisper_tune.errors import UserError
from whisper_tune.inference import (
    BackendOptions,
    CT2Backend,
    DecodeOptions,
    HFBackend,
    UnsupportedLanguageError,
    load_backend,
    resolve_model_dir,
)

SR = 16000


@pytest.fixture(scope="module")
def toy_ct2_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from whisper_tune.models import export_ct2

    return export_ct2(tiny_model_dir, tmp_path_factory.mktemp("toy_ct2") / "ct2")


@pytest.fixture(scope="module")
def backends(tiny_model_dir: Path, toy_ct2_dir: Path) -> tuple[HFBackend, CT2Backend]:
    cap = DecodeOptions(max_new_tokens=8)
    hf = load_backend(str(tiny_model_dir), "hf", BackendOptions(batch_size=4, decode=cap))
    # float32 so the comparison is exact on a random model (int8 flips near-ties of random logits)
    ct2 = load_backend(
        str(toy_ct2_dir), "ct2", BackendOptions(batch_size=4, compute_type="float32", decode=cap)
    )
    assert isinstance(hf, HFBackend) and isinstance(ct2, CT2Backend)
    return hf, ct2


def clips() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [
        (0.1 * rng.standard_normal(SR * 3)).astype(np.float32),
        (0.1 * rng.standard_normal(SR * 65)).astype(np.float32),  # 3 windows
        (0.1 * rng.standard_normal(SR // 2)).astype(np.float32),
    ]


def test_hf_and_ct2_agree_greedy(backends: tuple[HFBackend, CT2Backend]) -> None:
    # Without timestamps: with them the two timestamp rules differ on a random model's near-ties;
    # the real tiny.en is compared with timestamps in tests/integration/serve.
    hf, ct2 = backends
    a = hf.transcribe_batch(clips(), prompt="Zelle")
    b = ct2.transcribe_batch(clips(), prompt="Zelle")
    assert [t.text for t in a] == [t.text for t in b]
    assert [[s.tokens for s in t.segments] for t in a] == [[s.tokens for s in t.segments] for t in b]
    assert all(t.text for t in a)  # a random model still emits tokens; empty would mean a decode bug


def test_long_audio_windows_in_order(backends: tuple[HFBackend, CT2Backend]) -> None:
    hf, _ = backends
    [t] = hf.transcribe_batch([clips()[1]])
    assert t.duration == pytest.approx(65.0)
    assert len(t.segments) == 3
    starts = [s.start for s in t.segments]
    assert starts == sorted(starts) and starts[0] == 0.0
    assert t.segments[-1].end == pytest.approx(65.0)
    assert [s.id for s in t.segments] == [0, 1, 2]


def test_batch_order_matches_single_calls(backends: tuple[HFBackend, CT2Backend]) -> None:
    _, ct2 = backends
    cs = clips()
    batched = [t.text for t in ct2.transcribe_batch(cs)]
    single = [ct2.transcribe_batch([c])[0].text for c in cs]
    assert batched == single


def test_language_rules(backends: tuple[HFBackend, CT2Backend]) -> None:
    hf, ct2 = backends
    for b in (hf, ct2):
        assert not b.multilingual
        assert b.check_language(None) is None and b.check_language("EN") == "en"
        with pytest.raises(UnsupportedLanguageError, match="English-only"):
            b.transcribe_batch(clips()[:1], language="fr")


def test_bad_input_and_backend_name(backends: tuple[HFBackend, CT2Backend], tiny_model_dir: Path) -> None:
    hf, _ = backends
    with pytest.raises(ValueError, match="1-D mono"):
        hf.transcribe_batch([np.zeros((2, SR), dtype=np.float32)])
    with pytest.raises(UserError, match="--backend must be"):
        load_backend(str(tiny_model_dir), "onnx")


def test_resolve_run_dir(tmp_path: Path) -> None:
    (tmp_path / "run" / "best").mkdir(parents=True)
    (tmp_path / "run" / "config.yaml").write_text("model: {}\n")
    assert resolve_model_dir(str(tmp_path / "run")) == str(tmp_path / "run" / "best")
    assert resolve_model_dir("tiny.en") == "tiny.en"


def test_ct2_dir_without_tokenizer(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"")
    with pytest.raises(UserError, match="no tokenizer.json"):
        CT2Backend(tmp_path)


def test_deadline_stops_between_window_batches(backends: tuple[HFBackend, CT2Backend]) -> None:
    import time

    from whisper_tune.inference import DeadlineExceeded

    hf, _ = backends
    with pytest.raises(DeadlineExceeded, match="stopped after 0 of 3 windows"):
        hf.transcribe_batch([clips()[1]], deadline=time.monotonic() - 1.0)
    assert hf.transcribe_batch([clips()[0]], deadline=time.monotonic() + 600)[0].text


def test_ct2_cuda_probe_turns_a_missing_cublas_into_advice() -> None:
    """PyPI CTranslate2 needs CUDA 12's cuBLAS; the probe fails the start with what to do."""
    from whisper_tune.inference.ct2 import _probe_ct2_cuda

    class NoCublas:
        n_mels = 80

        def encode(self, x: object, to_cpu: bool = False) -> None:
            raise RuntimeError("Library libcublas.so.12 is not found or cannot be loaded")

    with pytest.raises(UserError) as err:
        _probe_ct2_cuda(NoCublas(), "float16")
    msg = str(err.value)
    assert "libcublas.so.12" in msg and "compute type float16" in msg
    assert "nvidia-cublas-cu12" in msg and "--backend hf" in msg and "--device cpu" in msg


def test_ct2_cuda_probe_passes_a_working_model(toy_ct2_dir: Path) -> None:
    import ctranslate2

    from whisper_tune.inference.ct2 import _probe_ct2_cuda

    _probe_ct2_cuda(ctranslate2.models.Whisper(str(toy_ct2_dir), device="cpu"), "float32")


def test_stats_count_batches_windows_and_time(backends: tuple[HFBackend, CT2Backend]) -> None:
    _, ct2 = backends
    before = dict(ct2.stats)
    ct2.transcribe_batch(clips())  # 1 + 3 + 1 windows, batch size 4 -> 2 model calls
    assert ct2.stats["windows"] - before["windows"] == 5
    assert ct2.stats["batches"] - before["batches"] == 2
    assert ct2.stats["features_s"] > before["features_s"] and ct2.stats["model_s"] > before["model_s"]


def test_feature_device_follows_the_model_and_falls_back_without_cuda(
    backends: tuple[HFBackend, CT2Backend], monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    hf, _ = backends
    assert hf._feature_device() == "cpu"  # model on the CPU
    monkeypatch.setattr(hf.opts, "feature_device", "cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert hf._feature_device() == "cpu"  # asked for CUDA on a machine without it: no crash
    [t] = hf.transcribe_batch([clips()[0]])
    assert t.text


def test_hf_backend_does_not_warn_about_its_token_cap_on_every_batch(
    backends: tuple[HFBackend, CT2Backend],
) -> None:
    import logging

    hf, _ = backends
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    gen_log = logging.getLogger("transformers.generation.utils")  # Transformers does not propagate
    handler = Keep(level=logging.WARNING)
    gen_log.addHandler(handler)
    try:
        hf.transcribe_batch([clips()[0]])
        hf.transcribe_batch([clips()[2]])
        gen_log.warning("an unrelated warning still gets through")
    finally:
        gen_log.removeHandler(handler)
    assert not [m for m in seen if "seem to have been set" in m]
    assert "an unrelated warning still gets through" in seen


def test_translate_needs_a_multilingual_model(backends: tuple[HFBackend, CT2Backend]) -> None:
    from whisper_tune.inference import FeatureBank

    for b in backends:
        with pytest.raises(UnsupportedLanguageError, match="English-only; task='translate'"):
            b.transcribe_bank(FeatureBank(clips()[2:]), DecodeOptions(task="translate"))
