"""The API used inside workflow code (mirrors ``temporalio.workflow``).

Workflow code must be deterministic: it is re-run against its history whenever a worker has
no cached state for a run. Use these helpers instead of the clock, ``random`` and ``uuid``,
and call activities for anything that touches the outside world.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import inspect
import logging
import random as _random_module
import uuid as _uuid
from datetime import datetime, timedelta
from typing import Any, Callable, Iterator, Mapping, NoReturn, Sequence, TypeVar

from engine._conversion.payload_converter import PayloadConverter
from engine._runtime import children as _children
from engine._runtime import instance as _runtime
from engine._runtime import interceptors as _interceptors
from engine._runtime import local_activities as _local_activities
from engine._runtime import updates as _updates
from engine._runtime.children import (
    ChildWorkflowCancellationType,
    ChildWorkflowHandle,
    ExternalWorkflowHandle,
    ParentClosePolicy,
)
from engine._runtime.commands import ContinueAsNewError
from engine._runtime.definitions import WorkflowDefinition, check_problems, hints_of, is_async, markers_of
from engine._runtime.event_loop import current
from engine._runtime.info import ParentInfo, WorkflowInfo as Info
from engine._runtime.activities import ActivityHandle
from engine._runtime.workflow_asyncio import as_completed, wait
from engine._sandbox import rules as _sandbox_rules
from engine._sandbox.translation import activity_definition, workflow_definition
from engine.common import RetryPolicy, SearchAttributeUpdate, TypedSearchAttributes, WorkflowIDReusePolicy
from engine._runtime.handler_table import Handler
from engine._runtime.handler_calls import (
    get_dynamic_query_handler,
    get_dynamic_signal_handler,
    get_dynamic_update_handler,
    get_query_handler,
    get_signal_handler,
    get_update_handler,
    set_dynamic_query_handler,
    set_dynamic_signal_handler,
    set_dynamic_update_handler,
    set_query_handler,
    set_signal_handler,
    set_update_handler,
)
from engine.errors import DefinitionError, NondeterminismError

__all__ = [
    "defn",
    "init",
    "run",
    "signal",
    "query",
    "update",
    "execute_activity",
    "start_activity",
    "execute_activity_method",
    "start_activity_method",
    "start_local_activity",
    "execute_local_activity",
    "start_local_activity_method",
    "execute_local_activity_method",
    "ActivityHandle",
    "ActivityCancellationType",
    "start_child_workflow",
    "execute_child_workflow",
    "ChildWorkflowHandle",
    "ChildWorkflowCancellationType",
    "ParentClosePolicy",
    "get_external_workflow_handle",
    "ExternalWorkflowHandle",
    "ParentInfo",
    "sleep",
    "wait_condition",
    "wait",
    "as_completed",
    "all_handlers_finished",
    "set_signal_handler",
    "get_signal_handler",
    "set_dynamic_signal_handler",
    "get_dynamic_signal_handler",
    "set_query_handler",
    "get_query_handler",
    "set_dynamic_query_handler",
    "get_dynamic_query_handler",
    "set_update_handler",
    "get_update_handler",
    "set_dynamic_update_handler",
    "get_dynamic_update_handler",
    "continue_as_new",
    "patched",
    "deprecate_patch",
    "ContinueAsNewError",
    "now",
    "time",
    "time_ns",
    "random",
    "uuid4",
    "info",
    "Info",
    "upsert_search_attributes",
    "memo",
    "memo_value",
    "upsert_memo",
    "logger",
    "LoggerAdapter",
    "UpdateInfo",
    "current_update_info",
    "in_workflow",
    "payload_converter",
    "unsafe",
    "NondeterminismError",
]

ClassType = TypeVar("ClassType", bound=type)
F = TypeVar("F", bound=Callable[..., Any])
_arg_unset = object()


class ActivityCancellationType(enum.IntEnum):
    TRY_CANCEL = 0
    WAIT_CANCELLATION_COMPLETED = 1
    ABANDON = 2


def defn(
    cls: ClassType | None = None,
    *,
    name: str | None = None,
    sandboxed: bool = True,
    dynamic: bool = False,
    failure_exception_types: Sequence[type[BaseException]] = (),
) -> Any:
    """Declare a workflow class; its ``@workflow.run`` method is the entry point.

    ``name`` is the workflow type (default: the class name). Any exception of
    ``failure_exception_types`` fails the workflow instead of only the workflow task.
    """

    def decorate(target: ClassType) -> ClassType:
        problems = []
        members = _members(target)
        marked = [(member, markers_of(member)) for member in members.values()]
        runs = [member for member, marks in marked if callable(member) and marks.get("__workflow_run__", False)]
        if not runs:
            problems.append(f"class {target.__qualname__} has no method decorated with @workflow.run")
        elif len(runs) > 1:
            problems.append(f"class {target.__qualname__} has {len(runs)} @workflow.run methods; keep one")
        run_fn = runs[0] if runs else None
        if run_fn is not None and not is_async(run_fn):
            problems.append(f"{run_fn.__qualname__} must be 'async def' (workflow code awaits activities and timers)")
        init_fn = getattr(target, "__init__")
        if getattr(init_fn, _INIT_MARK, False):
            if run_fn is not None and not _same_parameters(init_fn, run_fn):
                problems.append(
                    f"@workflow.init and @workflow.run method parameters do not match: {init_fn.__qualname__}"
                    f"{inspect.signature(init_fn)} vs {run_fn.__qualname__}{inspect.signature(run_fn)}; "
                    "give __init__ the same parameters as the run method (names may differ)"
                )
        else:
            try:
                if vars(object)["__init__"] is not init_fn or target.__new__ is not object.__new__:
                    inspect.signature(target).bind()
            except TypeError:
                problems.append(
                    f"class {target.__qualname__} must be constructible without arguments (define __init__(self) only), "
                    "or decorate __init__ with @workflow.init to receive the run's arguments"
                )
        if problems:
            check_problems(f"workflow definition {target.__qualname__}", problems)
        assert run_fn is not None
        signals: dict[str, Callable[..., Any]] = {}
        queries: dict[str, Callable[..., Any]] = {}
        updates: dict[str, Callable[..., Any]] = {}
        dynamic: dict[str, Callable[..., Any]] = {}
        for member, marks in marked:
            if not marks:
                continue
            kind = marks.get(_DYNAMIC_MARK)
            if kind is not None:
                if kind in dynamic:
                    problems.append(f"two dynamic {kind} handlers: {dynamic[kind].__qualname__} and {member.__qualname__}")
                dynamic[kind] = member
                continue
            for marker, table, what in (
                ("__workflow_signal__", signals, "signal"),
                ("__workflow_query__", queries, "query"),
                ("__workflow_update__", updates, "update"),
            ):
                handler_name = marks.get(marker)
                if handler_name is None:
                    continue
                if handler_name in table:
                    problems.append(f"two {what} handlers are named {handler_name!r}")
                table[handler_name] = member
        for handler_name, fn in [*queries.items(), ("dynamic", dynamic.get("query"))]:
            if fn is not None and is_async(fn):
                problems.append(f"query {handler_name!r} must be a plain 'def': queries read state, they cannot wait")
        for kind, fn in dynamic.items():
            try:
                Handler.make(kind, None, fn, is_method=True)
            except DefinitionError as e:
                problems.append(str(e))
        if problems:
            check_problems(f"workflow definition {target.__qualname__}", problems)
        arg_types, result_type = hints_of(run_fn, skip_self=True)
        target.__workflow_definition__ = WorkflowDefinition(  # type: ignore[attr-defined]
            name=name or target.__name__,
            cls=target,
            run_fn=run_fn,
            sandboxed=sandboxed,
            arg_types=arg_types,
            result_type=result_type,
            failure_exception_types=tuple(failure_exception_types),
            signals=signals,
            queries=queries,
            updates=updates,
            dynamic_signal=dynamic.get("signal"),
            dynamic_query=dynamic.get("query"),
            dynamic_update=dynamic.get("update"),
        )
        run_fn.__workflow_class__ = target  # type: ignore[attr-defined]
        return target

    if cls is not None:
        return decorate(cls)
    return decorate


def _members(cls: type) -> dict[str, Any]:
    """The class's attributes, as ``inspect.getmembers`` finds them but without ``object``'s:
    the sandbox decorates a fresh copy of each workflow class for every run, so this is hot."""
    names: dict[str, None] = {}
    for klass in reversed(cls.__mro__[:-1]):
        names.update(dict.fromkeys(vars(klass)))
    return {name: getattr(cls, name) for name in sorted(names)}


# temporalio's marker attribute, so that a class decorated by either SDK's ``init`` is seen.
_INIT_MARK = "__temporal_workflow_init"


def init(init_fn: F) -> F:
    """Mark ``__init__`` as taking the run's arguments: the workflow object is then built
    with the same arguments as the ``@workflow.run`` method (whose parameters it must repeat,
    names aside), so handlers can use state set up from the input before ``run`` starts."""
    if getattr(init_fn, "__name__", None) != "__init__":
        raise ValueError(
            f"@workflow.init may only be used on the __init__ method, not on {getattr(init_fn, '__qualname__', init_fn)!r}"
        )
    setattr(init_fn, _INIT_MARK, True)
    return init_fn


def _same_parameters(a: Callable[..., Any], b: Callable[..., Any]) -> bool:
    # As temporalio: kinds, defaults and annotations must agree; only the names may differ.
    def shape(fn: Callable[..., Any]) -> list[inspect.Parameter]:
        return [p.replace(name="_") for p in inspect.signature(fn).parameters.values()]

    return shape(a) == shape(b)


def run(fn: F) -> F:
    """Mark the workflow's entry method (``async def run(self, ...)``)."""
    fn.__workflow_run__ = True  # type: ignore[attr-defined]
    return fn


# The marker of a dynamic handler (``dynamic=True``): its kind. Such a method has no name.
_DYNAMIC_MARK = "__workflow_dynamic__"


def _mark_handler(target: Any, kind: str, name: str | None, dynamic: bool | None) -> None:
    if dynamic and name:
        raise DefinitionError(
            f"@workflow.{kind} on {getattr(target, '__qualname__', target)!r} has both a name and dynamic=True: "
            f"a dynamic {kind} handler takes every {kind} no named handler takes; drop one of the two"
        )
    if dynamic:
        setattr(target, _DYNAMIC_MARK, kind)
    else:
        setattr(target, f"__workflow_{kind}__", name or target.__name__)


def signal(fn: F | None = None, *, name: str | None = None, dynamic: bool = False, description: str | None = None) -> Any:
    """Mark a method as a signal handler: ``handle.signal(W.method, arg)`` calls it, durably
    (the signal is recorded in history before the workflow sees it, and never lost)."""

    def decorate(target: F) -> F:
        _mark_handler(target, "signal", name, dynamic)
        return target

    return decorate(fn) if fn is not None else decorate


def update(fn: F | None = None, *, name: str | None = None, dynamic: bool = False, description: str | None = None) -> Any:
    """Mark a method as an update handler: ``handle.execute_update(W.method, arg)`` calls it
    and returns what it returns. Unlike a signal it answers, and it may be refused: decorate a
    plain method with ``@method.validator`` to check the arguments first (raise to reject; a
    rejected update leaves nothing in history). The handler may be ``async`` and run activities."""

    def decorate(target: F) -> F:
        _mark_handler(target, "update", name, dynamic)

        def validator(check: Callable[..., None]) -> Callable[..., None]:
            if inspect.iscoroutinefunction(check):
                raise TypeError(f"update validator {check.__qualname__} must be a plain 'def': validators only check, they cannot wait")
            target.__update_validator__ = check  # type: ignore[attr-defined]
            return check

        target.validator = validator  # type: ignore[attr-defined]
        return target

    return decorate(fn) if fn is not None else decorate


def query(fn: F | None = None, *, name: str | None = None, dynamic: bool = False, description: str | None = None) -> Any:
    """Mark a plain method as a query handler: ``handle.query(W.method)`` reads the workflow's
    state without changing it or its history."""

    def decorate(target: F) -> F:
        _mark_handler(target, "query", name, dynamic)
        return target

    return decorate(fn) if fn is not None else decorate


def continue_as_new(
    arg: Any = _arg_unset,
    *,
    args: Sequence[Any] = (),
    workflow: Any = None,
    task_queue: str | None = None,
    run_timeout: timedelta | None = None,
    task_timeout: timedelta | None = None,
    memo: dict[str, Any] | None = None,
    search_attributes: TypedSearchAttributes | None = None,
) -> NoReturn:
    """End this run and start a new run of the same workflow id with fresh history.

    Long-running workflows (a subscription billed monthly for years) call this to keep each
    run's history short; the new run is linked to this one. Without ``memo`` and
    ``search_attributes`` the new run gets this run's (its memo as it started, its search
    attributes as they are now), as in Temporal."""
    all_args = ([arg] if arg is not _arg_unset else []) + list(args)
    name = workflow if workflow is None or isinstance(workflow, str) else workflow_definition(workflow).name
    instance = current() if in_workflow() else None
    if instance is not None and instance.outbound is not None:
        instance.outbound.continue_as_new(
            _interceptors.ContinueAsNewInput(name, all_args, task_queue, run_timeout, task_timeout, memo, search_attributes, {})
        )
    raise ContinueAsNewError(
        all_args, workflow=name, task_queue=task_queue, run_timeout=run_timeout, task_timeout=task_timeout,
        memo=memo, search_attributes=search_attributes,
    )


def _activity_name(activity: Any) -> tuple[str, Any]:
    if isinstance(activity, str):
        return activity, None
    defn = activity_definition(activity)
    return defn.name, defn.result_type


def start_activity(
    activity: Any,
    arg: Any = _arg_unset,
    *,
    args: Sequence[Any] = (),
    task_queue: str | None = None,
    result_type: type | None = None,
    schedule_to_close_timeout: timedelta | None = None,
    schedule_to_start_timeout: timedelta | None = None,
    start_to_close_timeout: timedelta | None = None,
    heartbeat_timeout: timedelta | None = None,
    retry_policy: RetryPolicy | None = None,
    cancellation_type: ActivityCancellationType = ActivityCancellationType.TRY_CANCEL,
    activity_id: str | None = None,
    summary: str | None = None,
) -> ActivityHandle:
    """Schedule an activity and return a handle: await it for the result, cancel it to stop it."""
    instance = current()
    name, hinted = _activity_name(activity)
    all_args = ([arg] if arg is not _arg_unset else []) + list(args)
    if instance.outbound is not None:
        return instance.outbound.start_activity(
            _interceptors.StartActivityInput(
                name, all_args, activity_id, task_queue, schedule_to_close_timeout, schedule_to_start_timeout,
                start_to_close_timeout, heartbeat_timeout, retry_policy, cancellation_type, {}, summary, result_type or hinted,
            )
        )
    return instance.schedule_activity(
        name,
        all_args,
        task_queue=task_queue,
        schedule_to_close_timeout=schedule_to_close_timeout,
        schedule_to_start_timeout=schedule_to_start_timeout,
        start_to_close_timeout=start_to_close_timeout,
        heartbeat_timeout=heartbeat_timeout,
        retry_policy=retry_policy,
        activity_id=activity_id,
        result_type=result_type or hinted,
        summary=summary,
        cancellation_type=cancellation_type,
    )


async def execute_activity(
    activity: Any,
    arg: Any = _arg_unset,
    *,
    args: Sequence[Any] = (),
    task_queue: str | None = None,
    result_type: type | None = None,
    schedule_to_close_timeout: timedelta | None = None,
    schedule_to_start_timeout: timedelta | None = None,
    start_to_close_timeout: timedelta | None = None,
    heartbeat_timeout: timedelta | None = None,
    retry_policy: RetryPolicy | None = None,
    cancellation_type: ActivityCancellationType = ActivityCancellationType.TRY_CANCEL,
    activity_id: str | None = None,
    summary: str | None = None,
) -> Any:
    """Run an activity and wait for its result (``start_activity`` + ``await``)."""
    return await start_activity(
        activity,
        arg,
        args=args,
        task_queue=task_queue,
        result_type=result_type,
        schedule_to_close_timeout=schedule_to_close_timeout,
        schedule_to_start_timeout=schedule_to_start_timeout,
        start_to_close_timeout=start_to_close_timeout,
        heartbeat_timeout=heartbeat_timeout,
        retry_policy=retry_policy,
        cancellation_type=cancellation_type,
        activity_id=activity_id,
        summary=summary,
    )


# temporalio's names for calling an activity that is a method (``MyActivities.do_it``): the
# same calls, since the activity type comes from the method's definition either way.
start_activity_method = start_activity
execute_activity_method = execute_activity


def start_local_activity(
    activity: Any,
    arg: Any = _arg_unset,
    *,
    args: Sequence[Any] = (),
    result_type: type | None = None,
    schedule_to_close_timeout: timedelta | None = None,
    schedule_to_start_timeout: timedelta | None = None,
    start_to_close_timeout: timedelta | None = None,
    retry_policy: RetryPolicy | None = None,
    local_retry_threshold: timedelta | None = None,
    cancellation_type: ActivityCancellationType = ActivityCancellationType.TRY_CANCEL,
    activity_id: str | None = None,
    summary: str | None = None,
) -> "asyncio.Task[Any]":
    """Run an activity in this worker, inside the workflow task: no activity task, no
    ActivityTask* events, one ``MarkerRecorded`` event with its outcome (as Temporal). For
    short work; retries wait in process while the backoff is at most
    ``local_retry_threshold`` (default 1 minute), on a timer beyond it. Await the returned
    task for the result."""
    name, hinted = _activity_name(activity)
    all_args = ([arg] if arg is not _arg_unset else []) + list(args)
    instance = current()
    if instance.outbound is not None:
        return instance.outbound.start_local_activity(  # type: ignore[no-any-return]
            _interceptors.StartLocalActivityInput(
                name, all_args, activity_id, schedule_to_close_timeout, schedule_to_start_timeout,
                start_to_close_timeout, retry_policy, local_retry_threshold, cancellation_type, {}, summary,
                None, result_type or hinted,
            )
        )
    del summary  # accepted as in temporalio; a local activity has no event to show it
    return _local_activities.start(
        instance, name, all_args, cancellation_type=cancellation_type,
        result_type=result_type or hinted, schedule_to_close_timeout=schedule_to_close_timeout,
        schedule_to_start_timeout=schedule_to_start_timeout, start_to_close_timeout=start_to_close_timeout,
        retry_policy=retry_policy, local_retry_threshold=local_retry_threshold, activity_id=activity_id,
    )


async def execute_local_activity(activity: Any, arg: Any = _arg_unset, **kwargs: Any) -> Any:
    """``start_local_activity`` and wait for its result (its failure raises)."""
    return await start_local_activity(activity, arg, **kwargs)


start_local_activity_method = start_local_activity
execute_local_activity_method = execute_local_activity


def _workflow_name(workflow: Any) -> tuple[str, Any]:
    if isinstance(workflow, str):
        return workflow, None
    defn = workflow_definition(workflow)
    return defn.name, defn.result_type


async def start_child_workflow(
    workflow: Any,
    arg: Any = _arg_unset,
    *,
    args: Sequence[Any] = (),
    id: str | None = None,
    task_queue: str | None = None,
    result_type: type | None = None,
    cancellation_type: ChildWorkflowCancellationType = ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
    parent_close_policy: ParentClosePolicy = ParentClosePolicy.TERMINATE,
    execution_timeout: timedelta | None = None,
    run_timeout: timedelta | None = None,
    task_timeout: timedelta | None = None,
    id_reuse_policy: WorkflowIDReusePolicy = WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    memo: dict[str, Any] | None = None,
    search_attributes: TypedSearchAttributes | None = None,
    static_summary: str | None = None,
) -> ChildWorkflowHandle:
    """Start a child workflow and return its handle once the child has started.

    The child is a workflow run of its own (its own id and history); the parent's history
    records its start and its outcome. ``id`` defaults to a deterministic ``workflow.uuid4()``.
    Raises ``WorkflowAlreadyStartedError`` if a run with that id is open."""
    instance = current()
    name, hinted = _workflow_name(workflow)
    all_args = ([arg] if arg is not _arg_unset else []) + list(args)
    if instance.outbound is not None:
        return await instance.outbound.start_child_workflow(
            _interceptors.StartChildWorkflowInput(
                name, all_args, id or str(instance.uuid4()), task_queue, cancellation_type, parent_close_policy,
                execution_timeout, run_timeout, task_timeout, memo, search_attributes, {}, static_summary, result_type or hinted,
                id_reuse_policy,
            )
        )
    handle = _children.start_child(
        instance,
        name,
        all_args,
        workflow_id=id or str(instance.uuid4()),
        task_queue=task_queue,
        result_type=result_type or hinted,
        cancellation_type=cancellation_type,
        parent_close_policy=parent_close_policy,
        execution_timeout=execution_timeout,
        run_timeout=run_timeout,
        task_timeout=task_timeout,
        memo=memo,
        search_attributes=search_attributes,
        summary=static_summary,
        id_reuse_policy=id_reuse_policy,
    )
    try:
        await handle.started
    except asyncio.CancelledError:
        handle.cancel()
        raise
    return handle


async def execute_child_workflow(
    workflow: Any,
    arg: Any = _arg_unset,
    *,
    args: Sequence[Any] = (),
    id: str | None = None,
    task_queue: str | None = None,
    result_type: type | None = None,
    cancellation_type: ChildWorkflowCancellationType = ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
    parent_close_policy: ParentClosePolicy = ParentClosePolicy.TERMINATE,
    execution_timeout: timedelta | None = None,
    run_timeout: timedelta | None = None,
    task_timeout: timedelta | None = None,
    id_reuse_policy: WorkflowIDReusePolicy = WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    memo: dict[str, Any] | None = None,
    search_attributes: TypedSearchAttributes | None = None,
    static_summary: str | None = None,
) -> Any:
    """Start a child workflow and wait for its result (``ChildWorkflowError`` if it fails)."""
    handle = await start_child_workflow(
        workflow,
        arg,
        args=args,
        id=id,
        task_queue=task_queue,
        result_type=result_type,
        cancellation_type=cancellation_type,
        parent_close_policy=parent_close_policy,
        execution_timeout=execution_timeout,
        run_timeout=run_timeout,
        task_timeout=task_timeout,
        memo=memo,
        search_attributes=search_attributes,
        static_summary=static_summary,
        id_reuse_policy=id_reuse_policy,
    )
    return await handle


def get_external_workflow_handle(workflow_id: str, *, run_id: str | None = None) -> ExternalWorkflowHandle:
    """A handle to signal or cancel another workflow from workflow code."""
    return ExternalWorkflowHandle(current(), workflow_id, run_id)


def get_external_workflow_handle_for(workflow: Any, workflow_id: str, *, run_id: str | None = None) -> ExternalWorkflowHandle:
    """Typed variant of ``get_external_workflow_handle`` (the type is for checkers only)."""
    return get_external_workflow_handle(workflow_id, run_id=run_id)


async def sleep(duration: float | timedelta, *, summary: str | None = None) -> None:
    """A durable timer: survives worker restarts; ``asyncio.sleep`` in workflow code is the same."""
    seconds = duration.total_seconds() if isinstance(duration, timedelta) else float(duration)
    await asyncio.sleep(seconds)


async def wait_condition(
    fn: Callable[[], bool], *, timeout: timedelta | float | None = None, timeout_summary: str | None = None
) -> None:
    """Wait until ``fn()`` is true; with ``timeout``, raise ``asyncio.TimeoutError`` after it."""
    fut = current().wait_condition_future(fn)
    if timeout is None:
        await fut
        return
    seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout)
    await asyncio.wait_for(fut, seconds)


def all_handlers_finished() -> bool:
    """True when no signal or update handler of this run is still running: wait on it
    (``await workflow.wait_condition(workflow.all_handlers_finished)``) before returning or
    continuing as new, so no handler is cut off."""
    from engine._runtime import handlers as _handlers

    return _handlers.all_finished(current())


def patched(id: str) -> bool:
    """Versioning: ``if workflow.patched("my-change"): new code else: old code``.

    Runs that reach this line with new code take the new path and record a marker; runs
    that recorded their history with the old code replay the old path, so changed code
    stays deterministic for runs already in flight."""
    return current().patched(id)


def deprecate_patch(id: str) -> None:
    """Once no run on the old path remains: keep only the new code and call this instead
    of ``patched`` so runs that recorded the marker still replay."""
    current().patched(id, deprecated=True)


def now() -> datetime:
    """The workflow's current time (UTC): the start time of the current workflow task."""
    return current().now()


def time() -> float:
    """``now()`` as seconds since the epoch."""
    return current().time()


def time_ns() -> int:
    return int(current().time() * 1_000_000_000)


def random() -> _random_module.Random:
    """A ``random.Random`` seeded from the run, identical on every replay."""
    return current().random()


def uuid4() -> _uuid.UUID:
    """A UUID4 drawn from ``random()``: the same on every replay."""
    return current().uuid4()


def info() -> Info:
    """Facts about the running workflow (id, run id, type, task queue, attempt, start time)."""
    return current().info


def upsert_search_attributes(updates: Sequence[SearchAttributeUpdate[Any]]) -> None:
    """Set or remove search attributes of this run: ``[key.value_set(v), other.value_unset()]``
    with keys from ``SearchAttributeKey.for_keyword(...)`` and the like. Recorded in history
    (``UpsertWorkflowSearchAttributes``); ``info().typed_search_attributes`` follows at once,
    and ``list_workflows`` finds the run by the new values. temporalio's deprecated dictionary
    form (``{"Name": [values]}``, an empty list unsets) is accepted with a DeprecationWarning,
    as temporalio does."""
    instance = current()
    if isinstance(updates, Mapping):
        from engine._conversion import search_attributes_dict as _search_attributes_dict

        _search_attributes_dict.warn("upsert_search_attributes")
        updates = _search_attributes_dict.updates_from_dict(updates, instance.info.typed_search_attributes)
    instance.upsert_search_attributes(updates)


def memo() -> dict[str, Any]:
    """The run's memo (given at start, changed by ``upsert_memo``), its values converted."""
    instance = current()
    converter = instance.payload_converter
    return {k: _payload_value(converter, v, None, k) for k, v in instance.info.raw_memo.items()}


def memo_value(key: str, default: Any = _arg_unset, *, type_hint: type | None = None) -> Any:
    """One memo field, converted to ``type_hint`` if given; ``default`` if absent, else ``KeyError``."""
    instance = current()
    payload = instance.info.raw_memo.get(key)
    if payload is None:
        if default is _arg_unset:
            raise KeyError(f"The memo has no field {key!r} (it has: {', '.join(sorted(instance.info.raw_memo)) or 'none'}).")
        return default
    return _payload_value(instance.payload_converter, payload, type_hint, key)


def upsert_memo(updates: dict[str, Any]) -> None:
    """Set memo fields (a value of None removes the field). Recorded in history
    (``WorkflowPropertiesModified``); ``memo()`` follows at once."""
    current().upsert_memo(updates)


def _payload_value(converter: PayloadConverter, payload: Any, type_hint: Any, key: str) -> Any:
    from engine._conversion.payload_converter import from_json_payload

    return from_json_payload(converter, payload, type_hint, f"memo field {key!r}")


@dataclasses.dataclass(frozen=True)
class UpdateInfo:
    """The update being handled (``current_update_info()``)."""

    id: str
    name: str


def current_update_info() -> UpdateInfo | None:
    """The update whose validator or handler (or a task it started) is running, else None."""
    update = _updates.current.get()
    return UpdateInfo(*update) if update is not None else None


def payload_converter() -> PayloadConverter:
    """The payload converter of the worker's data converter (for converting values by hand)."""
    return current().payload_converter


def in_workflow() -> bool:
    """True inside workflow code."""
    return isinstance(asyncio.events._get_running_loop(), _runtime.WorkflowInstance)


class LoggerAdapter(logging.LoggerAdapter):
    """The workflow logger (``workflow.logger``), as temporalio's: each record carries the run's
    details in ``extra["temporal_workflow"]`` (attempt, namespace, run_id, task_queue,
    workflow_id, workflow_type) and, unless ``workflow_info_on_message = False``, appended to
    the message. Records are dropped while the code replays history, so each message is logged
    once per run, not once per replay (``log_during_replay = True`` keeps them)."""

    def __init__(self, logger: logging.Logger, extra: Mapping[str, Any] | None = None) -> None:
        super().__init__(logger, dict(extra or {}))
        self.workflow_info_on_message = True
        self.workflow_info_on_extra = True
        self.full_workflow_info_on_extra = False
        self.log_during_replay = False

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 - logging's name
        loop = asyncio.events._get_running_loop()
        if not self.log_during_replay and isinstance(loop, _runtime.WorkflowInstance) and loop.is_replaying():
            return False
        return super().isEnabledFor(level)

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        loop = asyncio.events._get_running_loop()
        if isinstance(loop, _runtime.WorkflowInstance):
            details = _logger_details(loop.info)
            update = _updates.current.get()
            if update is not None:  # in an update's validator or handler: which update, too
                details.update(update_id=update[0], update_name=update[1])
            extra: dict[str, Any] = {}
            if self.workflow_info_on_extra:
                extra["temporal_workflow"] = dict(details)
            if self.full_workflow_info_on_extra:
                extra["workflow_info"] = loop.info
            # What the call passed wins over ours (as temporalio: merge_extra semantics).
            kwargs["extra"] = {**extra, **(kwargs.get("extra") or {})}
            if self.workflow_info_on_message:
                msg = f"{msg} ({details})"
        return msg, kwargs

    @property
    def base_logger(self) -> logging.Logger:
        """The logger underneath (``engine.workflow``): add handlers and formatters to it."""
        return self.logger

    def unsafe_disable_sandbox(self, value: bool = True) -> None:
        """Accepted for temporalio code; logging here never goes through the sandbox's checks."""


def _logger_details(info: Info) -> dict[str, Any]:
    return {
        "attempt": info.attempt,
        "namespace": info.namespace,
        "run_id": info.run_id,
        "task_queue": info.task_queue,
        "workflow_id": info.workflow_id,
        "workflow_type": info.workflow_type,
    }


logger = LoggerAdapter(logging.getLogger("engine.workflow"), None)


class unsafe:  # noqa: N801 - a namespace, named as in temporalio
    """Escape hatches; use with care."""

    @staticmethod
    def is_replaying() -> bool:
        """True while the code is re-running recorded history (no new decisions are taken)."""
        return current().is_replaying()

    @staticmethod
    @contextlib.contextmanager
    def imports_passed_through() -> Iterator[None]:
        """Imports in this block pass through the sandbox: the module is loaded once, outside
        it, and shared by every run instead of being run afresh for each. Use it for modules
        that are safe to share (no state that workflow code changes), such as an activities
        module or a large library. Outside the sandbox it changes nothing."""
        token = _sandbox_rules.passing_through.set(True)
        try:
            yield
        finally:
            _sandbox_rules.passing_through.reset(token)

    @staticmethod
    @contextlib.contextmanager
    def sandbox_unrestricted() -> Iterator[None]:
        """Calls in this block are not checked by the sandbox (``time.time()``, ``open()``...).
        Only for calls that cannot change what the workflow decides (a debug print's
        timestamp), since replays would otherwise diverge."""
        token = _sandbox_rules.unrestricted.set(True)
        try:
            yield
        finally:
            _sandbox_rules.unrestricted.reset(token)

    @staticmethod
    def is_sandbox_unrestricted() -> bool:
        """True inside ``sandbox_unrestricted()``."""
        return _sandbox_rules.unrestricted.get()

    @staticmethod
    def in_sandbox() -> bool:
        """True while sandboxed workflow code runs, or while the sandbox loads its modules."""
        return bool(getattr(asyncio.events._get_running_loop(), "sandboxed", False)) or _sandbox_rules.loading.get()
