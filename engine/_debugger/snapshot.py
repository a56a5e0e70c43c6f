"""Safe, bounded text snapshots of workflow values, for the replay trace.

A trace keeps the state of the code at every step, so values are turned into text at once
(the objects change later). User code is not trusted here: its ``__repr__`` may raise, loop,
build a huge string, or touch something the sandbox forbids. Builtin containers, dataclasses
and objects with the default ``repr`` are written by this module itself, with caps on depth,
items and length; any other ``repr`` is called inside a guard, its text cut to the cap, and a
failure falls back to ``<Type at 0x..>``.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import decimal
import enum
import fractions
import types
import uuid
from typing import Any, Callable, Mapping

__all__ = ["safe_repr", "snapshot_mapping", "MAX_LENGTH", "MAX_DEPTH", "MAX_ITEMS"]

MAX_LENGTH = 160
MAX_DEPTH = 3
MAX_ITEMS = 8

# Types whose repr is the interpreter's or the standard library's own: cheap and safe.
_PLAIN: frozenset[type] = frozenset({int, float, complex, bool, type(None), str, bytes, range, type(Ellipsis)})
_LIBRARY_REPRS: frozenset[type] = frozenset(
    {_dt.datetime, _dt.date, _dt.time, _dt.timedelta, _dt.timezone, decimal.Decimal, fractions.Fraction, uuid.UUID}
)
_SAFE_REPR_METHODS: frozenset[Any] = frozenset(
    {object.__repr__, enum.Enum.__repr__, enum.Flag.__repr__, type.__repr__, types.FunctionType.__repr__}
)
_MAX_NAMES = 40
_BRACKETS: dict[type, tuple[str, str]] = {list: ("[", "]"), tuple: ("(", ")"), set: ("{", "}"), frozenset: ("frozenset({", "})"), dict: ("{", "}")}
_EMPTY: dict[type, str] = {list: "[]", tuple: "()", set: "set()", frozenset: "frozenset()", dict: "{}"}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 1, 1)] + "…"


def _address(value: Any) -> str:
    return f"<{type(value).__name__} at {id(value):#x}>"


def safe_repr(value: Any, limit: int = MAX_LENGTH, depth: int = MAX_DEPTH, guard: Callable[[], None] | None = None) -> str:
    """``repr(value)`` that never raises and is at most ``limit`` characters long.

    Containers go ``depth`` levels deep and show ``MAX_ITEMS`` items each. ``guard`` runs
    after any user ``__repr__`` (even a failed one): the trace uses it to undo what such a
    call did to the workflow task (a restricted call the sandbox reported, say)."""
    return _cut(_repr(value, limit, depth, guard, set()), limit)


def _repr(value: Any, limit: int, depth: int, guard: Callable[[], None] | None, seen: set[int]) -> str:
    kind = type(value)
    if kind in _PLAIN:
        if kind is str or kind is bytes:
            return repr(value[:limit]) + ("…" if len(value) > limit else "")
        return repr(value)
    if kind in _LIBRARY_REPRS:
        return repr(value)
    if id(value) in seen:
        return "…"  # a container that holds itself
    if kind in (list, tuple, set, frozenset, dict):
        return _container(value, kind, limit, depth, guard, seen)
    if dataclasses.is_dataclass(value) and not isinstance(value, type) and _generated_repr(kind):
        return _dataclass(value, limit, depth, guard, seen)
    method = getattr(kind, "__repr__", object.__repr__)
    if method is object.__repr__:
        return _address(value)
    if method in _SAFE_REPR_METHODS:
        try:
            return _cut(method(value), limit)
        except Exception:  # noqa: BLE001 - an enum with a broken value, say
            return _address(value)
    return _guarded(value, limit, guard)


def _guarded(value: Any, limit: int, guard: Callable[[], None] | None) -> str:
    try:
        text = repr(value)
        if not isinstance(text, str):
            return _address(value)
        return _cut(text, limit)
    except BaseException:  # noqa: BLE001 - any failure of user code: show the type instead
        return _address(value)
    finally:
        if guard is not None:
            guard()


def _generated_repr(kind: type) -> bool:
    # A dataclass whose __repr__ @dataclass wrote (from source text it compiles, so its code
    # comes from "<string>"): its fields are written here instead, each one bounded.
    params = getattr(kind, "__dataclass_params__", None)
    if params is None or not getattr(params, "repr", False):
        return False
    method = getattr(kind, "__repr__", None)
    code = getattr(getattr(method, "__wrapped__", method), "__code__", None)
    return code is not None and code.co_filename == "<string>"


def _container(value: Any, kind: type, limit: int, depth: int, guard: Callable[[], None] | None, seen: set[int]) -> str:
    opening, closing = _BRACKETS[kind]
    if not value:
        return _EMPTY[kind]
    if depth <= 0:
        return f"{opening}…{closing}"
    seen.add(id(value))
    parts: list[str] = []
    used = len(opening) + len(closing)
    items = value.items() if kind is dict else value
    for index, item in enumerate(items):
        if index >= MAX_ITEMS or used > limit:
            parts.append(f"… {len(value) - index} more")
            break
        if kind is dict:
            key, inner = item
            text = f"{_repr(key, limit, depth - 1, guard, seen)}: {_repr(inner, limit, depth - 1, guard, seen)}"
        else:
            text = _repr(item, limit, depth - 1, guard, seen)
        parts.append(text)
        used += len(text) + 2
    seen.discard(id(value))
    trailing = "," if kind is tuple and len(value) == 1 else ""
    return opening + ", ".join(parts) + trailing + closing


def _dataclass(value: Any, limit: int, depth: int, guard: Callable[[], None] | None, seen: set[int]) -> str:
    name = type(value).__name__
    if depth <= 0:
        return f"{name}(…)"
    seen.add(id(value))
    parts: list[str] = []
    used = len(name) + 2
    for field in dataclasses.fields(value):
        if not field.repr:
            continue
        if used > limit:
            parts.append("…")
            break
        try:
            inner = getattr(value, field.name)
        except Exception:  # noqa: BLE001 - a property-backed field that raises
            text = f"{field.name}=<unreadable>"
        else:
            text = f"{field.name}={_repr(inner, limit, depth - 1, guard, seen)}"
        parts.append(text)
        used += len(text) + 2
    seen.discard(id(value))
    return f"{name}({', '.join(parts)})"


def snapshot_mapping(
    values: Mapping[str, Any], *, skip: Callable[[str, Any], bool] | None = None, guard: Callable[[], None] | None = None
) -> dict[str, str]:
    """Name -> ``safe_repr`` text for the first names of ``values`` (dunder names left out)."""
    out: dict[str, str] = {}
    hidden = 0
    for name, value in values.items():
        if not isinstance(name, str) or (name.startswith("__") and name.endswith("__")):
            continue
        if skip is not None and skip(name, value):
            continue
        if len(out) >= _MAX_NAMES:
            hidden += 1
            continue
        out[name] = safe_repr(value, guard=guard)
    if hidden:
        out["…"] = f"{hidden} more"
    return out
