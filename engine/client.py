"""The client: start workflows and talk to them (mirrors ``temporalio.client``).

``Client.connect("path/to/engine.db")`` opens (or creates) an engine database; ``":memory:"``
keeps everything in memory for one process. A client also runs the engine's clock work
(timers, retries, timeouts) for as long as it is open.
"""

from __future__ import annotations

import asyncio
import collections
import os
import socket
from datetime import timedelta
from typing import Any, AsyncIterator, Callable, Sequence

from engine._conversion import search_attributes as _search_attributes
from engine._frontend import interceptors as _client_interceptors
from engine._frontend import reads as _client_reads
from engine._frontend import schedules as _schedules
from engine._frontend import with_start as _client_with_start
# Defined where the frontend keeps them; imported from here, as from temporalio.client.
from engine._frontend.async_activities import AsyncActivityCancelledError, AsyncActivityIDReference  # noqa: F401 (engine.client's public names)
from engine._frontend.async_activities import AsyncActivityHandle, handle as _async_activity_handle
from engine._frontend.closing_watch import _ClosingWatch
from engine._frontend.descriptions import ActivityAttempt, WorkflowExecutionStatus  # noqa: F401 (engine.client's public names)
from engine._frontend.descriptions import WorkflowExecutionDescription, _description, _list_page
from engine._frontend.handles import WorkflowHandle, _arg_unset
from engine._frontend.interceptors import CancelWorkflowInput, DescribeWorkflowInput, Interceptor, OutboundInterceptor, QueryWorkflowInput, SignalWorkflowInput, StartWorkflowInput, StartWorkflowUpdateInput, TerminateWorkflowInput  # noqa: F401 (engine.client's public names)
from engine._frontend.list_pages import WorkflowExecutionAsyncIterator
from engine._frontend.reads import WorkflowExecutionCount
from engine._frontend.reads import WorkflowExecutionCountAggregationGroup  # noqa: F401 (engine.client's public names)
from engine._frontend.schedules import Schedule, ScheduleHandle, ScheduleListDescription
from engine._frontend.schedules import ScheduleAction, ScheduleActionExecutionStartWorkflow, ScheduleActionResult, ScheduleActionStartWorkflow, ScheduleBackfill, ScheduleCalendarSpec, ScheduleDescription, ScheduleRange, ScheduleInfo, ScheduleIntervalSpec, ScheduleOverlapPolicy, SchedulePolicy, ScheduleSpec, ScheduleState, ScheduleUpdate, ScheduleUpdateInput  # noqa: F401 (engine.client's public names)
from engine._frontend.temporalio_converter import as_engine_converter
from engine._frontend.updates import WorkflowUpdateHandle, WorkflowUpdateStage
from engine._frontend.with_start import WithStartWorkflowOperation
from engine._history import search_attributes as history_search_attributes
from engine._history import timer_queue
from engine._history.clock import Clock
from engine._history.clock import wait_first  # noqa: F401 (also imported from here)
from engine._history.cron import parse_cron
from engine._history.schedules import ScheduleAlreadyRunningError, ScheduleNotFoundError  # noqa: F401 (engine.client's public names)
from engine._history.starts import start_workflow, StartRequest
from engine._persistence.list_filter import compile_list_filter
from engine._persistence.store import Store
from engine._sandbox.translation import workflow_definition
from engine.common import TypedSearchAttributes, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from engine.converter import DataConverter
from engine.errors import WorkflowAlreadyStartedError, WorkflowFailureError, WorkflowQueryFailedError, WorkflowUpdateFailedError  # noqa: F401 (engine.client's public names)


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
    "ScheduleBackfill",
    "ScheduleCalendarSpec",
    "ScheduleRange",
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
        run_id = await self.store.run(start_workflow, request, self.clock.now())
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
                    sql, filter_values = compile_list_filter(query, await self.store.read(history_search_attributes.types))
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
            await timer_queue.serve(
                self.clock, self.store, lambda: self._closed, lambda: sorted(w._owner for w in self._workers),
                lambda: sorted(self.served_queues),
            )
        except asyncio.CancelledError:
            if not self._closed:
                # Cancelled by the event loop's end (asyncio.run cancels every task), not by
                # close(): close the database while the loop still runs, so that its threads
                # end now rather than answer a closed loop ("Event loop is closed").
                self._closed = True
                if self._owns_store:
                    await self.store.close()
            raise
