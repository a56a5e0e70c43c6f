"""``workflow.set_signal_handler`` and its siblings (temporalio's): handlers that workflow
code registers, replaces or removes while it runs (engine/_runtime/handler_table.py keeps them).

A handler set here is a plain callable of the message's arguments (a bound method, a
function, a lambda); ``None`` removes the handler. The dynamic ones (no name) take every
message of their kind that no named handler takes, as ``(name, Sequence[RawValue])``.
"""

from __future__ import annotations

from typing import Any, Callable

from engine._runtime.event_loop import current


def _table() -> Any:
    return current().handlers


def _get(kind: str, name: str | None) -> Callable[..., Any] | None:
    instance = current()
    handler = instance.handlers.own(kind, name)
    return handler.bound(instance._object) if handler is not None else None


def get_signal_handler(name: str) -> Callable[..., Any] | None:
    """The handler of signal ``name`` (set here or declared with ``@workflow.signal``), else
    None; never the dynamic handler."""
    return _get("signal", name)


def set_signal_handler(name: str, handler: Callable[..., Any] | None) -> None:
    """Handle signal ``name`` with ``handler`` from now on (None: stop handling it), in place
    of any earlier one, ``@workflow.signal`` methods included. Signals of that name that came
    while it had no handler are handed to it at once, in the order they came."""
    current().set_signal_handler(name, handler)


def get_dynamic_signal_handler() -> Callable[..., Any] | None:
    """The dynamic signal handler (set here or declared with ``dynamic=True``), else None."""
    return _get("signal", None)


def set_dynamic_signal_handler(handler: Callable[..., Any] | None) -> None:
    """Handle every signal no named handler takes with ``handler(name, args)``, ``args`` a
    sequence of ``RawValue`` (None: stop). Signals that came with no handler are handed to it at once."""
    current().set_signal_handler(None, handler)


def get_query_handler(name: str) -> Callable[..., Any] | None:
    """The handler of query ``name``, else None; never the dynamic handler."""
    return _get("query", name)


def set_query_handler(name: str, handler: Callable[..., Any] | None) -> None:
    """Answer query ``name`` with ``handler`` (a plain function: queries cannot wait); None removes it."""
    _table().set("query", name, handler)


def get_dynamic_query_handler() -> Callable[..., Any] | None:
    """The dynamic query handler, else None."""
    return _get("query", None)


def set_dynamic_query_handler(handler: Callable[..., Any] | None) -> None:
    """Answer every query no named handler answers with ``handler(name, args)`` (None: stop)."""
    _table().set("query", None, handler)


def get_update_handler(name: str) -> Callable[..., Any] | None:
    """The handler of update ``name``, else None; never the dynamic handler."""
    return _get("update", name)


def set_update_handler(name: str, handler: Callable[..., Any] | None, *, validator: Callable[..., Any] | None = None) -> None:
    """Handle update ``name`` with ``handler`` (``validator``, if given, runs first and rejects
    the update by raising); None removes it. Updates are not kept: one sent while no handler
    takes it is rejected, as in Temporal."""
    _table().set("update", name, handler, validator)


def get_dynamic_update_handler() -> Callable[..., Any] | None:
    """The dynamic update handler, else None."""
    return _get("update", None)


def set_dynamic_update_handler(handler: Callable[..., Any] | None, *, validator: Callable[..., Any] | None = None) -> None:
    """Handle every update no named handler takes with ``handler(name, args)`` (None: stop)."""
    _table().set("update", None, handler, validator)
