"""The client: start workflows and talk to them (mirrors ``temporalio.client``).

``Client.connect("path/to/engine.db")`` opens (or creates) an engine database; ``":memory:"``
keeps everything in memory for one process. A client also runs the engine's clock work
(timers, retries, timeouts) for as long as it is open.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import enum
import os
import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Sequence

from engine import _client_reads
from engine import _client_with_start
from engine import _schedules
from engine._schedules import (
    Schedule,
    ScheduleAction,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionResult,
    ScheduleActionStartWorkflow,
    ScheduleDescription,
    ScheduleHandle,
    ScheduleInfo,
    ScheduleIntervalSpec,
    ScheduleListDescription,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from engine._service_schedules import ScheduleAlreadyRunningError, ScheduleNotFoundError
from engine._client_with_start import WithStartWorkflowOperation
from engine import _foreign
from engine import _client_updates, _queries, _search_attributes, _service, _service_visibility
from engine import _client_interceptors
from engine._client_interceptors import (
    CancelWorkflowInput,
    DescribeWorkflowInput,
    Interceptor,
    OutboundInterceptor,
    QueryWorkflowInput,
    SignalWorkflowInput,
    StartWorkflowInput,
    StartWorkflowUpdateInput,
    TerminateWorkflowInput,
)
from engine._client_updates import WorkflowUpdateHandle, WorkflowUpdateStage
from engine._clock import Clock
from engine._cron import parse_cron
from engine._async_activities import AsyncActivityCancelledError, AsyncActivityHandle, AsyncActivityIDReference
from engine._async_activities import handle as _async_activity_handle
from engine._definitions import workflow_definition
from engine._list_pages import WorkflowExecutionAsyncIterator
from engine._store import Store
from engine._temporalio_converter import as_engine_converter
from engine._visibility import compile_list_filter
from engine._service import StartRequest, from_ts, ts
from engine.common import TypedSearchAttributes, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from engine.converter import DataConverter
from engine.errors import (
    CancelledError,
    EngineError,
    StoreError,
    TerminatedError,
    TimeoutError,
    TimeoutType,
    WorkflowFailureError,
    WorkflowNotFoundError,
)
from engine._client_reads import WorkflowExecutionCount, WorkflowExecutionCountAggregationGroup
from engine.history import History, HistoryEvent
# Where temporalio users import them from (temporalio.client); defined in engine.errors.
from engine.errors import WorkflowAlreadyStartedError, WorkflowQueryFailedError, WorkflowUpdateFailedError

if TYPE_CHECKING:
    from engine.run_snapshot import RunSnapshot

__all__ = [
    "Client",
    "WorkflowHandle",
    "WorkflowExecutionStatus",
    "WorkflowExecutionDescription",
    "ActivityAttempt",
    "WorkflowUpdateHandle",
    "WorkflowUpdateStage",
    "WorkflowExecutionAsyncIterator",
    "Interceptor",
    "OutboundInterceptor",
    "StartWorkflowInput",
    "SignalWorkflowInput",
    "QueryWorkflowInput",
    "CancelWorkflowInput",
    "TerminateWorkflowInput",
    "DescribeWorkflowInput",
    "StartWorkflowUpdateInput",
    "WorkflowExecutionCount",
    "WorkflowExecutionCountAggregationGroup",
    "WithStartWorkflowOperation",
    "Schedule",
    "ScheduleAction",
    "ScheduleActionExecutionStartWorkflow",
    "ScheduleActionResult",
    "ScheduleActionStartWorkflow",
    "ScheduleAlreadyRunningError",
    "ScheduleDescription",
    "ScheduleHandle",
    "ScheduleInfo",
    "ScheduleIntervalSpec",
    "ScheduleListDescription",
    "ScheduleNotFoundError",
    "ScheduleOverlapPolicy",
    "SchedulePolicy",
    "ScheduleSpec",
    "ScheduleState",
    "ScheduleUpdate",
    "ScheduleUpdateInput",
    "WorkflowAlreadyStartedError",
    "WorkflowFailureError",
    "WorkflowQueryFailedError",
    "WorkflowUpdateFailedError",
    "AsyncActivityHandle",
    "AsyncActivityIDReference",
    "AsyncActivityCancelledError",
]

_arg_unset = object()


class WorkflowExecutionStatus(enum.IntEnum):
    RUNNING = 1
    COMPLETED = 2
    FAILED = 3
    CANCELED = 4
    TERMINATED = 5
    CONTINUED_AS_NEW = 6
    TIMED_OUT = 7


_STATUS = {
    "Running": WorkflowExecutionStatus.RUNNING,
    "Completed": WorkflowExecutionStatus.COMPLETED,
    "Failed": WorkflowExecutionStatus.FAILED,
    "Canceled": WorkflowExecutionStatus.CANCELED,
    "Terminated": WorkflowExecutionStatus.TERMINATED,
    "ContinuedAsNew": WorkflowExecutionStatus.CONTINUED_AS_NEW,
    "TimedOut": WorkflowExecutionStatus.TIMED_OUT,
}


@dataclass(frozen=True)
class WorkflowExecutionDescription:
    """What ``handle.describe()`` returns."""

    id: str
    run_id: str
    workflow_type: str
    task_queue: str
    status: WorkflowExecutionStatus
    start_time: datetime
    close_time: datetime | None
    history_length: int
    pending_activities: int
    pending_timers: int
    typed_search_attributes: TypedSearchAttributes = TypedSearchAttributes.empty
    raw_memo: dict[str, Any] = field(default_factory=dict)
    data_converter: DataConverter = field(default=DataConverter.default, repr=False, compare=False)
    # Temporal's PendingActivityInfo JSON of each pending activity (raw_description shows them).
    pending_activity_infos: tuple[dict[str, Any], ...] = field(default=(), repr=False)

    @property
    def search_attributes(self) -> dict[str, list[Any]]:
        """temporalio's deprecated untyped view of ``typed_search_attributes``: name -> list of values."""
        from engine._search_attributes_dict import untyped

        return untyped(self.typed_search_attributes)

    @property
    def raw_description(self) -> Any:
        """The description as Temporal's ``DescribeWorkflowExecutionResponse``, read as
        temporalio reads that protobuf message (``.workflow_execution_info.status``);
        ``.to_json()`` gives its JSON."""
        from engine._describe_json import describe_json
        from engine._proto_view import DESCRIBE_DEFAULTS, ProtoView

        return ProtoView(describe_json(self), DESCRIBE_DEFAULTS)

    async def memo(self) -> dict[str, Any]:
        """The memo, decoded (the payload codec runs) and converted."""
        return {k: await self.memo_value(k) for k in self.raw_memo}

    async def memo_value(self, key: str, default: Any = _arg_unset, *, type_hint: type | None = None) -> Any:
        """One memo field; ``default`` if absent, else ``KeyError``."""
        payload = self.raw_memo.get(key)
        if payload is None:
            if default is _arg_unset:
                raise KeyError(f"The memo of {self.id!r} has no field {key!r} (it has: {', '.join(sorted(self.raw_memo)) or 'none'}).")
            return default
        return (await self.data_converter._decode_json({"payloads": [payload]}, [type_hint], f"memo field {key!r}"))[0]


@dataclass(frozen=True)
class ActivityAttempt:
    """One try of an activity: when it ran, how it ended, and its failure if it failed."""

    scheduled_event_id: int
    attempt: int
    started_at: datetime | None
    ended_at: datetime
    outcome: str
    failure: dict[str, Any] | None
    identity: str


def _attempts(conn: Any, run_id: str) -> list[tuple[Any, ...]]:
    import json

    return [
        (s, a, from_ts(st) if st is not None else None, from_ts(en), o, json.loads(f) if f else None, i)
        for s, a, st, en, o, f, i in conn.execute(
            "SELECT scheduled_event_id, attempt, started_at, ended_at, outcome, failure, identity "
            "FROM activity_attempts WHERE run_id = ? ORDER BY scheduled_event_id, attempt",
            (run_id,),
        )
    ]


class Client:
    """A connection to an engine database."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock | None = None,
        namespace: str = "default",
        identity: str | None = None,
        owns_store: bool = True,
        data_converter: Any = DataConverter.default,
        interceptors: Sequence[Any] = (),
    ) -> None:
        self.store = store
        self._interceptors = list(interceptors)
        self._outbound = _client_interceptors.chain(self, self._interceptors)
        # temporalio's DataConverter is accepted as well (adapted; config() gives it back).
        self._given_converter = data_converter
        self.data_converter = as_engine_converter(data_converter, "Client")
        self.clock = clock or Clock()
        self.namespace = namespace
        self.identity = identity or f"{os.getpid()}@{socket.gethostname()}"
        self._owns_store = owns_store
        self._service_task: asyncio.Task | None = None
        self._closed = False
        self._closings = _ClosingWatch(store)
        # "workflow:Q" / "activity:Q" for every queue a running worker of this client polls.
        self.served_queues: collections.Counter[str] = collections.Counter()
        self._workers: set[Any] = set()  # running Workers of this client, for queries
        self._faults_epoch = 0  # bumped when this process changes the fault table

    @classmethod
    async def connect(
        cls,
        target_host: str = ":memory:",
        *,
        namespace: str = "default",
        identity: str | None = None,
        clock: Clock | None = None,
        data_converter: Any = DataConverter.default,
        file_mode: int = 0o600,
        interceptors: Sequence[Any] = (),
    ) -> "Client":
        """Open the engine database at ``target_host`` (a file path, or ``":memory:"``).

        ``data_converter`` converts inputs and results (and, with a payload codec, encrypts
        them before they reach the database); its workers use the same one. It is an
        ``engine.converter.DataConverter`` or temporalio's (``temporalio.converter``: its
        payload converter and payload codec then do the work, e.g. an encryption codec or
        ``pydantic_data_converter``).

        ``file_mode`` is the mode of a database file this call creates, and of its ``-wal``,
        ``-shm`` and ``-lock`` files: owner-only by default, since payloads are your data;
        ``0o640`` lets the file's group read it too (the umask does not apply). An existing
        file keeps its mode, and so do the files beside it."""
        as_engine_converter(data_converter, "Client.connect")  # a wrong one fails before the file is made
        store = await Store.open(target_host, file_mode=file_mode)
        client = cls(store, clock=clock, namespace=namespace, identity=identity, data_converter=data_converter, interceptors=interceptors)
        client._ensure_service()
        return client

    def config(self) -> dict[str, Any]:
        """The arguments this client was made with, as a dict: ``Client(**config)`` makes
        another client on the same database (as temporalio's ``Client.config()``), e.g. with
        another ``data_converter``. The new client shares the database but does not close it;
        this one does."""
        return {
            "store": self.store,
            "clock": self.clock,
            "namespace": self.namespace,
            "identity": self.identity,
            "owns_store": False,
            "data_converter": self._given_converter,
        }

    async def close(self) -> None:
        self._closed = True
        if self._service_task is not None:
            self._service_task.cancel()
            try:
                await self._service_task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - closing anyway
                pass
        if self._owns_store:
            await self.store.close()

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    # ------------------------------------------------------------------ workflows
    async def start_workflow(
        self,
        workflow: str | Callable[..., Any],
        arg: Any = _arg_unset,
        *,
        args: Sequence[Any] = (),
        id: str,
        task_queue: str,
        result_type: type | None = None,
        execution_timeout: timedelta | None = None,
        run_timeout: timedelta | None = None,
        task_timeout: timedelta | None = None,
        id_reuse_policy: WorkflowIDReusePolicy = WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        id_conflict_policy: WorkflowIDConflictPolicy = WorkflowIDConflictPolicy.UNSPECIFIED,
        memo: dict[str, Any] | None = None,
        search_attributes: TypedSearchAttributes | None = None,
        cron_schedule: str = "",
        request_eager_start: bool = False,
        start_delay: timedelta | None = None,
        **_rpc: Any,
    ) -> "WorkflowHandle":
        """Start a run and return its handle at once (the run goes on in the workers).

        ``search_attributes`` (``TypedSearchAttributes``) are indexed: ``list_workflows`` filters
        on them (``CustomKeywordField = 'x'``). ``memo`` is shown by ``describe()`` only.

        ``id_reuse_policy`` and ``id_conflict_policy`` say what happens when runs of ``id``
        exist (temporalio's values: a running one fails the start unless USE_EXISTING or
        TERMINATE_EXISTING). ``cron_schedule`` (``"*/5 * * * *"``, ``"@hourly"``,
        ``"@every 30s"``) makes a chain of runs, one per schedule time, as Temporal does;
        Temporal recommends schedules (``create_schedule``) instead. ``start_delay`` waits
        before the first workflow task. ``request_eager_start`` changes no history (this
        engine hands a new run's first task to a local worker at once anyway); as in
        temporalio, the handle's ``__temporal_eagerly_started`` says whether a worker of this
        client serves the run's task queue and type."""
        if _client_interceptors.intercepting(self):
            return await self._outbound.start_workflow(_client_interceptors.start_input(dict(locals()), _arg_unset))
        request, hinted = await self._start_request(
            workflow, arg, args=args, id=id, task_queue=task_queue, execution_timeout=execution_timeout,
            run_timeout=run_timeout, task_timeout=task_timeout, id_reuse_policy=id_reuse_policy,
            id_conflict_policy=id_conflict_policy, memo=memo, search_attributes=search_attributes,
            cron_schedule=cron_schedule, start_delay=start_delay,
        )
        self._ensure_service()
        run_id = await self.store.run(_service.start_workflow, request, self.clock.now())
        handle = WorkflowHandle(self, id, run_id=run_id, result_run_id=run_id, first_execution_run_id=run_id, result_type=result_type or hinted)
        # temporalio's flag: eager when a worker of this client takes the first task (Temporal's condition).
        eager = request_eager_start and any(w.task_queue == task_queue and w.serves_workflow(request.workflow_type) for w in self._workers)
        setattr(handle, "__temporal_eagerly_started", eager)
        return handle

    async def _start_request(
        self,
        workflow: str | Callable[..., Any],
        arg: Any = _arg_unset,
        *,
        args: Sequence[Any] = (),
        id: str,
        task_queue: str,
        execution_timeout: timedelta | None = None,
        run_timeout: timedelta | None = None,
        task_timeout: timedelta | None = None,
        id_reuse_policy: WorkflowIDReusePolicy = WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        id_conflict_policy: WorkflowIDConflictPolicy = WorkflowIDConflictPolicy.UNSPECIFIED,
        memo: dict[str, Any] | None = None,
        search_attributes: TypedSearchAttributes | None = None,
        cron_schedule: str = "",
        start_delay: timedelta | None = None,
    ) -> tuple[StartRequest, Any]:
        """A start checked and encoded (not sent), and the workflow's result type hint."""
        if isinstance(workflow, str):
            name, hinted = workflow, None
        else:
            defn = workflow_definition(workflow)
            name, hinted = defn.name, defn.result_type
        if not id:
            raise ValueError("start_workflow needs a workflow id: pass id='...'.")
        if not task_queue:
            raise ValueError("start_workflow needs a task queue: pass task_queue='...' (the queue your worker polls).")
        all_args = ([arg] if arg is not _arg_unset else []) + list(args)
        converter = self.data_converter
        payloads = await converter._encode_json(all_args, f"argument of workflow {name!r}")
        encoded_memo = {k: (await converter._encode_json([v], f"memo field {k!r}", numbered=False))["payloads"][0] for k, v in (memo or {}).items()}
        indexed = _search_attributes.encode_typed(search_attributes)
        if cron_schedule:
            parse_cron(cron_schedule)  # a bad schedule fails here, in one line
        if cron_schedule and start_delay:
            raise ValueError("start_workflow takes cron_schedule or start_delay, not both (as Temporal).")
        request = StartRequest(
            workflow_id=id,
            workflow_type=name,
            task_queue=task_queue,
            input=payloads,
            identity=self.identity,
            execution_timeout=execution_timeout,
            run_timeout=run_timeout,
            task_timeout=task_timeout,
            memo=encoded_memo or None,
            search_attributes=indexed or None,
            header=_client_interceptors.outgoing_header() or None,
            id_reuse_policy=int(id_reuse_policy),
            id_conflict_policy=int(id_conflict_policy),
            cron_schedule=cron_schedule or None,
            first_task_backoff=start_delay,
        )
        return request, hinted

    async def start_update_with_start_workflow(
        self,
        update: str | Callable[..., Any],
        arg: Any = _arg_unset,
        *,
        start_workflow_operation: WithStartWorkflowOperation,
        args: Sequence[Any] = (),
        id: str | None = None,
        wait_for_stage: WorkflowUpdateStage = WorkflowUpdateStage.ACCEPTED,
        result_type: type | None = None,
        **_rpc: Any,
    ) -> WorkflowUpdateHandle:
        """Send an update to the run ``start_workflow_operation`` describes, starting it first
        if its id conflict policy says so (``USE_EXISTING``: the running one takes the update),
        in one transaction; return once the update reached ``wait_for_stage``. The operation's
        ``workflow_handle()`` then gives the run."""
        all_args = ([arg] if arg is not _arg_unset else []) + list(args)
        return await _client_with_start.start(
            self, update, all_args, start_workflow_operation, id=id, wait_for_stage=wait_for_stage, result_type=result_type
        )

    async def execute_update_with_start_workflow(
        self,
        update: str | Callable[..., Any],
        arg: Any = _arg_unset,
        *,
        start_workflow_operation: WithStartWorkflowOperation,
        args: Sequence[Any] = (),
        id: str | None = None,
        result_type: type | None = None,
        **_rpc: Any,
    ) -> Any:
        """``start_update_with_start_workflow`` waiting for the update's result."""
        handle = await self.start_update_with_start_workflow(
            update, arg, start_workflow_operation=start_workflow_operation, args=args, id=id,
            wait_for_stage=WorkflowUpdateStage.COMPLETED, result_type=result_type,
        )
        return await handle.result()

    async def execute_workflow(self, workflow: str | Callable[..., Any], arg: Any = _arg_unset, **kwargs: Any) -> Any:
        """Start a run and wait for its result."""
        handle = await self.start_workflow(workflow, arg, **kwargs)
        return await handle.result()

    def get_workflow_handle(
        self, workflow_id: str, *, run_id: str | None = None, first_execution_run_id: str | None = None, result_type: type | None = None
    ) -> "WorkflowHandle":
        """A handle on an existing run (the latest run of ``workflow_id`` unless ``run_id`` is given)."""
        return WorkflowHandle(self, workflow_id, run_id=run_id, result_run_id=run_id, first_execution_run_id=first_execution_run_id, result_type=result_type)

    def get_workflow_handle_for(self, workflow: Callable[..., Any], workflow_id: str, *, run_id: str | None = None) -> "WorkflowHandle":
        defn = workflow_definition(workflow)
        return self.get_workflow_handle(workflow_id, run_id=run_id, result_type=defn.result_type)

    def get_async_activity_handle(
        self,
        *,
        workflow_id: str | None = None,
        run_id: str | None = None,
        activity_id: str | None = None,
        task_token: bytes | None = None,
    ) -> AsyncActivityHandle:
        """A handle to complete, fail, heartbeat or cancel an activity that ended with
        ``activity.raise_complete_async()``: by its ``task_token``, or by ``workflow_id``
        (``run_id`` optional: the latest run) and ``activity_id``."""
        return _async_activity_handle(self, workflow_id=workflow_id, run_id=run_id, activity_id=activity_id, task_token=task_token)

    def list_workflows(
        self,
        query: str | None = None,
        *,
        status: str | None = None,
        workflow_type: str | None = None,
        limit: int | None = None,
        page_size: int = 1000,
        next_page_token: bytes | None = None,
    ) -> WorkflowExecutionAsyncIterator[WorkflowExecutionDescription]:
        """Runs, newest first: every run (or ``limit`` of them), read ``page_size`` at a time as
        you iterate (``async for run in client.list_workflows(...)``), as in temporalio.
        ``await client.list_workflows(...)`` gives them all as a list.

        ``query`` is a Temporal list filter, e.g. ``"WorkflowType='Hello' AND ExecutionStatus='Running'"``
        (WorkflowId, RunId, WorkflowType, TaskQueue, ExecutionStatus, StartTime, CloseTime with
        ``= != < > <= >=``, ``BETWEEN``, ``IN``, ``STARTS_WITH``, ``AND``, ``OR`` and parentheses);
        it raises ``ListFilterError`` naming the token it cannot read. ``status`` (a status name
        such as ``"Running"``) and ``workflow_type`` are shortcuts ANDed with it.
        ``next_page_token`` (an earlier iterator's) goes on where that one stopped.
        """
        where, params = [], []
        if status:
            where.append("e.status = ?")
            params.append(status)
        if workflow_type:
            where.append("e.workflow_type = ?")
            params.append(workflow_type)
        if limit is not None and limit < 1:
            raise ValueError(f"limit must be at least 1 (or None for every run), not {limit}.")
        if page_size < 1:
            raise ValueError(f"page_size must be at least 1, not {page_size}.")
        converter = self.data_converter
        # The filter is compiled at the first page: custom search attributes need their types,
        # which are read from the database (so a bad filter raises when iteration starts).
        compiled: list[tuple[str, list[Any]]] = []

        async def fetch(size: int, after: tuple[float, int] | None) -> tuple[list[WorkflowExecutionDescription], tuple[float, int] | None]:
            if not compiled:
                conditions, values = list(where), list(params)
                if query is not None and query.strip():
                    sql, filter_values = compile_list_filter(query, await self.store.read(_service_visibility.types))
                    conditions.insert(0, sql)
                    values[:0] = filter_values
                compiled.append((" AND ".join(conditions), values))
            condition, values = compiled[0]
            rows = await self.store.read(_list_page, condition, values, size, after)
            last = (rows[-1][-2], rows[-1][-1]) if len(rows) == size else None  # a full page: maybe more
            return [_description(row, converter) for row in rows], last

        return WorkflowExecutionAsyncIterator(
            fetch, limit=limit, page_size=page_size, next_page_token=next_page_token,
            history_of=lambda run: self.get_workflow_handle(run.id, run_id=run.run_id).fetch_history(),
        )

    # ------------------------------------------------------------------ schedules
    async def create_schedule(
        self, id: str, schedule: Schedule, *, trigger_immediately: bool = False, **_options: Any
    ) -> ScheduleHandle:
        """Make a schedule (Temporal's recommended successor of cron): it starts
        ``schedule.action``'s workflow at each time of ``schedule.spec`` (intervals, cron
        expressions) unless paused, driven by the engine's clock (time skipping skips to it)."""
        return await _schedules.create(self, id, schedule, trigger_immediately=trigger_immediately)

    def get_schedule_handle(self, id: str) -> ScheduleHandle:
        """A handle on the schedule ``id`` (not checked until it is used)."""
        return ScheduleHandle(self, id)

    def list_schedules(self, query: str | None = None, **_options: Any) -> AsyncIterator[ScheduleListDescription]:
        """Every schedule, by id (``async for``); ``query`` filters are not supported."""
        if query:
            raise ValueError("list_schedules does not take a query in this engine: leave it out and filter what it yields.")
        return _schedules.list_schedules(self)

    async def count_workflows(self, query: str | None = None, **_rpc: Any) -> WorkflowExecutionCount:
        """How many runs match ``query`` (a list filter, as ``list_workflows``'s; every run
        without one). ``... GROUP BY ExecutionStatus`` also counts each status (``groups``)."""
        return await _client_reads.count_workflows(self, query)

    # ------------------------------------------------------------------ the engine's clock work
    def _ensure_service(self) -> None:
        if self.store.read_only:
            return  # firing timers is writing; a read-only database is only looked at
        if self._service_task is None or self._service_task.done():
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            self._service_task = loop.create_task(self._service_loop(), name="engine-timers")

    async def _service_loop(self) -> None:
        try:
            await self._serve_clock()
        except asyncio.CancelledError:
            if not self._closed:
                # Cancelled by the event loop's end (asyncio.run cancels every task), not by
                # close(): close the database while the loop still runs, so that its threads
                # end now rather than answer a closed loop ("Event loop is closed").
                self._closed = True
                if self._owns_store:
                    await self.store.close()
            raise

    async def _serve_clock(self) -> None:
        """Fire due timers, retries and timeouts; in time-skipping mode, move the clock."""
        clock, store = self.clock, self.store
        while not self._closed:
            now = clock.now()
            woken = store.waiter("timers", "")
            try:
                if clock.skipping:
                    owners = sorted(w._owner for w in self._workers)
                    idle, upcoming, due = await store.read(_service.idle_state, ts(now), sorted(self.served_queues), owners)
                else:
                    idle, upcoming = False, await store.read(_service.next_due)
                    due = upcoming is not None and upcoming <= ts(now)
                # Only take the write lock when something is due: a read is far cheaper.
                if due:
                    fired = await store.run(_service.fire_due, now)
                    if fired:
                        continue
            except StoreError:
                await asyncio.sleep(0.5)
                continue
            if clock.skipping and clock.auto_skip and idle and upcoming is not None:  # type: ignore[attr-defined]
                if owners != sorted(w._owner for w in self._workers):
                    # A worker started while the state was read: its leases were not counted
                    # (a workflow task running local activities would time out). Read again.
                    continue
                clock.advance_to(from_ts(upcoming))  # type: ignore[attr-defined]
                continue
            waits: list[Any] = [woken.wait()]
            if clock.skipping:
                waits.append(store.waiter("any", "").wait())
            deadline = from_ts(upcoming) if upcoming is not None else None
            waits.append(clock.sleep_until(deadline, at_most=1.0))
            await wait_first(waits)


class _ClosingWatch:
    """Wakes result waiters when their run closes.

    A close committed by this process resolves its waiters at once, with the closing event
    (``Store.close_waiter``); one shared poll (not one per waiter) notices closes made by
    other processes sharing the database file and resolves their waiters with None.
    """

    POLL = 0.25

    def __init__(self, store: Store) -> None:
        self._store = store
        self._poller: asyncio.Task | None = None

    def waiter(self, run_id: str) -> asyncio.Future:
        if self._poller is None or self._poller.done():
            self._poller = asyncio.ensure_future(self._poll())
        return self._store.close_waiter(run_id)

    async def _poll(self) -> None:
        waiters = self._store._close_waiters
        while waiters:
            await asyncio.sleep(self.POLL)
            try:
                closed = await self._store.read(_closed_among, list(waiters))
            except StoreError:
                continue
            for run_id in closed:
                for fut in waiters.pop(run_id, ()):
                    if not fut.done():
                        fut.set_result(None)


def _closed_among(conn: Any, run_ids: list[str]) -> list[str]:
    closed: list[str] = []
    for start in range(0, len(run_ids), 500):
        chunk = run_ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        closed += [r[0] for r in conn.execute(f"SELECT run_id FROM executions WHERE status != 'Running' AND run_id IN ({marks})", chunk)]
    return closed


async def wait_first(awaitables: list[Any], timeout: float | None = None) -> None:
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


class WorkflowHandle:
    """A workflow run: wait for its result, describe it, read its history, cancel or terminate it."""

    def __init__(
        self,
        client: Client,
        id: str,
        *,
        run_id: str | None = None,
        result_run_id: str | None = None,
        first_execution_run_id: str | None = None,
        result_type: type | None = None,
    ) -> None:
        self._client = client
        self.id = id
        self.run_id = run_id
        self.result_run_id = result_run_id
        self.first_execution_run_id = first_execution_run_id
        setattr(self, "__temporal_eagerly_started", False)  # temporalio's flag (set by an eager start_workflow)
        self._result_type = result_type

    def __repr__(self) -> str:
        return f"<WorkflowHandle id={self.id!r} run_id={self.run_id!r}>"

    async def _resolve_run(self) -> str:
        if self.run_id:
            return self.run_id
        row = await self._client.store.read(_latest_run, self.id)
        if row is None:
            raise WorkflowNotFoundError(f"No workflow with id {self.id!r} in {self._client.store.path!r}. Check the id (they are case-sensitive) or list runs with client.list_workflows().")
        return row

    async def result(self, *, follow_runs: bool = True) -> Any:
        """Wait for the run to close; return its result or raise ``WorkflowFailureError``."""
        client = self._client
        client._ensure_service()
        run_id = await self._resolve_run()
        clock = client.clock
        if clock.skipping:
            clock.hold_auto_skip()  # type: ignore[attr-defined]
            client.store._wake(("timers", ""))
        try:
            while True:
                # Registered before the read, so that a close committed meanwhile is not missed.
                waiter = client._closings.waiter(run_id)
                try:
                    closing = await client.store.read(_closing_event, run_id)
                    if closing is None:
                        closing = await waiter  # None: closed by another process, read it
                finally:
                    client.store.drop_close_waiter(run_id, waiter)
                if closing is None:
                    continue
                event_type, attrs = closing
                if follow_runs and attrs.get("newExecutionRunId") and event_type != "WorkflowExecutionContinuedAsNew":
                    run_id = attrs["newExecutionRunId"]  # a cron chain's next run
                    self.result_run_id = run_id
                    continue
                if event_type == "WorkflowExecutionContinuedAsNew" and follow_runs:
                    run_id = attrs["newExecutionRunId"]  # follow the chain to its last run
                    self.result_run_id = run_id
                    continue
                return await self._outcome(event_type, attrs)
        finally:
            if clock.skipping:
                clock.release_auto_skip()  # type: ignore[attr-defined]

    async def _outcome(self, event_type: str, attrs: dict[str, Any]) -> Any:
        converter = self._client.data_converter
        if event_type == "WorkflowExecutionCompleted":
            values = await converter._decode_json(attrs.get("result"), (self._result_type,), "the workflow result")
            return values[0] if values else None
        if event_type == "WorkflowExecutionFailed":
            cause: BaseException = await converter.decode_failure(attrs.get("failure") or {})
        elif event_type == "WorkflowExecutionCanceled":
            cause = CancelledError("Workflow cancelled")
        elif event_type == "WorkflowExecutionTerminated":
            cause = TerminatedError(attrs.get("reason") or "Workflow terminated")
        elif event_type == "WorkflowExecutionContinuedAsNew":
            raise WorkflowContinuedAsNewError(attrs["newExecutionRunId"])
        elif event_type == "WorkflowExecutionTimedOut":
            cause = TimeoutError("Workflow execution timed out", type=TimeoutType.START_TO_CLOSE)
        else:
            cause = RuntimeError(f"Run closed with {event_type}")
        raise WorkflowFailureError(cause=cause)

    async def describe(self) -> WorkflowExecutionDescription:
        if _client_interceptors.intercepting(self._client):
            return await self._client._outbound.describe_workflow(_client_interceptors.DescribeWorkflowInput(self.id, self.run_id))
        run_id = await self._resolve_run()
        rows = await self._client.store.read(_list_runs_by_id, run_id)
        if not rows:
            raise WorkflowNotFoundError(f"No run {run_id!r} of workflow {self.id!r}. Check the run id, or omit it for the latest run.")
        description = _description(rows[0], self._client.data_converter)
        if rows[0][10] is None or rows[0][11] is None:
            # Written before schema 8 (or without either): the start event has what there is.
            attributes, memo = await self._client.store.read(_service_visibility.read, run_id)
            description = dataclasses.replace(
                description, typed_search_attributes=_search_attributes.decode_typed(attributes), raw_memo=memo
            )
        if description.pending_activities:
            from engine._describe_json import pending_activities

            infos = await self._client.store.read(pending_activities, run_id)
            description = dataclasses.replace(description, pending_activity_infos=tuple(infos))
        return description

    async def fetch_history(self) -> History:
        run_id = await self._resolve_run()
        events = await self._client.store.read(_service.read_events, run_id, 0)
        if not events:
            raise WorkflowNotFoundError(f"No run {run_id!r} of workflow {self.id!r}. Check the run id, or omit it for the latest run.")
        return History(self.id, tuple(events))

    def fetch_history_events(
        self, *, page_size: int | None = None, wait_new_event: bool = False, **_rpc: Any
    ) -> AsyncIterator[HistoryEvent]:
        """The run's history events as an async iterator, read a page at a time. With
        ``wait_new_event`` it waits for new events and ends once the run has closed."""

        async def events() -> AsyncIterator[HistoryEvent]:
            run_id = await self._resolve_run()
            async for event in _client_reads.history_events(self._client, run_id, page_size=page_size, wait_new_event=wait_new_event):
                yield event

        return events()

    async def activity_attempts(self) -> list["ActivityAttempt"]:
        """Every attempt of every activity of the run, failed ones included (history keeps
        only the last attempt of each activity; the engine keeps them all for the viewers)."""
        run_id = await self._resolve_run()
        rows = await self._client.store.read(_attempts, run_id)
        return [ActivityAttempt(*row) for row in rows]

    async def snapshot(self) -> "RunSnapshot":
        """The run read in one go for viewers (history decoded, every activity attempt, its
        continue-as-new chain and children): see :mod:`engine.run_snapshot`."""
        from engine.run_snapshot import read_snapshot

        return await read_snapshot(self._client, self.id, self.run_id)

    async def signal(self, signal: str | Callable[..., Any], arg: Any = _arg_unset, *, args: Sequence[Any] = ()) -> None:
        """Send a signal: recorded in the run's history, then delivered to its handler, also
        when no worker is running now (it waits in history for the next one)."""
        name = signal if isinstance(signal, str) else _foreign.handler_name(signal, "signal")
        if not name:
            raise ValueError(f"{signal!r} is not a signal: pass its name or a method decorated with @workflow.signal.")
        all_args = ([arg] if arg is not _arg_unset else []) + list(args)
        if _client_interceptors.intercepting(self._client):
            await self._client._outbound.signal_workflow(_client_interceptors.SignalWorkflowInput(self.id, self.run_id, name, all_args, {}))
            return
        payloads = await self._client.data_converter._encode_json(all_args, f"argument of signal {name!r}")
        run_id = await self._resolve_run()
        await self._client.store.run(
            _service.signal_workflow, run_id, name, payloads, self._client.identity, self._client.clock.now(), None,
            _client_interceptors.outgoing_header() or None,
        )

    async def query(
        self,
        query: str | Callable[..., Any],
        arg: Any = _arg_unset,
        *,
        args: Sequence[Any] = (),
        result_type: type | None = None,
        rpc_timeout: timedelta | None = None,
    ) -> Any:
        """Ask the run a question: a worker of this process that has the workflow's code
        replays its history and calls the query handler. Nothing is written to history."""
        name = query if isinstance(query, str) else _foreign.handler_name(query, "query")
        if not name:
            raise ValueError(f"{query!r} is not a query: pass its name or a method decorated with @workflow.query.")
        all_args = ([arg] if arg is not _arg_unset else []) + list(args)
        if _client_interceptors.intercepting(self._client):
            call = _client_interceptors.QueryWorkflowInput(self.id, self.run_id, name, all_args, {}, result_type, rpc_timeout)
            return await self._client._outbound.query_workflow(call)
        description = await self.describe()
        converter = self._client.data_converter
        # Arguments and answer cross as payloads (through the codec), as over Temporal's network.
        payloads = await converter._encode_json(all_args, f"argument of query {name!r}")
        worker = next((w for w in self._client._workers if w.serves_workflow(description.workflow_type)), None)
        if worker is None:
            # Another process may have the code: ask its workers through the database.
            answer = await _queries.ask(
                self._client, description.run_id, description.workflow_type, description.task_queue, name, payloads,
                (rpc_timeout or timedelta(seconds=10)).total_seconds(),
            )
        else:
            try:
                answer = await worker.query(description.run_id, name, payloads, _client_interceptors.outgoing_headers())
            except KeyError as e:
                raise ValueError(e.args[0]) from None
        return (await converter._decode_json({"payloads": [answer]}, (result_type,), f"the answer to query {name!r}"))[0]

    async def execute_update(
        self,
        update: str | Callable[..., Any],
        arg: Any = _arg_unset,
        *,
        args: Sequence[Any] = (),
        id: str | None = None,
        result_type: type | None = None,
    ) -> Any:
        """Send an update and wait for its result. Raises ``WorkflowUpdateFailedError`` if
        its validator rejects it or its handler fails."""
        handle = await self.start_update(
            update, arg, args=args, id=id, wait_for_stage=WorkflowUpdateStage.COMPLETED, result_type=result_type
        )
        return await handle.result()

    async def start_update(
        self,
        update: str | Callable[..., Any],
        arg: Any = _arg_unset,
        *,
        args: Sequence[Any] = (),
        id: str | None = None,
        wait_for_stage: WorkflowUpdateStage = WorkflowUpdateStage.ACCEPTED,
        result_type: type | None = None,
    ) -> WorkflowUpdateHandle:
        """Send an update; return once it reached ``wait_for_stage`` (accepted by default)."""
        all_args = ([arg] if arg is not _arg_unset else []) + list(args)
        hinted = None if isinstance(update, str) else _hinted_result(update)
        if _client_interceptors.intercepting(self._client):
            call = _client_interceptors.StartWorkflowUpdateInput(
                self.id, self.run_id, self.first_execution_run_id, id, _client_updates.update_name(update), all_args,
                wait_for_stage, {}, result_type or hinted,
            )
            return await self._client._outbound.start_workflow_update(call)
        return await _client_updates.start(
            self, update, all_args, id=id, wait_for_stage=wait_for_stage, result_type=result_type or hinted
        )

    def get_update_handle(self, id: str, *, result_type: type | None = None) -> WorkflowUpdateHandle:
        """A handle to an update sent earlier (by its id)."""
        if not self.run_id:
            raise ValueError("get_update_handle needs a handle with a run id (from start_workflow or get_workflow_handle(id, run_id=...)).")
        return WorkflowUpdateHandle(self, self.run_id, id, "", result_type)

    async def cancel(self, *, reason: str = "") -> None:
        """Ask the run to cancel: workflow code sees ``asyncio.CancelledError`` and may clean up."""
        if _client_interceptors.intercepting(self._client):
            call = _client_interceptors.CancelWorkflowInput(self.id, self.run_id, self.first_execution_run_id, reason)
            return await self._client._outbound.cancel_workflow(call)
        run_id = await self._resolve_run()
        await self._client.store.run(_service.request_cancel, run_id, reason, self._client.identity, self._client.clock.now())

    async def terminate(self, *args: Any, reason: str | None = None) -> None:
        """End the run at once; no workflow code runs."""
        if _client_interceptors.intercepting(self._client):
            call = _client_interceptors.TerminateWorkflowInput(self.id, self.run_id, self.first_execution_run_id, args, reason)
            return await self._client._outbound.terminate_workflow(call)
        run_id = await self._resolve_run()
        details = await self._client.data_converter._encode_json(args, "termination detail") if args else None
        await self._client.store.run(_service.terminate, run_id, reason or "", details, self._client.identity, self._client.clock.now())


def _hinted_result(fn: Callable[..., Any]) -> Any:
    from engine._definitions import hints_of

    try:
        return hints_of(fn, skip_self=True)[1]
    except Exception:  # noqa: BLE001 - hints are a convenience; without them values stay JSON
        return None


# ---------------------------------------------------------------------- reads (database thread)
_COLUMNS = (
    "e.workflow_id, e.run_id, e.workflow_type, e.task_queue, e.status, e.start_time, e.close_time, "
    "e.next_event_id - 1, (SELECT count(*) FROM tasks t WHERE t.run_id = e.run_id AND t.kind = 'activity'), "
    "(SELECT count(*) FROM timers m WHERE m.run_id = e.run_id AND m.kind = 'timer'), e.search_attributes, e.memo"
)
_DESC = f"SELECT {_COLUMNS} FROM executions e"


class WorkflowContinuedAsNewError(EngineError):
    """``result(follow_runs=False)`` on a run that continued as new."""

    def __init__(self, new_execution_run_id: str) -> None:
        super().__init__(f"The run continued as new as run {new_execution_run_id}; call result() with follow_runs=True to wait for the chain.")
        self.new_execution_run_id = new_execution_run_id


def _description(row: Sequence[Any], data_converter: DataConverter) -> WorkflowExecutionDescription:
    return WorkflowExecutionDescription(
        id=row[0],
        run_id=row[1],
        workflow_type=row[2],
        task_queue=row[3],
        status=_STATUS[row[4]],
        start_time=from_ts(row[5]),
        close_time=from_ts(row[6]) if row[6] is not None else None,
        history_length=row[7],
        pending_activities=row[8],
        pending_timers=row[9],
        typed_search_attributes=_search_attributes.decode_typed(json.loads(row[10])) if row[10] else TypedSearchAttributes.empty,
        raw_memo=json.loads(row[11]) if row[11] else {},
        data_converter=data_converter,
    )


def _list_page(conn: Any, where: str, params: list[Any], size: int, after: tuple[float, int] | None) -> list[Any]:
    """One page of runs in list order, each row ending with its key (start time, row id)."""
    conditions = [f"({where})"] if where else []
    values = list(params)
    if after is not None:
        conditions.append("(e.start_time < ? OR (e.start_time = ? AND e.rowid < ?))")
        values += [after[0], after[0], after[1]]
    sql = f"SELECT {_COLUMNS}, e.start_time, e.rowid FROM executions e"
    sql += (" WHERE " + " AND ".join(conditions) if conditions else "") + " ORDER BY e.start_time DESC, e.rowid DESC LIMIT ?"
    return conn.execute(sql, (*values, size)).fetchall()


def _list_runs_by_id(conn: Any, run_id: str) -> list[Any]:
    return conn.execute(_DESC + " WHERE e.run_id = ?", (run_id,)).fetchall()


def _latest_run(conn: Any, workflow_id: str) -> str | None:
    row = conn.execute(
        "SELECT run_id FROM executions WHERE workflow_id = ? ORDER BY start_time DESC, rowid DESC LIMIT 1", (workflow_id,)
    ).fetchone()
    return row[0] if row else None


def _closing_event(conn: Any, run_id: str) -> tuple[str, dict[str, Any]] | None:
    import json

    row = conn.execute("SELECT status, next_event_id FROM executions WHERE run_id = ?", (run_id,)).fetchone()
    if row is None:
        raise WorkflowNotFoundError(f"No workflow run {run_id!r}.")
    if row[0] == "Running":
        return None
    event = conn.execute(
        "SELECT event_type, attributes FROM events WHERE run_id = ? AND event_id = ?", (run_id, row[1] - 1)
    ).fetchone()
    return event[0], json.loads(event[1])
