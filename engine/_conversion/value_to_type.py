"""Decoded JSON -> the value a type hint asks for (temporalio's ``value_to_type`` semantics).

Dataclasses (nested, in lists and dicts), ``Optional``/unions, enums, ``datetime``, ``UUID``,
``Literal``, ``NewType``, tuples and sets. So that inputs can grow without breaking runs that
are already recorded: a dataclass field missing from an old payload takes its default, and a
key the dataclass does not know (written by newer code) is ignored.

Errors say where in the value the mismatch is: ``at .items[2].price: expected int or float,
found str 'ten'``.
"""

from __future__ import annotations

import collections
import collections.abc
import dataclasses
import datetime as _dt
import enum
import functools
import inspect
import types
import typing
import uuid
from abc import ABC, abstractmethod
from typing import Any, ClassVar, NewType, Sequence

__all__ = ["JSONTypeConverter", "JSONTypeConverterUnhandled", "value_to_type"]

JSONTypeConverterUnhandled = NewType("JSONTypeConverterUnhandled", object)


class JSONTypeConverter(ABC):
    """A hook for types the default conversion does not know (as in temporalio): return the
    converted value, or :attr:`Unhandled` to leave ``hint`` to the next converter."""

    Unhandled: ClassVar[JSONTypeConverterUnhandled] = JSONTypeConverterUnhandled(object())

    @abstractmethod
    def to_typed_value(self, hint: Any, value: Any) -> Any:
        """``value`` (from ``json.loads``) as ``hint``, or ``JSONTypeConverter.Unhandled``."""


class _Mismatch(TypeError):
    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"at {path}: {problem}" if path else problem)
        self.path = path
        self.problem = problem


def value_to_type(hint: Any, value: Any, custom_converters: Sequence[JSONTypeConverter] = ()) -> Any:
    """``value`` (as ``json.loads`` returns it) converted to ``hint``.

    Raises:
        TypeError: the value does not fit the hint; the message says where and why.
    """
    return _convert(hint, value, tuple(custom_converters), "")


def _found(value: Any) -> str:
    return f"found {type(value).__name__} {value!r:.60}"


def _name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _convert(hint: Any, value: Any, custom: tuple[JSONTypeConverter, ...], path: str) -> Any:
    hint = getattr(hint, "__sandbox_original__", hint)  # the workflow sandbox's stand-in for datetime & co
    for converter in custom:
        converted = converter.to_typed_value(hint, value)
        if converted is not JSONTypeConverter.Unhandled:
            return converted
    if hint is Any or hint is object or hint is None:
        return value
    if hint is type(None):
        if value is not None:
            raise _Mismatch(path, f"expected None, {_found(value)}")
        return None
    simple = _SIMPLE.get(hint)
    if simple is not None:
        return simple(value, path)
    supertype = getattr(hint, "__supertype__", None)  # NewType
    if supertype is not None:
        return _convert(supertype, value, custom, path)
    origin = typing.get_origin(hint) or hint
    args = typing.get_args(hint)
    if origin is typing.Literal:
        if value not in args:
            raise _Mismatch(path, f"expected one of {args!r}, {_found(value)}")
        return value
    if origin is typing.Union or origin is types.UnionType:
        if value is None and type(None) in args:
            return None
        problems = []
        for arg in args:
            try:
                return _convert(arg, value, custom, path)
            except (TypeError, ValueError) as e:
                problems.append(f"{_name(arg)}: {getattr(e, 'problem', e)}")
        raise _Mismatch(path, f"fits none of {_name(hint)} ({'; '.join(problems)})")
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return _dataclass(hint, value, custom, path)
    if inspect.isclass(origin) and issubclass(origin, collections.abc.Mapping):
        return _mapping(hint, origin, args, value, custom, path)
    if inspect.isclass(hint) and issubclass(hint, enum.Enum):
        try:
            return hint(value)
        except ValueError:
            known = ", ".join(repr(m.value) for m in hint)
            raise _Mismatch(path, f"{value!r:.60} is not a value of enum {hint.__name__} ({known})") from None
    if inspect.isclass(hint) and issubclass(hint, uuid.UUID):
        try:
            return hint(value)
        except (TypeError, ValueError, AttributeError):
            raise _Mismatch(path, f"expected a UUID string, {_found(value)}") from None
    if inspect.isclass(origin) and issubclass(origin, collections.abc.Iterable):
        return _iterable(hint, origin, args, value, custom, path)
    raise _Mismatch(path, f"cannot convert to {_name(hint)}: the type is not one JSON values can be converted to")


def _number(kind: type) -> Any:
    def convert(value: Any, path: str) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Mismatch(path, f"expected int or float, {_found(value)}")
        return kind(value)

    return convert


def _exact(kind: type) -> Any:
    def convert(value: Any, path: str) -> Any:
        if not isinstance(value, kind):
            raise _Mismatch(path, f"expected {kind.__name__}, {_found(value)}")
        return value

    return convert


def _iso(kind: Any) -> Any:
    def convert(value: Any, path: str) -> Any:
        if isinstance(value, kind):
            return value
        if not isinstance(value, str):
            raise _Mismatch(path, f"expected an ISO 8601 {kind.__name__} string, {_found(value)}")
        try:
            return kind.fromisoformat(value)
        except ValueError:
            raise _Mismatch(path, f"{value!r:.60} is not an ISO 8601 {kind.__name__}") from None

    return convert


def _bytes(value: Any, path: str) -> bytes:
    # JSON has no bytes; Python's json writes them (from a list of ints) as a list.
    if isinstance(value, (list, bytes)):
        try:
            return bytes(value)
        except (TypeError, ValueError):
            pass
    raise _Mismatch(path, f"expected a list of byte values, {_found(value)}")


_SIMPLE: dict[Any, Any] = {
    int: _number(int),
    float: _number(float),
    bool: _exact(bool),
    str: _exact(str),
    bytes: _bytes,
    _dt.datetime: _iso(_dt.datetime),
    _dt.date: _iso(_dt.date),
    _dt.time: _iso(_dt.time),
}


def _fields_of(cls: type) -> tuple[tuple[str, Any, bool, bool], ...]:
    """(name, type hint, init, required) per field; resolving hints is slow, so done once,
    except for the classes the workflow sandbox defines afresh for one run: a cache would
    keep each run's module alive."""
    if cls.__dict__.get("__sandbox_fresh__"):
        return _resolve_fields(cls)
    return _cached_fields(cls)


@functools.lru_cache(maxsize=1024)
def _cached_fields(cls: type) -> tuple[tuple[str, Any, bool, bool], ...]:
    return _resolve_fields(cls)


def _resolve_fields(cls: type) -> tuple[tuple[str, Any, bool, bool], ...]:
    try:
        hints = typing.get_type_hints(cls)
    except Exception as e:  # noqa: BLE001 - unresolvable string annotations (NameError, ...)
        raise TypeError(
            f"cannot resolve the field types of dataclass {cls.__qualname__} ({type(e).__name__}: {e}): "
            "define the types its fields use where the dataclass's module can see them (at module level)"
        ) from None
    return tuple(
        (
            f.name,
            hints.get(f.name, Any),
            f.init,
            f.init and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
        )
        for f in dataclasses.fields(cls)
    )


def _dataclass(hint: type, value: Any, custom: tuple[JSONTypeConverter, ...], path: str) -> Any:
    if not isinstance(value, dict):
        raise _Mismatch(path, f"expected an object for dataclass {hint.__name__}, {_found(value)}")
    init: dict[str, Any] = {}
    later: dict[str, Any] = {}
    for name, field_hint, is_init, required in _fields_of(hint):
        if name not in value:
            if required:
                raise _Mismatch(
                    path,
                    f"field {name!r} of {hint.__name__} is missing and has no default (payloads written "
                    f"before the field existed lack it: give it a default, e.g. {name}: ... = None)",
                )
            continue
        converted = _convert(field_hint, value[name], custom, f"{path}.{name}")
        (init if is_init else later)[name] = converted
    # Keys the dataclass does not know (newer code wrote them) are ignored, as temporalio does.
    obj = hint(**init)
    for name, field_value in later.items():
        object.__setattr__(obj, name, field_value)  # init=False fields; works on frozen ones too
    return obj


def _mapping(hint: Any, origin: Any, args: tuple[Any, ...], value: Any, custom: tuple[JSONTypeConverter, ...], path: str) -> Any:
    if not isinstance(value, collections.abc.Mapping):
        raise _Mismatch(path, f"expected an object for {_name(hint)}, {_found(value)}")
    per_key: dict[str, Any] | None = None
    if getattr(origin, "__required_keys__", None) or getattr(origin, "__optional_keys__", None):
        per_key = typing.get_type_hints(origin)  # a TypedDict
    key_type = args[0] if args and args[0] is not Any and not isinstance(args[0], typing.TypeVar) else None
    value_type = args[1] if len(args) > 1 and args[1] is not Any and not isinstance(args[1], typing.TypeVar) else None
    out: dict[Any, Any] = {}
    for key, item in value.items():
        if key_type is not None:
            key = _mapping_key(key_type, key, custom, path)
        item_type = per_key.get(key) if per_key is not None else value_type
        out[key] = _convert(item_type, item, custom, f"{path}[{key!r}]") if item_type is not None else item
    return hint(**out) if per_key is not None else out


def _mapping_key(key_type: Any, key: Any, custom: tuple[JSONTypeConverter, ...], path: str) -> Any:
    # JSON object keys are strings; Python's json writes int/float/bool/None keys as text.
    if isinstance(key, str):
        try:
            if key_type is int or key_type is float:
                key = key_type(key)
            elif inspect.isclass(key_type) and issubclass(key_type, enum.Enum) and issubclass(key_type, int):
                key = int(key)
            elif key_type is bool:
                key = {"true": True, "false": False}[key]
        except (KeyError, ValueError):
            raise _Mismatch(path, f"key {key!r:.60} is not a {_name(key_type)}") from None
    if isinstance(key_type, type) and isinstance(key, key_type) and not issubclass(key_type, enum.Enum):
        return key
    return _convert(key_type, key, custom, f"{path}[{key!r}]")


def _iterable(hint: Any, origin: Any, args: tuple[Any, ...], value: Any, custom: tuple[JSONTypeConverter, ...], path: str) -> Any:
    if isinstance(value, (str, bytes, collections.abc.Mapping)) or not isinstance(value, collections.abc.Iterable):
        raise _Mismatch(path, f"expected a list for {_name(hint)}, {_found(value)}")
    items = list(value)
    if args and not (len(args) == 1 and (isinstance(args[0], typing.TypeVar) or args[0] is Ellipsis)):
        converted = []
        for i, item in enumerate(items):
            if origin is not tuple:
                item_type = args[0]
            elif i < len(args) and args[i] is not Ellipsis:
                item_type = args[i]
            elif args[-1] is Ellipsis:
                item_type = args[-2]
            else:
                raise _Mismatch(path, f"{_name(hint)} holds {len(args)} values, found {len(items)}")
            converted.append(_convert(item_type, item, custom, f"{path}[{i}]"))
        items = converted
    if origin in (tuple, set, frozenset, collections.deque):
        return origin(items)
    return items
