"""A Ray Serve application builder: ``serve run whisper_tune.serve.builder:app_builder model=...``,
or the ``import_path`` of a RayService / ``serve deploy`` config.

Why: ``whisper-tune serve`` starts its own Ray and Serve for one machine; a cluster runs Serve
from a config file (KubeRay's RayService, ``serve deploy``) that names an import path and
passes ``args``. This builder turns those ``args`` into the same ``ServeOptions`` the CLI
builds (same defaults: the speech gate on, OpenAI's no-speech rule, ``whisper-1`` alias) and
returns ``app.build_app``'s bound application, so a cluster serves exactly what the CLI does.

``args`` keys (values may be strings, as ``serve run key=value`` passes them; they are
converted to the option's type, and an unknown key is an error naming it): every
``ServeOptions`` field of a plain type (``model``, ``backend``, ``model_name``, ``replicas``,
``max_batch_size``, ``max_queued_requests``, ``request_timeout_s``, ``num_gpus``, ...), plus
``autoscaling_config`` (a dict, or ``auto``), ``batch_wait_ms``, ``device``, ``dtype``,
``compute_type``, ``speech_gate`` (on/off), ``vad`` (on/off), ``speech_times`` (on/off),
``split_pause`` (seconds, as the CLI's ``--split-pause``), ``model_aliases`` (comma separated) and ``api_key_env`` (the name of an environment variable of the Serve controller
holding the key; only its SHA-256 reaches the replicas).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

from whisper_tune.errors import UserError
from whisper_tune.serve.options import ServeOptions, hash_api_key, serve_backend_options

__all__ = ["app_builder", "options_from_args"]

_BACKEND_KEYS = ("device", "dtype", "compute_type")
_SPECIAL = (
    "autoscaling_config",
    "batch_wait_ms",
    "speech_gate",
    "vad",
    "speech_times",
    "split_pause",
    "model_aliases",
    "api_key_env",
)


def _flag(name: str, value: Any) -> bool:
    text = str(value).strip().lower()
    if isinstance(value, bool):
        return value
    if text in ("on", "true", "1", "yes"):
        return True
    if text in ("off", "false", "0", "no"):
        return False
    raise UserError(f"serve builder: {name} must be on or off, got {value!r}")


def _convert(name: str, value: Any, default: Any) -> Any:
    if value is None or isinstance(default, (dict, list, tuple)) or dataclasses.is_dataclass(default):
        return value
    try:
        if isinstance(default, bool):
            return _flag(name, value)
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
    except ValueError:
        raise UserError(f"serve builder: {name} must be a {type(default).__name__}, got {value!r}") from None
    if name in ("num_gpus", "num_cpus"):
        return float(value)
    if name == "inline_model":
        return _flag(name, value)
    return str(value)


def _autoscaling(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    text = str(value).strip()
    if text == "auto":
        return {}
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        raise UserError(f"serve builder: autoscaling_config must be a dict (or 'auto'), got {value!r}")
    return parsed


def options_from_args(args: dict[str, Any]) -> ServeOptions:
    """``ServeOptions`` from a builder's ``args`` (the rules in the module docstring)."""
    if not args.get("model"):
        raise UserError("serve builder: args need 'model' (bundled name, HF dir, run dir or CTranslate2 dir)")
    fields = {f.name: f for f in dataclasses.fields(ServeOptions)}
    plain = {n for n in fields if n not in ("backend_options", "decode_limits", "api_key_sha256")}
    unknown = sorted(set(args) - plain - set(_BACKEND_KEYS) - set(_SPECIAL))
    if unknown:
        raise UserError(f"serve builder: unknown args {', '.join(unknown)} (see whisper_tune.serve.builder)")
    probe = ServeOptions(model=str(args["model"]))
    kw: dict[str, Any] = {
        n: _convert(n, v, getattr(probe, n)) for n, v in args.items() if n in plain and n != "model_aliases"
    }
    if "autoscaling_config" in args:
        kw["autoscaling_config"] = _autoscaling(args["autoscaling_config"])
    if "batch_wait_ms" in args:
        kw["batch_wait_s"] = float(args["batch_wait_ms"]) / 1000.0
    if "model_aliases" in args:
        raw = args["model_aliases"]
        items = raw if isinstance(raw, (list, tuple)) else str(raw).split(",")
        kw["model_aliases"] = tuple(a.strip() for a in items if str(a).strip())
    if args.get("api_key_env"):
        key = os.environ.get(str(args["api_key_env"]), "").strip()
        if not key:
            raise UserError(
                f"serve builder: api_key_env {args['api_key_env']}: that variable is unset or empty"
            )
        kw["api_key_sha256"] = hash_api_key(key)
    backend_kw = {k: str(args[k]) for k in _BACKEND_KEYS if k in args}
    backend = serve_backend_options(
        batch_size=int(kw.get("max_batch_size", probe.max_batch_size)), **backend_kw
    )
    decode = backend.decode
    if "speech_gate" in args and not _flag("speech_gate", args["speech_gate"]):
        decode = dataclasses.replace(decode, gate=None)
    if "vad" in args:
        decode = dataclasses.replace(decode, vad=_flag("vad", args["vad"]))
    if "speech_times" in args:
        decode = dataclasses.replace(decode, speech_times=_flag("speech_times", args["speech_times"]))
    if "split_pause" in args:
        try:
            pause = float(str(args["split_pause"]).strip())
        except ValueError:
            raise UserError(
                f"serve builder: split_pause must be seconds, got {args['split_pause']!r}"
            ) from None
        decode = dataclasses.replace(decode, split_pause_s=pause)  # DecodeOptions checks it is > 0
    backend.decode = decode
    if backend_kw.get("device") == "cpu":
        kw.setdefault("num_gpus", 0.0)
    return ServeOptions(backend_options=backend, **kw)


def app_builder(args: dict[str, Any]) -> Any:
    """The bound whisper-tune application for ``serve run`` / a RayService config."""
    from whisper_tune.serve.app import build_app

    return build_app(options_from_args(args))
