"""A run's signal, query and update handlers, as temporalio keeps them.

``@workflow.signal/query/update`` methods are the class's handlers; workflow code may add,
replace or remove handlers while it runs (``workflow.set_signal_handler("name", fn)``), and a
handler with no name (``dynamic=True``, ``set_dynamic_signal_handler``) takes every message
that no named handler takes, as ``(name, Sequence[RawValue])``. A signal that finds no
handler is kept, in arrival order, and delivered the moment a handler that takes it is set:
Temporal records the signal in history whether or not the code listens yet.

The table starts as the class's definition and only copies what code changes, so a run
that never calls ``set_*_handler`` costs one object.
"""

from __future__ import annotations

import collections.abc
import inspect
import typing
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from engine._conversion.payload_converter import PayloadConverter, from_json_payloads
from engine._runtime.definitions import WorkflowDefinition, hints_of
from engine.common import RawValue
from engine.errors import DefinitionError, WorkflowQueryFailedError

if TYPE_CHECKING:
    from engine.history import HistoryEvent

KINDS = ("signal", "query", "update")
_DECLARED = {"signal": "signals", "query": "queries", "update": "updates"}  # WorkflowDefinition's tables


@dataclass(frozen=True)
class Handler:
    """One handler: ``name`` is None for the dynamic one; ``is_method`` when ``fn`` is a
    method of the workflow class (called with the workflow object first)."""

    kind: str
    name: str | None
    fn: Callable[..., Any]
    is_method: bool
    validator: Callable[..., Any] | None = None
    dynamic_vararg: bool = False  # the old dynamic form ``(name, *args)``, still accepted

    @classmethod
    def make(cls, kind: str, name: str | None, fn: Callable[..., Any], *, is_method: bool, validator: Callable[..., Any] | None = None) -> Handler:
        if not callable(fn):
            raise TypeError(f"A {kind} handler must be callable, not {type(fn).__name__} {fn!r:.60}.")
        vararg = False
        if name is None:
            vararg = _check_dynamic(kind, fn, is_method)
        return cls(kind, name, fn, is_method, validator, vararg)

    def arg_types(self) -> tuple[Any, ...]:
        return _hints(self.fn, self.is_method)

    def bound(self, obj: Any) -> Callable[..., Any]:
        """What ``workflow.get_signal_handler`` and friends return: a callable of the arguments."""
        return self.fn.__get__(obj) if self.is_method and hasattr(self.fn, "__get__") else self.fn

    def call(self, obj: Any, args: Sequence[Any]) -> Any:
        return self.fn(obj, *args) if self.is_method else self.fn(*args)

    def validate(self, obj: Any, args: Sequence[Any]) -> None:
        if self.validator is not None:
            self.validator(obj, *args) if self.is_method else self.validator(*args)

    def arguments(self, converter: PayloadConverter, sent_name: str, payloads: Mapping[str, Any] | None, what: str) -> list[Any]:
        """The handler's arguments from the message's payloads: converted to its parameter
        types, or, for a dynamic handler, the message's name and its payloads left raw."""
        if self.name is not None:
            return from_json_payloads(converter, payloads, self.arg_types(), what)
        count = len((payloads or {}).get("payloads") or ())
        if self.dynamic_vararg:
            return [sent_name, *from_json_payloads(converter, payloads, self.arg_types()[1:], what)]
        return [sent_name, from_json_payloads(converter, payloads, (RawValue,) * count, what)]


def _hints(fn: Callable[..., Any], is_method: bool) -> tuple[Any, ...]:
    if inspect.ismethod(fn):  # a bound method given to set_*_handler: its self is bound already
        return hints_of(fn.__func__, skip_self=True)[0]
    if inspect.isfunction(fn):
        return hints_of(fn, skip_self=is_method)[0]
    return ()  # another callable (a partial, an object): its arguments come unconverted


def _check_dynamic(kind: str, fn: Callable[..., Any], is_method: bool) -> bool:
    """temporalio's rule: ``(name: str, args: Sequence[RawValue])`` after ``self``; True for
    the older ``(name, *args)`` form (a deprecation warning for signals and queries)."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        params = []
    if is_method and not inspect.ismethod(fn):
        params = params[1:]
    if len(params) == 2 and params[0].kind is params[0].POSITIONAL_OR_KEYWORD and params[1].kind is params[1].VAR_POSITIONAL:
        if kind == "update":
            raise DefinitionError(
                f"dynamic update handler {getattr(fn, '__qualname__', fn)!r} takes (name, *args); dynamic updates take "
                "(name: str, args: Sequence[RawValue])"
            )
        warnings.warn(
            f"Dynamic {kind} handlers of the form (name, *args) are deprecated (as in temporalio): take "
            "(name: str, args: Sequence[RawValue])",
            DeprecationWarning,
            stacklevel=4,
        )
        return True
    types = _hints(fn, is_method)
    if len(params) != 2 or len(types) != 2 or types[0] is not str or not _is_raw_sequence(types[1]):
        raise DefinitionError(
            f"dynamic {kind} handler {getattr(fn, '__qualname__', fn)!r} must take (name: str, args: Sequence[RawValue])"
            + (" after self" if is_method else "")
            + ", annotated so; it gets the name it was sent by and its arguments unconverted "
            "(workflow.payload_converter().from_payload(args[0].payload, int))"
        )
    return False


def _is_raw_sequence(hint: Any) -> bool:
    return typing.get_origin(hint) in (collections.abc.Sequence,) and typing.get_args(hint) == (RawValue,)


class HandlerTable:
    """The handlers of one run, by kind and name (None: the dynamic one)."""

    def __init__(self, defn: WorkflowDefinition) -> None:
        self._defn = defn
        self._set: dict[str, dict[str | None, Handler | None]] | None = None  # what code set (None: removed)
        self._made: dict[tuple[str, str | None], Handler] = {}
        self.buffered: list[tuple[str, HistoryEvent]] = []  # signals no handler took yet, in order

    def _declared(self, kind: str) -> Mapping[str, Callable[..., Any]]:
        return getattr(self._defn, _DECLARED[kind])  # type: ignore[no-any-return]

    def own(self, kind: str, name: str | None) -> Handler | None:
        """The handler registered under exactly ``name`` (None: the dynamic one)."""
        if self._set is not None and name in self._set[kind]:
            return self._set[kind][name]
        made = self._made.get((kind, name))
        if made is not None:
            return made
        fn = self._declared(kind).get(name) if name is not None else getattr(self._defn, f"dynamic_{kind}", None)
        if fn is None:
            return None
        validator = getattr(fn, "__update_validator__", None) if kind == "update" else None
        made = Handler.make(kind, name, fn, is_method=True, validator=validator)
        self._made[(kind, name)] = made
        return made

    def find(self, kind: str, name: str) -> Handler | None:
        """The handler a message named ``name`` goes to: its own, else the dynamic one."""
        return self.own(kind, name) or self.own(kind, None)

    def missing_query(self, workflow_type: str, name: str) -> WorkflowQueryFailedError:
        """The error for a query no handler takes: temporalio's words (a client written for
        Temporal may look for them), then what to do about it."""
        known = self.names("query")
        return WorkflowQueryFailedError(
            f"Query handler for '{name}' expected but not found, known queries: [{' '.join(known)}]. "
            f"Workflow {workflow_type} has no query {name!r}: ask one it has (names are case-sensitive), "
            f"or add a @workflow.query method named {name!r} and restart the worker."
        )

    def names(self, kind: str) -> list[str]:
        found = set(self._declared(kind))
        for name, handler in (self._set or {}).get(kind, {}).items():
            if handler is None:
                found.discard(name)  # type: ignore[arg-type]
            elif name is not None:
                found.add(name)
        return sorted(found)

    def set(self, kind: str, name: str | None, fn: Callable[..., Any] | None, validator: Callable[..., Any] | None = None) -> Handler | None:
        if name is not None and not isinstance(name, str):
            raise TypeError(f"A {kind} handler's name must be a string, not {type(name).__name__}.")
        if validator is not None and kind != "update":
            raise TypeError("Only update handlers take a validator.")
        if kind == "query" and fn is not None and inspect.iscoroutinefunction(fn):
            raise TypeError(f"Query handler {getattr(fn, '__qualname__', fn)!r} must be a plain 'def': queries read state, they cannot wait.")
        handler = Handler.make(kind, name, fn, is_method=False, validator=validator) if fn is not None else None
        if self._set is None:
            self._set = {k: {} for k in KINDS}
        self._set[kind][name] = handler
        return handler

    def take_buffered(self, name: str | None) -> list[HistoryEvent]:
        """The kept signals a handler just set for ``name`` (None: any name) takes, in order."""
        taken = [event for sent, event in self.buffered if name is None or sent == name]
        self.buffered = [] if name is None else [(sent, event) for sent, event in self.buffered if sent != name]
        return taken
