"""What the ingress hands the ``Model`` deployment (``Job``) and gets back (a Transcript or a
``Failure``), and which model ids a request may name.

Why its own module: ``Model`` batches jobs that share their decoding options (``Job.key``)
through one ``transcribe_batch`` call, so the options a request sets (language, prompt,
task, temperature ladder, word timestamps, hotwords) must travel as one hashable value;
and the ``model`` field rule (the served id and its aliases, OpenAI's ``model_not_found``
404 otherwise) is shared by the transcription and translation routes and ``/v1/models``.
Plain dataclasses, no Ray: unit-tested directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from whisper_tune.inference.options import temperature_ladder

if TYPE_CHECKING:
    from whisper_tune.serve.limits import Fields

__all__ = ["Failure", "Job", "served_ids"]


@dataclass
class Job:
    """One request's audio and decoding options."""

    audio: Any
    language: str | None
    prompt: str | None
    timestamps: bool
    deadline: float  # time.monotonic() after which nobody waits for the result
    task: str = "transcribe"
    temperatures: tuple[float, ...] = (0.0,)
    word_timestamps: bool = False
    hotwords: str | None = None
    levels: Any = None  # a stereo upload's per-channel power (data.channel_levels): not a decode option

    @classmethod
    def for_request(
        cls, audio: Any, levels: Any, fields: Fields, language: str | None, deadline: float, task: str
    ) -> Job:
        """The job of a checked request (its form ``fields``, the language it resolved to)."""
        temps = temperature_ladder(fields.temperature)
        return cls(
            audio,
            language,
            fields.prompt,
            fields.timed,
            deadline,
            task,
            temps,
            fields.words,
            fields.hotwords,
            levels,
        )

    def key(self) -> tuple[Any, ...]:
        """Jobs with equal keys decode together (one forward pass per batch of their windows)."""
        return (
            self.language,
            self.prompt,
            self.timestamps,
            self.task,
            self.temperatures,
            self.word_timestamps,
            self.hotwords,
        )

    def changes(self) -> dict[str, Any]:
        """``DecodeOptions`` fields for ``Backend.transcribe_batch`` beyond its positional ones."""
        return {
            "task": self.task,
            "temperatures": self.temperatures,
            "word_timestamps": self.word_timestamps,
            "hotwords": self.hotwords,
        }


@dataclass
class Failure:
    """A request the model could not serve: ``deadline`` (-> 408) or ``server`` (-> 500)."""

    kind: str
    message: str


def served_ids(model_name: str, spec: str, aliases: tuple[str, ...]) -> list[str]:
    """The ids a request's ``model`` field may name: the reported name first, then the spec it
    was loaded from when that is a name (``tiny.en``; a directory or URI is not listed: no server
    paths in responses) and the aliases (``whisper-1`` by default: clients written for OpenAI send it)."""
    named = spec if spec and not any(c in spec for c in "/\\:") else ""
    return list(dict.fromkeys(x for x in (model_name, named, *aliases) if x))
