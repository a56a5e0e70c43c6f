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


@functools.lru_cache(maxsize=4096)
def compile_annotation(text: str) -> types.CodeType | None:
    """A string annotation (``from __future__ import annotations``) compiled once: the sandbox
    evaluates the same annotations for every run, and compiling is most of the cost."""
    try:
        return compile(text, "<annotation>", "eval")
    except SyntaxError:
        return None


def _type_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    """``typing.get_type_hints(fn)``, with string annotations evaluated from cached code.
    Anything unusual (nested string annotations, ``Annotated``) goes to typing itself."""
    raw = getattr(fn, "__annotations__", None) or {}
    hints: dict[str, Any] = {}
    try:
        for name, value in raw.items():
            if isinstance(value, str):
                code = compile_annotation(value)
                if code is None:
                    raise SyntaxError(value)
                value = eval(code, fn.__globals__)  # noqa: S307 - the function's own annotation
            if typing.get_origin(value) is typing.Annotated or any(
                isinstance(arg, (str, typing.ForwardRef)) for arg in typing.get_args(value)
            ):
                raise TypeError("let typing resolve it")
            hints[name] = value
        return hints
    except Exception:  # noqa: BLE001 - typing decides, as before
        try:
            return typing.get_type_hints(fn)
        except Exception:  # noqa: BLE001 - unresolved forward refs just mean "no hint"
            return {}


def hints_of(fn: Callable[..., Any], *, skip_self: bool) -> tuple[tuple[Any, ...], Any]:
    """Parameter and return type hints, used to turn JSON back into dataclasses."""
    hints = _type_hints(fn)
    code = getattr(fn, "__code__", None)
    if code is not None and not hasattr(fn, "__wrapped__"):
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
    return tuple(hints.get(name) for name in names), hints.get("return")


def activity_definition(fn: Callable[..., Any]) -> ActivityDefinition:
    defn = getattr(fn, "__activity_definition__", None)
    if defn is None:
        raise DefinitionError(
            f"{getattr(fn, '__qualname__', fn)!r} is not an activity: decorate it with "
            "@activity.defn (from engine import activity)."
        )
    return defn


def workflow_definition(cls: Any) -> WorkflowDefinition:
    target = cls
    if not isinstance(cls, type):
        # Accept ``MyWorkflow.run`` as temporalio does.
        qual = getattr(cls, "__qualname__", "")
        owner = getattr(inspect.getmodule(cls), qual.rsplit(".", 1)[0], None) if "." in qual else None
        target = owner if isinstance(owner, type) else getattr(cls, "__workflow_class__", None)
    defn = getattr(target, "__workflow_definition__", None) if target is not None else None
    if defn is None and isinstance(target, type) and hasattr(target, "__temporal_workflow_definition"):
        # Written with temporalio's imports: loaded in the sandbox, which maps them onto ours.
        from engine._sandbox_runner import translated_definition

        defn = translated_definition(target)
    if defn is None:
        raise DefinitionError(
            f"{getattr(cls, '__qualname__', cls)!r} is not a workflow: decorate the class with "
            "@workflow.defn and its entry method with @workflow.run."
        )
    return defn


def check_problems(what: str, problems: Sequence[str]) -> None:
    if problems:
        raise DefinitionError(f"Invalid {what}:\n  - " + "\n  - ".join(problems))
