"""Errors a user can act on.

Why: bad input must end with a clear message naming the file/line/field, never a
traceback. Anything raising ``UserError`` (or a subclass) is printed by the CLI as
``error: ...`` with exit code 2.
"""

from __future__ import annotations

__all__ = ["UserError", "ModelNotFoundError", "DataError"]


class UserError(Exception):
    """Something the user can fix; the message says what and where."""


class ModelNotFoundError(UserError):
    """A model name/path/id could not be resolved."""


class DataError(UserError):
    """A data set or manifest cannot be used at all (not a per-row skip)."""
