"""The filesystem side of reading a manifest: its text in any Unicode encoding, its audio files.

Why the encoding: manifests come from spreadsheets and Windows tools as often as from scripts. Excel's
"Unicode text" export and PowerShell's ``Out-File`` write UTF-16 (with a byte-order mark), and
read as UTF-8 such a file is every row a ``bad_encoding``/``bad_json`` skip with no hint of
the cause. The encoding is taken from the byte-order mark (UTF-8, UTF-16 or UTF-32, either
byte order), or, without one, from the NUL bytes UTF-16 puts beside every ASCII character;
anything else is UTF-8. A line that cannot be decoded is still a counted skip naming
``file:line`` and the encoding tried, and its neighbours are kept.

Why the file checks: a file that exists but cannot be read must be reported as a permission
problem (a ``chmod`` to fix), not as missing (a path to fix), and a folder we may not enter
must not end the load with a traceback (``Path.is_file`` raises ``PermissionError``).
"""

from __future__ import annotations

import codecs
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = ["detect_encoding", "file_problem", "is_within", "manifest_lines"]

# Longest first: the UTF-32-LE mark starts with the UTF-16-LE one.
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_SNIFF_BYTES = 4096
_UNIT = {"utf-16-le": 2, "utf-16-be": 2, "utf-32-le": 4, "utf-32-be": 4}

#: ``on_bad(line_number, message)`` is told about each line that cannot be decoded.
OnBad = Callable[[int, str], None]


def detect_encoding(data: bytes) -> tuple[str, int]:
    """(codec name, length of the byte-order mark to drop) for a manifest's bytes."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return codec, len(bom)
    head = data[:_SNIFF_BYTES]
    if len(head) >= 4 and head.count(0) * 3 >= len(head):  # >= 1/3 NULs: not UTF-8 text
        odd_nuls, even_nuls = head[1::2].count(0), head[0::2].count(0)
        if odd_nuls > 4 * even_nuls:  # "a\0b\0": ASCII in UTF-16 little-endian
            return "utf-16-le", 0
        if even_nuls > 4 * odd_nuls:
            return "utf-16-be", 0
    return "utf-8", 0


def _utf8_lines(data: bytes, on_bad: OnBad) -> Iterator[tuple[int, str]]:
    for i, raw in enumerate(data.split(b"\n"), start=1):
        try:
            yield i, raw.rstrip(b"\r").decode("utf-8")
        except UnicodeDecodeError as exc:
            on_bad(i, f"line is not valid UTF-8 (byte {exc.start}: {exc.reason})")


def _wide_lines(data: bytes, codec: str, on_bad: OnBad) -> Iterator[tuple[int, str]]:
    """UTF-16/32: decoded whole (lone surrogates kept), then judged line by line."""
    unit = _UNIT[codec]
    cut = len(data) - len(data) % unit  # a torn last code unit spoils only the last line
    text = data[:cut].decode(codec, errors="surrogatepass")
    lines = text.split("\n")
    name = codec.upper()
    for i, line in enumerate(lines, start=1):
        line = line.rstrip("\r")
        try:
            line.encode("utf-8")
        except UnicodeEncodeError as exc:
            on_bad(i, f"line is not valid {name} (character {exc.start}: an unpaired surrogate)")
            continue
        if i == len(lines) and cut < len(data):
            on_bad(i, f"line is not valid {name} (the file ends inside a character)")
            continue
        yield i, line


def manifest_lines(path: Path, on_bad: OnBad) -> Iterator[tuple[int, str]]:
    """(line number, text) of each decodable line of ``path``; the others go to ``on_bad``."""
    data = path.read_bytes()
    codec, bom = detect_encoding(data)
    if codec == "utf-8":
        return _utf8_lines(data[bom:], on_bad)
    return _wide_lines(data[bom:], codec, on_bad)


def file_problem(path: Path) -> tuple[str, str] | None:
    """(reason, message) when ``path`` is not a regular file this process can open for reading."""
    try:
        mode = path.stat().st_mode
    except PermissionError as exc:  # a folder on the way that we may not enter
        return (
            "permission_denied",
            f"audio file {path}: permission denied ({exc.strerror}) on a folder in its path",
        )
    except OSError:
        return "missing_file", f"audio file {path} does not exist"
    if not stat.S_ISREG(mode):
        return "missing_file", f"audio file {path} is not a file"
    try:
        os.close(os.open(path, os.O_RDONLY))
    except PermissionError as exc:
        return "permission_denied", f"audio file {path} exists but cannot be read ({exc.strerror})"
    except OSError as exc:
        return "unreadable_audio", f"audio file {path} exists but cannot be opened ({exc.strerror})"
    return None


def is_within(path: Path, root: Path) -> bool:
    """``path`` is ``root`` or below it (both already resolved: the test is on the names)."""
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True
