"""Evaluation scores exactly what the server returns: same model, same audio, same transcripts.

Evaluate's entry point is ``whisper_tune.evaluate.evaluate`` (files on disk, a shared
FeatureBank); serve's is the backend a ``Model`` replica holds (``load_serve_backend``), fed
the way the ingress feeds it (uploaded bytes through ``decode_audio_bytes``, then
``transcribe_batch(audios, language, prompt, timestamps, deadline)``). A random toy Whisper
keeps it fast; tests/integration/inference repeats it with the real tiny.en on speech.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from whisper_tune.data.manifest import Sample
from whisper_tune.inference import BackendOptions, DecodeOptions

SR = 16000


@pytest.fixture(scope="module")
def clip_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    """Noise clips as files. ``short``: under 3 s, one at 44.1 kHz stereo (decoded with the
    default per-window token caps, 24-36 tokens); ``long``: one over 30 s (two windows) and a
    short one (decoded with a small explicit cap: a random model never stops by itself)."""
    d = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(5)
    out: dict[str, list[Path]] = {"short": [], "long": []}
    for group, name, seconds in (
        ("short", "a", 1.0),
        ("short", "b", 2.5),
        ("long", "l", 34.0),
        ("long", "s", 1.0),
    ):
        p = d / f"{name}.wav"
        sf.write(str(p), (0.1 * rng.standard_normal(int(seconds * SR))).astype(np.float32), SR)
        out[group].append(p)
    p = d / "stereo.flac"
    sf.write(str(p), (0.1 * rng.standard_normal((int(2.0 * 44100), 2))).astype(np.float32), 44100)
    out["short"].append(p)
    return out


def _evaluate(spec: str, files: list[Path], out: Path, **kw: Any) -> Any:
    from whisper_tune.evaluate import evaluate

    samples = [Sample(id=f.stem, audio=str(f), text="reference") for f in files]
    result = evaluate(spec, samples, out, device="cpu", **kw)
    assert [u.id for u in result.utterances] == [f.stem for f in files]
    return result


def _serve_backend(spec: str, kind: str, opts: BackendOptions) -> Any:
    from whisper_tune.serve.app import ServeOptions, load_serve_backend

    return load_serve_backend(ServeOptions(model=spec, backend=kind, backend_options=opts))


def _served(backend: Any, files: list[Path], *, together: bool) -> list[str]:
    """What the ingress + Model deployment do with uploads of ``files`` (json response format)."""
    from whisper_tune.serve.audio import decode_audio_bytes

    audios = [decode_audio_bytes(f.read_bytes(), name=f.name) for f in files]
    deadline = time.monotonic() + 600
    if together:  # one @serve.batch of requests sharing options = one transcribe_batch call
        outs = backend.transcribe_batch(audios, None, None, False, deadline)
    else:
        outs = [backend.transcribe_batch([a], None, None, False, deadline)[0] for a in audios]
    return [t.text for t in outs]


@pytest.mark.parametrize("kind", ["hf", "ct2"])
@pytest.mark.parametrize("group", ["short", "long"])
def test_evaluate_and_serve_return_identical_transcripts(
    kind: str,
    group: str,
    tiny_model_dir: Path,
    clip_files: dict[str, list[Path]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WHISPER_TUNE_CACHE", str(tmp_path / "cache"))  # the CT2 export goes here
    files = clip_files[group]
    cap = None if group == "short" else 10
    # float32 CT2 here: int8 flips near-ties of a random model's logits between batch shapes
    result = _evaluate(
        str(tiny_model_dir),
        files,
        tmp_path / "eval",
        batch_size=2,
        backend=kind,
        precision="float32",
        max_new_tokens=cap,
    )
    evaluated = [u.hyp for u in result.utterances]
    opts = BackendOptions(
        device="cpu",
        dtype="float32",
        compute_type="float32",
        batch_size=2,
        decode=DecodeOptions(max_new_tokens=cap),
    )
    backend = _serve_backend(str(tiny_model_dir), kind, opts)
    assert backend.kind == kind and backend.precision == "float32"
    served = _served(backend, files, together=True)
    assert served == evaluated
    assert all(evaluated)  # a random model still emits text; empty would hide a decode bug
    # one request at a time: every window keeps its own token cap, so batching changes nothing
    assert _served(backend, files, together=False) == evaluated
    # the report says which backend it scored (the default hf reports as before)
    assert result.model == (str(tiny_model_dir) if kind == "hf" else f"{tiny_model_dir} [ct2 float32]")
