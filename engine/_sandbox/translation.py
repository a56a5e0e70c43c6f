"""The definition of user code, whichever decorators wrote it.

The engine's ``@workflow.defn`` and ``@activity.defn`` leave their definition on the class or
function (engine/_runtime/definitions.py). Code written with the real temporalio's decorators is
read as the engine's: an activity from the definition temporalio left on it, a workflow by
loading its module in a sandbox where ``temporalio.workflow`` and friends are the engine's
modules (engine/_sandbox/runner.py). Everything above the sandbox looks definitions up here.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
from typing import Any, Callable

from engine._runtime import foreign
from engine._runtime.definitions import ActivityDefinition, WorkflowDefinition, hints_of
from engine._sandbox.runner import translated_definition
from engine.errors import DefinitionError


def activity_definition(fn: Callable[..., Any]) -> ActivityDefinition:
    defn = getattr(fn, "__activity_definition__", None)
    if defn is None:
        # Decorated with the real temporalio's @activity.defn: read its definition.
        defn = foreign.activity_definition(fn)
    if defn is None:
        raise DefinitionError(
            f"{getattr(fn, '__qualname__', fn)!r} is not an activity: decorate it with "
            "@activity.defn (from engine import activity)."
        )
    return defn


def served_activity(fn: Callable[..., Any]) -> ActivityDefinition:
    """The definition a worker runs for ``fn``: a bound method (``acts.translate_term``,
    temporalio's activities-as-methods style) is called with its instance, so the definition
    holds the bound method, and its hints skip ``self``."""
    defn = activity_definition(fn)
    if inspect.ismethod(fn):
        arg_types, result_type = hints_of(fn.__func__, skip_self=True)
        return dataclasses.replace(defn, fn=fn, arg_types=arg_types, result_type=result_type)
    qualname = getattr(fn, "__qualname__", "")
    owner = qualname.rpartition(".")[0]
    if owner and not owner.endswith("<locals>") and _first_parameter(fn) == "self":
        raise DefinitionError(
            f"{qualname!r} is a method of class {owner}: give the worker the method of an instance, "
            f"e.g. acts = {owner}(...); Worker(..., activities=[acts.{fn.__name__}])."
        )
    return defn


# Ours, and the real temporalio's @activity.defn (whose definitions the worker also reads).
_ACTIVITY_MARKS = frozenset({"__activity_definition__", "__temporal_activity_definition"})


def activity_methods(obj: Any) -> list[Callable[..., Any]]:
    """The ``@activity.defn`` methods of an instance, bound to it (``acts`` of
    ``acts = TranslationActivities(session)``): what a worker serves for such an object found
    in a notebook cell or a module. Nothing for classes, functions and modules."""
    if isinstance(obj, (type, types.ModuleType, types.FunctionType, types.MethodType)):
        return []
    found: dict[str, Callable[..., Any]] = {}
    for klass in type(obj).__mro__:
        for name, member in vars(klass).items():
            if name not in found and isinstance(member, types.FunctionType) and _ACTIVITY_MARKS & member.__dict__.keys():
                found[name] = getattr(obj, name)
    return list(found.values())


def _first_parameter(fn: Callable[..., Any]) -> str | None:
    code = getattr(fn, "__code__", None)
    return code.co_varnames[0] if code is not None and code.co_argcount else None


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
        defn = translated_definition(target)
    if defn is None:
        raise DefinitionError(
            f"{getattr(cls, '__qualname__', cls)!r} is not a workflow: decorate the class with "
            "@workflow.defn and its entry method with @workflow.run."
        )
    return defn
