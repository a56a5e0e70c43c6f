"""What ``@workflow.defn`` and ``@activity.defn`` record about user code."""

from __future__ import annotations

import functools
import inspect
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from engine.errors import DefinitionError


@dataclass(frozen=True)
class ActivityDefinition:
    name: str
    fn: Callable[..., Any]
    is_async: bool
    arg_types: tuple[Any, ...]
    result_type: Any


@dataclass(frozen=True)
class WorkflowDefinition:
    name: str
    cls: type
    run_fn: Callable[..., Any]
    sandboxed: bool
    arg_types: tuple[Any, ...]
    result_type: Any
    failure_exception_types: tuple[type[BaseException], ...] = ()
    signals: dict[str, Callable[..., Any]] = field(default_factory=dict)
    queries: dict[str, Callable[..., Any]] = field(default_factory=dict)
    updates: dict[str, Callable[..., Any]] = field(default_factory=dict)
    # The handlers declared with dynamic=True: they take what no named handler takes.
    dynamic_signal: Callable[..., Any] | None = None
    dynamic_query: Callable[..., Any] | None = None
    dynamic_update: Callable[..., Any] | None = None


@functools.lru_cache(maxsize=4096)
def compile_annotation(text: str) -> types.CodeType | None:
    """A string annotation (``from __future__ import annotations``) compiled once: the sandbox
    evaluates the same annotations for every run, and compiling is most of the cost."""
    try:
        return compile(text, "<annotation>", "eval")
    except SyntaxError:
        return None


def _type_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    """``typing.get_type_hints(fn)``, with string annotations evaluated from cached code."""
    hints = _plain_type_hints(fn)
    if hints is not None:
        return hints
    try:
        return typing.get_type_hints(fn)
    except Exception:  # noqa: BLE001 - unresolved forward refs just mean "no hint"
        return {}


def _plain_type_hints(fn: Callable[..., Any]) -> dict[str, Any] | None:
    """The hints of annotations that are plain expressions, each evaluated once in the
    function's globals; None for anything unusual (nested string annotations, ``Annotated``,
    an error), which typing itself resolves."""
    raw = getattr(fn, "__annotations__", None) or {}
    hints: dict[str, Any] = {}
    try:
        for name, value in raw.items():
            if isinstance(value, str):
                code = compile_annotation(value)
                if code is None:
                    return None
                value = eval(code, fn.__globals__)  # noqa: S307 - the function's own annotation
            if typing.get_origin(value) is typing.Annotated or any(
                isinstance(arg, (str, typing.ForwardRef)) for arg in typing.get_args(value)
            ):
                return None
            hints[name] = value
    except Exception:  # noqa: BLE001 - typing decides, as before
        return None
    return hints


def hints_of(fn: Callable[..., Any], *, skip_self: bool) -> tuple[tuple[Any, ...], Any]:
    """Parameter and return type hints, used to turn JSON back into dataclasses."""
    code: Any = getattr(fn, "__code__", None)
    plain = code is not None and not hasattr(fn, "__wrapped__")
    remember = plain
    if plain:
        cached = _hints_cache.get(id(code))
        if cached is not None and cached.code is code:
            remember = False
            if cached.volatile:
                pass
            elif cached.skip_self is skip_self and cached.holds_for(fn):
                return cached.hints
            else:
                # Its names meant other objects last time: a class of a sandboxed module, new in
                # every copy. Evaluated every time from now on, and no copy is kept alive here.
                _hints_cache[id(code)] = _CachedHints(code, skip_self, {}, (), (), ((), None), volatile=True)
    hints = _plain_type_hints(fn)
    exact = hints is not None  # evaluated from the annotations alone: what the cache checks
    if hints is None:
        hints = _type_hints(fn)
    if plain:
        # A plain function: its positional parameters without inspect.signature, which is
        # slow, and the sandbox decorates a fresh copy of each workflow class for every run.
        names = list(code.co_varnames[: code.co_argcount])
    else:
        names = [
            p.name
            for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    if skip_self and names:
        names = names[1:]
    found = tuple(hints.get(name) for name in names), hints.get("return")
    if remember and exact:
        _remember_hints(fn, skip_self, found)
    return found


_MISSING = object()


@dataclass(frozen=True)
class _CachedHints:
    """The hints of one function, and everything they were computed from.

    The sandbox runs a module's code afresh for every workflow run, so the same code object
    gets decorated again and again, each time as a new function with new globals. The hints
    are the same as last time exactly when the annotations are the same text and every name
    they look up is bound to the same object: a class of the sandboxed module is a new object
    in each run, so a hint that names one is always evaluated afresh, in that run."""

    code: types.CodeType
    skip_self: bool
    annotations: dict[str, str]
    in_globals: tuple[tuple[str, Any], ...]  # (name, the object the module's globals bind it to)
    in_builtins: tuple[tuple[str, Any], ...]  # not in the globals: (name, the builtin it is)
    hints: tuple[tuple[Any, ...], Any]
    volatile: bool = False  # found stale once: not cached

    def holds_for(self, fn: Any) -> bool:
        if getattr(fn, "__annotations__", None) != self.annotations:
            return False
        scope = fn.__globals__
        for name, value in self.in_globals:
            if scope.get(name, _MISSING) is not value:
                return False
        if self.in_builtins:
            builtins = _builtins_of(fn)
            for name, value in self.in_builtins:
                if name in scope or builtins.get(name, _MISSING) is not value:
                    return False
        return True


# id(code object) -> hints; the entry holds the code object, so an id is never reused while cached.
_hints_cache: dict[int, _CachedHints] = {}
_HINTS_CACHE_SIZE = 4096


def is_async(fn: Any) -> bool:
    """``inspect.iscoroutinefunction``, answered at once for a plain ``async def`` function
    (the decorators ask for every function of every fresh copy the sandbox builds)."""
    if type(fn) is types.FunctionType and fn.__code__.co_flags & inspect.CO_COROUTINE:
        return True
    return inspect.iscoroutinefunction(fn)


def _builtins_of(fn: Callable[..., Any]) -> dict[str, Any]:
    found = getattr(fn, "__builtins__", None)
    if isinstance(found, types.ModuleType):
        return vars(found)
    return found if isinstance(found, dict) else {}


def _remember_hints(fn: Callable[..., Any], skip_self: bool, hints: tuple[tuple[Any, ...], Any]) -> None:
    raw = getattr(fn, "__annotations__", None)
    if not isinstance(raw, dict):
        return
    names: set[str] = set()
    for value in raw.values():
        # Strings only (`from __future__ import annotations`): other annotations are objects
        # already, cheap to take as they are. Only names, attributes and subscripts
        # (`list[Order]`, `typing.Optional[int]`): a call or a nested scope in an annotation
        # may build new objects each time it is evaluated.
        if not isinstance(value, str) or "(" in value or "lambda" in value:
            return
        code = compile_annotation(value)
        if code is None or any(isinstance(c, types.CodeType) for c in code.co_consts):
            return
        names.update(code.co_names)
    scope, builtins = fn.__globals__, _builtins_of(fn)
    # A name in neither is an attribute's (`Optional` of `typing.Optional`): evaluation
    # succeeded, so it was never looked up as a global.
    in_globals = tuple((name, scope[name]) for name in sorted(names) if name in scope)
    in_builtins = tuple((name, builtins[name]) for name in sorted(names) if name not in scope and name in builtins)
    if len(_hints_cache) >= _HINTS_CACHE_SIZE:
        _hints_cache.clear()
    _hints_cache[id(fn.__code__)] = _CachedHints(fn.__code__, skip_self, dict(raw), in_globals, in_builtins, hints)


class _Attributes:
    """``getattr`` with a default, spelled as ``Mapping.get``."""

    __slots__ = ("_obj",)

    def __init__(self, obj: Any) -> None:
        self._obj = obj

    def get(self, name: str, default: Any = None) -> Any:
        return getattr(self._obj, name, default)


# Types whose instances have no attributes of their own and no markers: the values of a
# class's `__doc__`, `__module__`, `__dict__`, `__weakref__`, `__slots__` entries and constants.
_UNMARKED = frozenset({
    type(None), str, int, float, bool, tuple, frozenset, types.MappingProxyType,
    types.GetSetDescriptorType, types.MemberDescriptorType, types.WrapperDescriptorType,
})
_NO_MARKS: dict[str, Any] = {}


def markers_of(member: Any) -> Any:
    """Where the markers of ``@workflow.run``/``signal``/``query``/``update`` are found on a
    member, with a ``get(name, default)``. A plain function keeps its attributes in its
    ``__dict__``, and the values listed in ``_UNMARKED`` have none: looking there spares the
    exception each ``getattr`` that misses raises inside (this runs for every member of every
    fresh class the sandbox builds)."""
    kind = type(member)
    if kind is types.FunctionType:
        return member.__dict__
    if kind in _UNMARKED:
        return _NO_MARKS
    return _Attributes(member)


def check_problems(what: str, problems: Sequence[str]) -> None:
    if problems:
        raise DefinitionError(f"Invalid {what}:\n  - " + "\n  - ".join(problems))
