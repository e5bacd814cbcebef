"""What a person sees on the terminal: one progress display per stage, the rest in a log file.

Why: a demo or training run on Ray prints thousands of lines (two workers' progress bars
interleaved, every ``ray.train.report`` dict, Ray's start-up and actor warnings, transformers'
generation warnings, C++ components writing straight to file descriptor 2). Filtering those
one by one does not hold: the next release adds new ones. A :func:`quiet_session` therefore
sends *everything* written to this process's stdout and stderr (Python and native code alike,
and the output of the Ray processes it starts, which inherit them) into a log file, at the
file-descriptor level, and keeps a private handle on the real terminal for what is meant for
a person: the :class:`Stage` progress lines (a tqdm bar with ETA on a terminal, a few plain
lines otherwise), the command's own summary (:func:`say`), and whisper-tune's own warnings.
``verbose=True`` leaves the terminal as it is (everything shows) and still writes Python's
log records to the file. Without a session (library use, tests) :class:`Stage` and :func:`say`
print to ``sys.stdout`` and nothing is redirected.

Numbers for people: :func:`format_pct` (``14.53 %``) and :func:`format_duration`
(``5 min 12 s``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

__all__ = [
    "QuietSession",
    "Stage",
    "current_session",
    "format_duration",
    "format_pct",
    "progress_from_log",
    "quiet_session",
    "say",
    "stage",
]

_PLAIN_STEPS = 4  # without a terminal: a line at each quarter of a stage (plus start and end)
_PLAIN_MIN_GAP_S = 20.0
# tqdm formats; tqdm puts ", " before a postfix, so the note closes the bracket
_BAR = "{desc}: {percentage:3.0f}%|{bar:24}| {n_fmt}/{total_fmt}{unit} [{elapsed} < ETA {remaining}{postfix}]"
_BAR_NO_TOTAL = "{desc}: {elapsed} elapsed{postfix}"


def format_pct(x: Any, digits: int = 2) -> str:
    """``0.14533`` -> ``14.53 %``; anything not a number -> ``n/a``."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return "n/a"
    return f"{x * 100:.{digits}f} %"


def format_duration(seconds: Any) -> str:
    """``312`` -> ``5 min 12 s``; ``4.2`` -> ``4.2 s``; ``3725`` -> ``1 h 2 min``."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds != seconds:
        return "n/a"
    s = max(0.0, float(seconds))
    if s < 10:
        return f"{s:.1f} s"
    if s < 60:
        return f"{s:.0f} s"
    total = int(round(s))
    if total < 3600:
        m, sec = divmod(total, 60)
        return f"{m} min {sec} s" if sec else f"{m} min"
    h, rest = divmod(total, 3600)
    m = rest // 60
    return f"{h} h {m} min" if m else f"{h} h"


@dataclass
class QuietSession:
    """An active :func:`quiet_session`: where the log goes and the real terminal's stream."""

    log_path: Path
    terminal: IO[str]
    verbose: bool
    _log_fd: int = -1
    follow_run_dir: bool = False  # launch() moves the log into the run dir once it knows it

    def run_dir_known(self, run_dir: Path, name: str = "train.log") -> None:
        """Called by the training launcher: with ``follow_run_dir``, the log moves to ``run_dir/name``."""
        if self.follow_run_dir:
            self.move_log(Path(run_dir) / name)

    def move_log(self, path: Path) -> None:
        """Continue the log at ``path`` (e.g. once the run directory exists), keeping what was
        written so far at its top. A no-op when ``path`` is the current log."""
        path = Path(path)
        if path.resolve() == self.log_path.resolve():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        _flush_std()
        with path.open("ab") as dst, contextlib.suppress(OSError), self.log_path.open("rb") as src:
            shutil.copyfileobj(src, dst)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if not self.verbose:
            os.dup2(fd, 1)
            os.dup2(fd, 2)
        _retarget_file_handlers(self.log_path, path)
        old, self._log_fd = self._log_fd, fd
        if old >= 0:
            os.close(old)
        with contextlib.suppress(OSError):
            self.log_path.unlink()
        self.log_path = path


_SESSION: QuietSession | None = None


def current_session() -> QuietSession | None:
    """The active :func:`quiet_session`, or None."""
    return _SESSION


def _flush_std() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def _retarget_file_handlers(old: Path, new: Path) -> None:
    for h in logging.getLogger().handlers:
        if isinstance(h, logging.FileHandler) and Path(h.baseFilename) == old.resolve():
            h.acquire()
            try:
                h.close()
                h.baseFilename = str(new.resolve())
                h.stream = h._open()
            finally:
                h.release()


class _TerminalHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """whisper-tune's own warnings, to the real terminal as ``warning: ...``."""

    def __init__(self, stream: IO[str]) -> None:
        super().__init__(stream)
        self.setLevel(logging.WARNING)
        self.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))


@contextlib.contextmanager
def quiet_session(
    log_path: str | Path, *, verbose: bool = False, follow_run_dir: bool = False
) -> Iterator[QuietSession]:
    """Everything written to fds 1 and 2 goes to ``log_path`` until the block ends (see above).

    Nested use joins the outer session. Python's log records go to the file in both modes
    (``verbose``: they stay on the terminal too, nothing is redirected).
    """
    global _SESSION
    if _SESSION is not None:
        yield _SESSION
        return
    path = Path(log_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _flush_std()
    saved_out, saved_err = os.dup(1), os.dup(2)
    terminal = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8", errors="replace")
    log_fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    root = logging.getLogger()
    file_handler = logging.FileHandler(path, encoding="utf-8", delay=True)
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    added: list[tuple[logging.Logger, logging.Handler]] = []
    old_root_level = root.level
    session = QuietSession(path, terminal, verbose, log_fd, follow_run_dir)
    try:
        if not verbose:
            os.dup2(log_fd, 1)
            os.dup2(log_fd, 2)
            # the stream handlers already on the root logger now write into the file as well
            # (fd 2); they would double every record, so the file handler is left out then
            if not any(type(h) is logging.StreamHandler for h in root.handlers):
                root.addHandler(file_handler)
                added.append((root, file_handler))
            own = logging.getLogger("whisper_tune")
            term = _TerminalHandler(terminal)
            own.addHandler(term)
            added.append((own, term))
        else:
            root.addHandler(file_handler)
            added.append((root, file_handler))
        if root.level > logging.INFO or root.level == logging.NOTSET:
            root.setLevel(logging.INFO)
        logging.captureWarnings(True)
        _SESSION = session
        yield session
    finally:
        _SESSION = None
        logging.captureWarnings(False)
        for logger, handler in added:
            logger.removeHandler(handler)
            handler.close()
        root.setLevel(old_root_level)
        _flush_std()
        os.dup2(saved_out, 1)
        os.dup2(saved_err, 2)
        for fd in (saved_out, saved_err, session._log_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(Exception):
            terminal.close()


def _out() -> IO[str]:
    return _SESSION.terminal if _SESSION is not None else sys.stdout


def say(text: str = "") -> None:
    """A line for the person at the terminal (the session's terminal, else stdout)."""
    out = _out()
    out.write(text + "\n")
    out.flush()


class Stage:
    """One stage's progress display: ``update(done, total)`` from any thread, ``close()`` at the end.

    On a terminal: one tqdm bar (rate, ETA, a short note). Elsewhere (a pipe, a log, CI): a
    line when the stage starts, at each quarter (at most every 20 s) and when it ends.
    """

    def __init__(
        self, title: str, total: float | None = None, unit: str = "it", *, silent: bool = False
    ) -> None:
        self.title, self.total, self.unit = title, total, unit
        self.done = 0.0
        self.note = ""
        self.t0 = time.monotonic()
        self._lock = threading.Lock()
        self._out = _out()
        self._closed = silent
        self._bar: Any = None
        self._next_mark = 1
        self._last_line = 0.0
        if silent:
            return
        isatty = getattr(self._out, "isatty", lambda: False)
        if isatty():
            from tqdm import tqdm

            self._bar = tqdm(
                total=total,
                desc=title,
                unit=f" {unit}",
                file=self._out,
                dynamic_ncols=True,
                leave=True,
                bar_format=_BAR if total else _BAR_NO_TOTAL,
            )
            # the elapsed time moves on even while nothing reports (an evaluation, an export)
            threading.Thread(target=self._tick, name="whisper-tune-stage", daemon=True).start()
        else:
            self._line(f"{title} ...")

    def _tick(self) -> None:
        while True:
            time.sleep(1.0)
            with self._lock:
                if self._closed:
                    return
                with contextlib.suppress(Exception):
                    self._bar.refresh()

    def _line(self, text: str) -> None:
        self._out.write(text + "\n")
        self._out.flush()
        self._last_line = time.monotonic()

    def eta_s(self) -> float | None:
        """Seconds left at the mean rate so far (None without a total or progress)."""
        if not self.total or self.done <= 0:
            return None
        elapsed = time.monotonic() - self.t0
        return max(0.0, elapsed * (self.total - self.done) / self.done)

    def update(self, done: float, total: float | None = None, note: str | None = None) -> None:
        """Progress is ``done`` of ``total`` (absolute, not an increment)."""
        with self._lock:
            if self._closed:
                return
            if total:
                self.total = total
            self.done = min(done, self.total) if self.total else done
            if note is not None:
                self.note = note
            if self._bar is not None:
                if total and self._bar.total != total:
                    self._bar.total = total
                    self._bar.bar_format = _BAR  # now with a percentage and an ETA
                self._bar.n = self.done
                self._bar.set_postfix_str(self.note, refresh=False)
                self._bar.refresh()
                return
            if not self.total:
                return
            frac = self.done / self.total
            mark = int(frac * _PLAIN_STEPS)
            due = time.monotonic() - self._last_line >= _PLAIN_MIN_GAP_S
            if self._next_mark <= mark < _PLAIN_STEPS and due:
                self._next_mark = mark + 1
                self._line(
                    f"      {format_pct(frac)} ({self.done:g}/{self.total:g} {self.unit})"
                    f", ETA {format_duration(self.eta_s())}" + (f"; {self.note}" if self.note else "")
                )

    def close(self, summary: str = "") -> float:
        """End the display; returns the stage's seconds. ``summary``: shown after the time."""
        with self._lock:
            if self._closed:
                return time.monotonic() - self.t0
            self._closed = True
            seconds = time.monotonic() - self.t0
            if self._bar is not None:
                if self.total:
                    self._bar.n = self.total
                self._bar.set_postfix_str(summary or self.note, refresh=False)
                self._bar.close()
                return seconds
            self._line(f"      done in {format_duration(seconds)}" + (f"; {summary}" if summary else ""))
            return seconds


def stage(title: str, total: float | None = None, unit: str = "it") -> Stage:
    """A :class:`Stage` shown on the session's terminal; silent without a :func:`quiet_session`
    (library use and tests print nothing)."""
    return Stage(title, total, unit, silent=_SESSION is None)


class _LogProgress(logging.Handler):
    def __init__(self, stage: Stage, message: str, total: float | None) -> None:
        super().__init__(logging.INFO)
        self.stage, self.message, self.total, self.seen = stage, message, total, 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg != self.message:
            return
        args = record.args if isinstance(record.args, tuple) else ()
        if self.total is None:  # the record carries (done, total)
            if len(args) >= 2 and all(isinstance(a, (int, float)) for a in args[:2]):
                done, total = args[0], args[1]
                assert isinstance(done, (int, float)) and isinstance(total, (int, float))
                self.stage.update(float(done), float(total))
        else:  # each record is one unit of a known total
            self.seen += 1
            self.stage.update(self.seen, max(self.total or 0, self.seen))


@contextlib.contextmanager
def progress_from_log(
    stage: Stage, logger: str, message: str, *, total: float | None = None
) -> Iterator[None]:
    """Feed ``stage`` from a library's own progress log lines while the block runs.

    ``message``: the record's message template exactly (e.g. ``"rendered %d/%d chunks"``); with
    ``total`` None the record's first two arguments are (done, total), else each record counts
    one of ``total``. If the library changes its message, only the display degrades.
    """
    handler = _LogProgress(stage, message, total)
    target = logging.getLogger(logger)
    old_level = target.level
    target.addHandler(handler)
    if target.getEffectiveLevel() > logging.INFO:
        target.setLevel(logging.INFO)
    try:
        yield
    finally:
        target.removeHandler(handler)
        target.setLevel(old_level)
