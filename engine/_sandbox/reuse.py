"""Handing a sandbox's module copies to a later run when the run that had them left them as
they were loaded.

Running a workflow's module afresh for every run is what keeps one run's globals out of the
next (``loader``), and it is most of what a worker spends to rebuild a run it has not cached:
after a restart, a thousand runs rebuilt cost a thousand runs of the module, and the cycle
collector then frees a thousand copies. Most runs never touch their module's state: they read
constants, call functions, build their own objects. So once a run is over (its instance
evicted, none of its coroutines left to run), its copies go back to a pool if their state is
exactly what the load left: every global bound to the same object, every container with the
same items, every function with the same defaults, closure cells and attributes, every class
with the same attributes, down through whatever the module built. The next run of the type
takes them instead of running the module again. Anything changed, or anything the check
cannot see into (an object of a C type other than the plain immutable ones: its state is
hidden), and the copy is dropped: the next run loads afresh, as before.

What a run still cannot tell apart from a fresh load is only what no run should depend on:
the identity of the module's objects across runs, and side effects of the module's top level
outside its own namespace (a print at import), which happen once per load.
"""

from __future__ import annotations

import __future__
import datetime
import decimal
import enum
import fractions
import importlib.machinery
import logging
import operator
import re
import types
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from engine._sandbox.loader import Kit, Sandbox

# Objects whose state is their identity: immutable values, and things shared by every copy.
_LEAVES: frozenset[type] = frozenset({
    type(None), bool, int, float, complex, str, bytes, range, slice, type(Ellipsis), type(NotImplemented),
    datetime.datetime, datetime.date, datetime.time, datetime.timedelta, datetime.timezone,
    decimal.Decimal, fractions.Fraction, uuid.UUID, re.Pattern, types.CodeType,
    types.BuiltinFunctionType, types.MethodWrapperType, types.WrapperDescriptorType, types.MethodDescriptorType,
    types.ClassMethodDescriptorType, types.GetSetDescriptorType, types.MemberDescriptorType,
    types.GenericAlias, types.UnionType, types.MappingProxyType,
    # A module's __spec__ and __loader__: the import system's, not the module's.
    importlib.machinery.ModuleSpec, importlib.machinery.SourceFileLoader, importlib.machinery.SourcelessFileLoader,
    importlib.machinery.ExtensionFileLoader, importlib.machinery.NamespaceLoader, __future__._Feature,
})
# Process-wide objects a module only refers to (``logging.getLogger(__name__)`` is the same
# logger for a fresh load too), whose insides hold locks the check cannot read.
_SHARED: tuple[type, ...] = (logging.Logger, logging.LoggerAdapter, logging.Handler, enum.Enum)
_MOST = 4000  # objects looked at before giving up: a module this big is loaded afresh
_POOLED = 256  # copies kept per workflow type


_plain_types: dict[type, tuple[str, ...] | None] = {}


def _slots_of(kind: type) -> tuple[str, ...] | None:
    """The slot names of a class whose instances keep all their state in Python attributes
    (their ``__dict__`` and slots); None for any other (a C base such as ``random.Random``'s
    or ``dict``'s keeps state the check cannot read: its instances are bigger than their slots)."""
    known = _plain_types.get(kind, ())
    if known != ():
        return known
    names: list[str] = []
    for klass in kind.__mro__[:-1]:
        slots = klass.__dict__.get("__slots__", ())
        names.extend((slots,) if isinstance(slots, str) else slots)
    found: tuple[str, ...] | None = tuple(n for n in names if n not in ("__dict__", "__weakref__"))
    # An object's header, a pointer per slot, and the dict and weak-reference pointers.
    assert found is not None
    if kind.__itemsize__ or kind.__basicsize__ > object.__basicsize__ + 8 * len(found) + 16:
        found = None
    if len(_plain_types) > 4096:
        _plain_types.clear()
    _plain_types[kind] = found
    return found


class State:
    """The objects of a sandbox's module copies that code could change, each with what it
    held when the copies were loaded: ``unchanged`` compares them, by identity, in one pass.

    If every one of them still holds the same objects, nothing else became reachable either
    (whatever is reachable is reached through them), so the copies are as loaded."""

    __slots__ = ("dicts", "sequences", "functions", "classes", "instances")

    def __init__(self) -> None:
        self.dicts: list[tuple[Any, tuple[Any, ...], tuple[Any, ...]]] = []  # (dict, keys, values)
        self.sequences: list[tuple[Any, tuple[Any, ...]]] = []  # (list/tuple/set/deque, items)
        self.functions: list[tuple[types.FunctionType, tuple[Any, ...]]] = []
        self.classes: list[tuple[type, tuple[Any, ...], tuple[Any, ...], tuple[Any, ...]]] = []
        self.instances: list[tuple[Any, tuple[str, ...], tuple[Any, ...]]] = []

    def unchanged(self) -> bool:
        is_ = operator.is_
        for d, keys, values in self.dicts:
            if len(d) != len(values) or not all(map(is_, d.values(), values)) or tuple(d) != keys:
                return False
        for seq, items in self.sequences:
            if len(seq) != len(items) or not all(map(is_, seq, items)):
                return False
        for fn, held in self.functions:
            if not all(map(is_, _function_parts(fn), held)):
                return False
        for cls, keys, values, named in self.classes:
            attrs = cls.__dict__
            if len(attrs) != len(values) or not all(map(is_, attrs.values(), values)) or tuple(attrs) != keys:
                return False
            if not all(map(is_, (cls.__bases__, cls.__name__, cls.__qualname__), named)):
                return False
        for obj, slots, held in self.instances:
            if not all(map(is_, _instance_parts(obj, slots), held)):
                return False
        return True


def _function_parts(fn: types.FunctionType) -> tuple[Any, ...]:
    cells: tuple[Any, ...] = ()
    if fn.__closure__:
        cells = tuple(_contents(cell) for cell in fn.__closure__)
    return (fn.__code__, fn.__dict__, fn.__defaults__, fn.__kwdefaults__, fn.__name__, fn.__qualname__, *cells)


def _contents(cell: Any) -> Any:
    try:
        return cell.cell_contents
    except ValueError:  # an empty cell
        return _EMPTY


def _instance_parts(obj: Any, slots: tuple[str, ...]) -> tuple[Any, ...]:
    return (type(obj), getattr(obj, "__dict__", None), *(getattr(obj, name, _EMPTY) for name in slots))


_EMPTY = object()


def state_of(sandbox: Sandbox) -> State | None:
    """The state of the sandbox's module copies: every object reachable from their globals
    (and their ``sys.modules`` and builtins) that code could change; None when the check
    cannot be made (an object of a C type that keeps state out of sight, or too many)."""
    state = State()
    fresh = [sandbox.modules[name] for name in sandbox.fresh if name in sandbox.modules]
    fresh_dicts = {id(vars(module)) for module in fresh}
    names = set(sandbox.fresh)
    # The copies' own `sys.modules` and builtins: which object each name is (all shared, or
    # the copies themselves, walked below).
    for table in (sandbox.modules, sandbox.builtins):
        state.dicts.append((table, tuple(table), tuple(table.values())))
    seen: set[int] = {id(sandbox.modules), id(sandbox.builtins)}
    stack: list[Any] = [vars(module) for module in fresh]
    left = _MOST
    push, extend = stack.append, stack.extend
    while stack:
        obj = stack.pop()
        kind = type(obj)
        if kind in _LEAVES:
            continue
        key = id(obj)
        if key in seen:
            continue
        seen.add(key)
        left -= 1
        if left < 0:
            return None
        if kind is dict:
            values = tuple(obj.values())
            state.dicts.append((obj, tuple(obj), values))
            extend(values)
        elif kind is tuple or kind is frozenset:
            extend(obj)  # cannot change, but what they hold can
        elif kind is list or kind is set or kind is deque:
            items = tuple(obj)
            state.sequences.append((obj, items))
            extend(items)
        elif kind is types.FunctionType:
            if id(obj.__globals__) in fresh_dicts:
                parts = _function_parts(obj)
                state.functions.append((obj, parts))
                extend(parts[1:4])
                extend(parts[6:])
        elif isinstance(obj, type):
            attrs = obj.__dict__
            if attrs.get("__module__") in names:
                values = tuple(attrs.values())
                state.classes.append((obj, tuple(attrs), values, (obj.__bases__, obj.__name__, obj.__qualname__)))
                extend(values)
        elif kind is types.ModuleType:
            continue  # a copy's own modules are walked from the start; others are shared
        elif kind is staticmethod or kind is classmethod:
            push(obj.__func__)  # a wrapper cannot be rewrapped: its function is what can change
        elif kind is property:
            extend((obj.fget, obj.fset, obj.fdel))
        elif kind is types.MethodType:
            extend((obj.__self__, obj.__func__))  # a bound method cannot be rebound
        elif isinstance(obj, _SHARED):
            continue
        else:
            slots = _slots_of(kind)
            if slots is None:
                return None
            parts = _instance_parts(obj, slots)
            params = getattr(kind, "__dataclass_params__", None)
            if params is not None and params.frozen:
                # A frozen dataclass cannot change; what its fields hold can.
                attrs = parts[1]
                extend(attrs.values() if attrs is not None else ())
                extend(parts[2:])
                continue
            state.instances.append((obj, slots, parts))
            extend(parts[1:])
    return state


@dataclass(eq=False)
class Copy:
    """One load of a workflow's module(s), lent to one run at a time."""

    key: tuple[str, str]
    sandbox: Sandbox
    defn: Any  # the copy's WorkflowDefinition
    state: State
    pool: CopyPool
    lent: bool = field(default=True)

    def current(self, kit: Kit) -> bool:
        """Whether every module file is still the one the copy was loaded from."""
        for name, (origin, code) in self.sandbox.sources.items():
            if kit.code(name, origin) is not code:
                return False
        return True

    def give_back(self, instance: Any) -> None:
        """Called once the run's instance is evicted: pool the copy if the run left it as loaded."""
        if not self.lent:
            return
        self.lent = False
        if instance is not None and any(not task.done() for task in getattr(instance, "_tasks", ())):
            return  # a coroutine of the run could still run (its finally blocks, when freed)
        try:
            unchanged = self.state.unchanged()
        except Exception:  # noqa: BLE001 - an object that will not be read: take it as changed
            return
        if unchanged:
            self.pool.keep(self)


class CopyPool:
    """Copies given back, by workflow type (recipe key)."""

    def __init__(self) -> None:
        self._copies: dict[tuple[str, str], list[Copy]] = {}
        self.taken = 0  # copies handed out again instead of loading the module (tests, benchmarks)

    def take(self, key: tuple[str, str], kit: Kit) -> Copy | None:
        copies = self._copies.get(key)
        while copies:
            copy = copies.pop()
            if not copy.current(kit):
                copies.clear()  # a rewritten module: none of them is
                return None
            copy.lent = True
            self.taken += 1
            return copy
        return None

    def keep(self, copy: Copy) -> None:
        copies = self._copies.setdefault(copy.key, [])
        if len(copies) < _POOLED:
            copies.append(copy)
