"""Definitions made by the real temporalio SDK's decorators, read as the engine's.

An app may import real temporalio (no switch, see ``engine.temporalio_compat``) and still hand
its objects to the engine: activities decorated with temporalio's ``@activity.defn`` go to
``Worker(activities=[...])`` and ``workflow.execute_activity``; handler methods decorated with
temporalio's ``@workflow.signal/query/update`` go to ``handle.signal(W.approve, ...)``. The
decorators leave their definition on the function (``__temporal_activity_definition``,
``__temporal_signal_definition``, ``__temporal_query_definition``, and ``_defn`` for an
update); only their ``name`` is read here, so temporalio need not be importable.
"""

from __future__ import annotations

from typing import Any, Callable

from engine._runtime.definitions import ActivityDefinition, hints_of, is_async
from engine.errors import DefinitionError

# Which attribute temporalio leaves on a handler method, per kind of handler (an update's
# method is wrapped in an object whose ``_defn`` holds the definition).
_HANDLER_ATTRIBUTES = {
    "signal": "__temporal_signal_definition",
    "query": "__temporal_query_definition",
    "update": "_defn",
}


def handler_name(handler: Callable[..., Any], kind: str) -> str | None:
    """The name a signal, query or update method is sent by: the engine's decorator's, else
    temporalio's; None when the method has neither."""
    ours = getattr(handler, f"__workflow_{kind}__", None)
    if ours:
        return str(ours)
    theirs = getattr(handler, _HANDLER_ATTRIBUTES[kind], None)
    name = getattr(theirs, "name", None)
    if getattr(handler, "__workflow_dynamic__", None) == kind or (theirs is not None and not name):
        raise DefinitionError(
            f"{getattr(handler, '__qualname__', handler)!r} is a dynamic {kind} handler: send the {kind} by its "
            "name (a string) instead of the method."
        )
    return name if isinstance(name, str) else None


def activity_definition(fn: Callable[..., Any]) -> ActivityDefinition | None:
    """The engine's definition of a function decorated with temporalio's ``@activity.defn``
    (None if it is not): name, sync or async, and the type hints that shape its inputs."""
    theirs = getattr(fn, "__temporal_activity_definition", None)
    if theirs is None:
        return None
    name = getattr(theirs, "name", None)
    if not name:
        raise DefinitionError(
            f"{getattr(fn, '__qualname__', fn)!r} is a dynamic activity (@activity.defn(dynamic=True)): "
            "durable-lab's engine does not run dynamic activities yet; give it a name."
        )
    arg_types, result_type = hints_of(fn, skip_self=False)
    async_ = getattr(theirs, "is_async", None)
    return ActivityDefinition(
        name=name,
        fn=fn,
        is_async=bool(async_) if isinstance(async_, bool) else is_async(fn),
        arg_types=arg_types,
        result_type=result_type,
    )
