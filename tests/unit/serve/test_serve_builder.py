"""``serve.builder``: the ``args`` of ``serve run module:app_builder key=value`` / a RayService config
become the CLI's ServeOptions, with autoscaling on the Model deployment; bad args fail with their name."""

from __future__ import annotations

import pytest

from whisper_tune.errors import UserError
from whisper_tune.inference import SpeechGate
from whisper_tune.serve.builder import app_builder, options_from_args


def test_string_args_are_converted_like_the_cli() -> None:
    opts = options_from_args(
        {
            "model": "tiny.en",
            "backend": "ct2",
            "max_batch_size": "16",
            "batch_wait_ms": "20",
            "device": "cpu",
            "compute_type": "int8",
            "vad": "on",
            "model_aliases": "whisper-1, bank-asr",
            "autoscaling_config": '{"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 8}',
        }
    )
    assert (opts.model, opts.backend, opts.max_batch_size, opts.batch_wait_s) == ("tiny.en", "ct2", 16, 0.02)
    assert opts.model_aliases == ("whisper-1", "bank-asr") and opts.num_gpus == 0.0
    assert opts.autoscaling_config == {"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 8}
    b = opts.backend_options
    assert (b.device, b.compute_type, b.batch_size) == ("cpu", "int8", 16)
    assert b.decode.vad and b.decode.skip_silence and b.decode.gate == SpeechGate()
    assert options_from_args({"model": "m", "autoscaling_config": "auto"}).autoscaling_config == {}
    assert options_from_args({"model": "m", "speech_gate": "off"}).backend_options.decode.gate is None
    d = options_from_args({"model": "m", "speech_times": "on", "split_pause": "0.8"}).backend_options.decode
    assert d.speech_times and d.split_pause_s == 0.8
    assert options_from_args({"model": "m"}).backend_options.decode.split_pause_s == 0.5  # the CLI's default


def test_bad_args_name_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UserError, match="need 'model'"):
        options_from_args({})
    with pytest.raises(UserError, match="unknown args colour"):
        options_from_args({"model": "m", "colour": "red"})
    with pytest.raises(UserError, match="max_batch_size must be a int"):
        options_from_args({"model": "m", "max_batch_size": "many"})
    with pytest.raises(UserError, match="vad must be on or off"):
        options_from_args({"model": "m", "vad": "maybe"})
    with pytest.raises(UserError, match="split_pause must be seconds, got 'long'"):
        options_from_args({"model": "m", "split_pause": "long"})
    with pytest.raises(UserError, match="split_pause_s must be > 0"):
        options_from_args({"model": "m", "split_pause": "0"})
    monkeypatch.delenv("WT_NO_SUCH_KEY", raising=False)
    with pytest.raises(UserError, match="WT_NO_SUCH_KEY"):
        options_from_args({"model": "m", "api_key_env": "WT_NO_SUCH_KEY"})
    monkeypatch.setenv("WT_BUILDER_KEY", "k" * 32)
    assert options_from_args({"model": "m", "api_key_env": "WT_BUILDER_KEY"}).api_key_sha256


def test_builder_returns_a_bound_application_with_model_autoscaling() -> None:
    from ray.serve import Application

    fixed = app_builder({"model": "tiny.en", "replicas": "2", "device": "cpu"})
    assert isinstance(fixed, Application)
    auto = app_builder({"model": "tiny.en", "device": "cpu", "autoscaling_config": {"max_replicas": 3}})
    deployments = {d.name: d for d in _deployments(auto)}
    assert set(deployments) == {"Transcriber", "Model"}
    assert deployments["Model"]._deployment_config.autoscaling_config.max_replicas == 3
    assert {d.name: d.num_replicas for d in _deployments(fixed)} == {"Transcriber": 2, "Model": 2}


def _deployments(app: object) -> list[object]:
    """The deployments a bound application holds (ingress first), via Serve's own builder."""
    from ray.serve._private.build_app import build_app

    return [d for d in build_app(app, name="t").deployments]


def test_cpu_model_replicas_get_the_cores_not_rays_one_thread() -> None:
    """Ray sets OMP_NUM_THREADS=num_cpus (1) in a replica; a CPU model replica overrides it."""
    import os

    from whisper_tune.inference import BackendOptions
    from whisper_tune.serve.app import ServeOptions, build_app
    from whisper_tune.serve.options import cpu_replica_env

    cores = os.cpu_count() or 1
    assert cpu_replica_env(ServeOptions(model="m"))["env_vars"]["OMP_NUM_THREADS"] == str(cores)
    two = ServeOptions(model="m", replicas=2)
    assert cpu_replica_env(two)["env_vars"]["OMP_NUM_THREADS"] == str(max(1, cores // 2))
    pinned = ServeOptions(model="m", backend_options=BackendOptions(cpu_threads=3))
    assert cpu_replica_env(pinned)["env_vars"] == {"OMP_NUM_THREADS": "3", "MKL_NUM_THREADS": "3"}

    deployments = {d.name: d for d in _deployments(build_app(ServeOptions(model="m", num_gpus=0.0)))}
    model_env = deployments["Model"].ray_actor_options["runtime_env"]
    assert model_env["env_vars"]["OMP_NUM_THREADS"] == str(cores)
    assert "runtime_env" not in (deployments["Transcriber"].ray_actor_options or {})
    gpu = {d.name: d for d in _deployments(build_app(ServeOptions(model="m", num_gpus=1.0)))}
    assert "runtime_env" not in gpu["Model"].ray_actor_options
