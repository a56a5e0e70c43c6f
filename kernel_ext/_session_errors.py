"""The error of a session verb that the user can fix (the magics show it as a ``UsageError``)."""

from __future__ import annotations


class SessionError(Exception):
    """A mistake the user can fix (unknown worker, unknown workflow type, ...).

    The message says what is wrong and what to do; the magics show it as a ``UsageError``.
    """
