"""Loopback networking helpers shared by the local Ray start-up, benchmarks and tests.

Why: everything this project starts on its own binds 127.0.0.1, on a port the OS picked, so
two runs (or a user's own Ray) on one machine never collide on fixed ports.
"""

from __future__ import annotations

import socket

__all__ = ["free_loopback_port"]


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the caller binds it next)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
