"""``WorkflowHandle``: one workflow (and, once resolved, one run of it) as a client sees it.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Sequence

from engine._conversion import search_attributes as _search_attributes
from engine._frontend import interceptors as _client_interceptors
from engine._frontend import reads as _client_reads
from engine._frontend import updates as _client_updates
from engine._frontend.descriptions import _arg_unset, ActivityAttempt, WorkflowExecutionDescription, _attempts, _closing_event, _description, _latest_run, _list_runs_by_id
from engine._frontend.snapshots import RunSnapshot, read_snapshot
from engine._frontend.updates import WorkflowUpdateHandle, WorkflowUpdateStage
from engine._history import search_attributes as history_search_attributes
from engine._history.closing import request_cancel, terminate
from engine._history.signals import signal_workflow
from engine._history.reset_points import read_points
from engine._history.workflow_tasks import read_events
from engine._matching import queries as _queries
from engine._runtime import foreign as _foreign
from engine.errors import CancelledError, EngineError, TerminatedError, TimeoutError, TimeoutType, WorkflowFailureError, WorkflowNotFoundError
from engine.history import History, HistoryEvent

if TYPE_CHECKING:
    from engine.client import Client




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
        # A run this process started and nothing else touched is open: no read to learn it
        # (a thread's round trip, the one read a run started alone paid besides its commits).
        # Once the waiter answers None (closed elsewhere) the closing event is read.
        unread = True
        try:
            while True:
                # Registered before the read, so that a close committed meanwhile is not missed.
                waiter = client._closings.waiter(run_id)
                try:
                    closing = None if unread and client.store.knows_open(run_id) else await client.store.read(_closing_event, run_id)
                    if closing is None:
                        closing = await waiter  # None: closed by another process, read it
                finally:
                    client.store.drop_close_waiter(run_id, waiter)
                if closing is None:
                    unread = False
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
            cause = TimeoutError("Workflow timed out", type=TimeoutType.START_TO_CLOSE)  # temporalio's wording
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
            attributes, memo = await self._client.store.read(history_search_attributes.read, run_id)
            description = dataclasses.replace(
                description, typed_search_attributes=_search_attributes.decode_typed(attributes), raw_memo=memo
            )
        if description.pending_activities:
            from engine._frontend.describe_json import pending_activities

            infos = await self._client.store.read(pending_activities, run_id)
            description = dataclasses.replace(description, pending_activity_infos=tuple(infos))
        points = await self._client.store.read(read_points, run_id)
        return dataclasses.replace(description, auto_reset_points=tuple(points))

    async def fetch_history(self) -> History:
        run_id = await self._resolve_run()
        events = await self._client.store.read(read_events, run_id, 0)
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

    async def snapshot(self) -> RunSnapshot:
        """The run read in one go for viewers (history decoded, every activity attempt, its
        continue-as-new chain and children): see :mod:`engine.run_snapshot`."""
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
            signal_workflow, run_id, name, payloads, self._client.identity, self._client.clock.now(), None,
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
        replays its history and calls the query handler. Nothing is written to history.

        Raises ``WorkflowQueryFailedError`` when the workflow has no such query, when its
        handler raised, or when no worker answered; ``WorkflowNotFoundError`` for no such run."""
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
                (rpc_timeout or timedelta(seconds=10)).total_seconds(), _client_interceptors.outgoing_header(),
            )
        else:
            answer = await worker.query(description.run_id, name, payloads, _client_interceptors.outgoing_headers())
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
        await self._client.store.run(request_cancel, run_id, reason, self._client.identity, self._client.clock.now())

    async def terminate(self, *args: Any, reason: str | None = None) -> None:
        """End the run at once; no workflow code runs."""
        if _client_interceptors.intercepting(self._client):
            call = _client_interceptors.TerminateWorkflowInput(self.id, self.run_id, self.first_execution_run_id, args, reason)
            return await self._client._outbound.terminate_workflow(call)
        run_id = await self._resolve_run()
        details = await self._client.data_converter._encode_json(args, "termination detail") if args else None
        await self._client.store.run(terminate, run_id, reason or "", details, self._client.identity, self._client.clock.now())

    async def reset(
        self, *, reason: str, event_id: int | None = None, reset_type: str | None = None, reapply_signals: bool = True
    ) -> "WorkflowHandle":
        """Reset the run (``temporal workflow reset``): a new run copies its history up to a
        workflow task, the end of which is ``event_id`` or the ``reset_type``'s
        (``"FirstWorkflowTask"``, ``"LastWorkflowTask"``), and the code running now takes over
        from there; signals received after that point are re-applied unless
        ``reapply_signals=False``. The workflow id's open run is terminated with ``reason``.
        Returns a handle on the new run. ``engine._history.resets`` has the rules."""
        from engine._history.resets import reset_workflow

        if not reason:
            raise ValueError("A reset needs a reason (it is recorded in the new run's history).")
        run_id = await self._resolve_run()
        new_run_id, _ = await self._client.store.run(
            reset_workflow, run_id, event_id, reset_type, reason, self._client.clock.now(), reapply_signals
        )
        return WorkflowHandle(self._client, self.id, run_id=new_run_id)


def _hinted_result(fn: Callable[..., Any]) -> Any:
    from engine._runtime.definitions import hints_of

    try:
        return hints_of(fn, skip_self=True)[1]
    except Exception:  # noqa: BLE001 - hints are a convenience; without them values stay JSON
        return None


class WorkflowContinuedAsNewError(EngineError):
    """``result(follow_runs=False)`` on a run that continued as new."""

    def __init__(self, new_execution_run_id: str) -> None:
        super().__init__(f"The run continued as new as run {new_execution_run_id}; call result() with follow_runs=True to wait for the chain.")
        self.new_execution_run_id = new_execution_run_id
