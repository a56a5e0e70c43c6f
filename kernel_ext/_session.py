"""The kernel's engine: one database, one client, named workers, and the definitions cells made.

Everything here is plain Python (async where the engine is), so tests drive it under
``asyncio.run`` and the magics in :mod:`kernel_ext.magics` stay thin wrappers. A kernel has
one :class:`Session`, living on the kernel's always-running event loop: the client's clock
work and every worker are tasks there and keep running between cells.

The database opens lazily, on the first call that needs it, so ``%config`` may still change
the path or the clock after ``%load_ext``; a later change takes effect at the next call
(workers move to the new engine). Nothing here prints: output from a background task lands
in whatever cell happens to be running, or nowhere.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import uuid
from collections import Counter, deque
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

from engine.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus, WorkflowHandle
from engine.converter import DataConverter
from engine.errors import PayloadError, StoreError, WorkflowNotFoundError, WorkflowQueryFailedError
from kernel_ext import _process_workers, _waiting
from kernel_ext._kernel_workers import KernelWorker, Registration
from kernel_ext._kernel_workers import MEMORY_DB as _MEMORY
from kernel_ext._session_errors import SessionError
from kernel_ext._session_results import (
    EngineStatus,
    JsonDocument,
    RunDescription,
    RunHandle,
    RunTable,
    TimeAdvance,
    _PlainEventTable,
    _shown,
)
from kernel_ext._session_workers import SessionWorkers


__all__ = [
    "DEFAULT_DB_PATH",
    "SHOW_OUTPUTS",
    "TIME_MODES",
    "Session",
    "SessionError",
    "KernelWorker",
    "RunHandle",
    "Registration",
    "EngineStatus",
    "TimeAdvance",
    "RunTable",
    "RunDescription",
    "JsonDocument",
]


DEFAULT_DB_PATH = ".durable/engine.db"


TIME_MODES = ("real", "skip")


SHOW_OUTPUTS = ("table", "json", "graph", "saga", "chain", "explorer")




# ---------------------------------------------------------------------- the session
class Session(SessionWorkers):
    """The engine of one kernel; see the module docstring."""

    def __init__(self, db_path: str = DEFAULT_DB_PATH, time_mode: str = "real", data_converter: DataConverter | None = None) -> None:
        self._db_path = DEFAULT_DB_PATH
        self._time_mode = "real"
        self._data_converter = DataConverter.default
        self.configure(db_path=db_path, time_mode=time_mode, data_converter=data_converter)
        self.workflows: dict[str, type] = {}
        self.activities: dict[str, Callable[..., Any]] = {}
        self._workers: dict[str, KernelWorker] = {}
        self._processes: dict[str, _process_workers.ProcessWorker] = {}
        self.sources: list[str] = []  # %%workflow / %%activity cells, in the order they ran
        self._numbers = {"w": itertools.count(1), "p": itertools.count(1)}  # w1, w2, ...; p1, p2, ...
        self._store: Any = None
        self._client: Client | None = None
        self._opened: tuple[str, str, DataConverter] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = asyncio.Lock()
        self._log = _EngineLog()

    # ------------------------------------------------------------ settings
    @property
    def db_path(self) -> str:
        return self._db_path

    @property
    def time_mode(self) -> str:
        return self._time_mode

    @property
    def data_converter(self) -> DataConverter:
        """What the client and workers convert payloads with (its codec encrypts, say)."""
        return self._data_converter

    @property
    def client(self) -> Client | None:
        """The open client, or ``None`` before the first call that needed the engine."""
        return self._client

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self._loop

    def configure(self, *, db_path: str | None = None, time_mode: str | None = None, data_converter: DataConverter | None = None) -> None:
        """Change where the engine lives, how its clock runs, or the data converter of its
        client and workers (applied at the next call)."""
        if db_path is not None:
            if not str(db_path).strip():
                raise SessionError("The database path is empty: give a file path such as .durable/engine.db, or ':memory:'.")
            self._db_path = str(db_path)
        if time_mode is not None:
            if time_mode not in TIME_MODES:
                raise SessionError(f"Unknown time mode {time_mode!r}: use 'real' (the wall clock) or 'skip' (time skipping).")
            self._time_mode = time_mode
        if data_converter is not None:
            if not isinstance(data_converter, DataConverter):
                raise SessionError(
                    f"The data converter must be an engine.converter.DataConverter, not {type(data_converter).__name__}: "
                    "e.g. DataConverter(payload_codec=EncryptionCodec(key))."
                )
            self._data_converter = data_converter

    def resolved_path(self) -> str:
        return _MEMORY if self._db_path == _MEMORY else os.path.abspath(os.path.expanduser(self._db_path))

    # ------------------------------------------------------------ opening and closing
    async def ensure_ready(self) -> Client:
        """Open the engine if needed (or reopen it after a settings change); return the client."""
        loop = asyncio.get_running_loop()
        if self._loop is not None and self._loop is not loop and self._store is not None:
            raise SessionError("This engine was opened on another event loop; close it there first (await session.close()).")
        async with self._lock:
            wanted = (self.resolved_path(), self._time_mode, self._data_converter)
            if self._client is not None and self._opened == wanted:
                return self._client
            await self._stop_engine_workers()
            previous = self._client
            if previous is not None:
                await previous.close()
                self._client = None
            if self._store is not None and self._opened is not None and self._opened[0] != wanted[0]:
                await self._store.close()
                self._store = None
            if self._store is None:
                self._store = await _open_store(wanted[0])
                self._log.attach()
            self._client = _new_client(self._store, self._time_mode, previous, self._data_converter)
            self._opened, self._loop = wanted, loop
            for kernel_worker in self._workers.values():
                self._start_engine_worker(kernel_worker)
            return self._client

    async def close(self) -> None:
        """Stop every worker (processes too) and close the client and the database."""
        async with self._lock:
            for process in list(self._processes.values()):
                await process.stop()
            self._processes.clear()
            await self._stop_engine_workers()
            for kernel_worker in self._workers.values():
                kernel_worker._stopped.set()
            self._workers.clear()
            if self._client is not None:
                await self._client.close()
            if self._store is not None:
                await self._store.close()
            self._log.detach()
            self._client = self._store = self._opened = None

    def close_soon(self) -> "asyncio.Task[None] | None":
        """Close from synchronous code (``%unload_ext``): at once if the engine's loop is idle
        (a plain IPython shell), else as a task on that loop (ipykernel), which is returned:
        asyncio holds tasks weakly, so keep a reference until it is done."""
        loop = self._loop
        if loop is None or loop.is_closed() or (self._store is None and not self._workers):
            return None
        if not loop.is_running():
            loop.run_until_complete(self.close())
            return None
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            return loop.create_task(self.close(), name="durable-lab close")
        asyncio.run_coroutine_threadsafe(self.close(), loop)  # the loop runs in another thread
        return None


    # ------------------------------------------------------------ workflows
    async def start_workflow(
        self,
        workflow_type: str,
        *,
        task_queue: str,
        workflow_id: str | None = None,
        args: Sequence[Any] = (),
        execution_timeout: timedelta | None = None,
        run_timeout: timedelta | None = None,
        task_timeout: timedelta | None = None,
    ) -> RunHandle:
        """Start a run of a workflow type the kernel defined; return at once."""
        cls = self._workflow_class(workflow_type)
        client = await self.ensure_ready()
        handle = await client.start_workflow(
            cls,
            args=list(args),
            id=workflow_id or str(uuid.uuid4()),
            task_queue=task_queue,
            execution_timeout=execution_timeout,
            run_timeout=run_timeout,
            task_timeout=task_timeout,
        )
        return RunHandle(handle, workflow_type, task_queue)

    async def execute_workflow(self, workflow_type: str, *, task_queue: str, **options: Any) -> Any:
        """Start a run and wait for its result (a worker of this kernel must poll the queue).
        If its workflow task fails, the wait stops with the failure (the run goes on)."""
        self._workflow_class(workflow_type)
        polled = any(w.task_queue == task_queue and w.worker is not None and not w.crashed for w in self._workers.values())
        polled |= any(p.task_queue == task_queue and p.state == "running" for p in self._processes.values())
        if not polled:
            raise SessionError(
                f"No worker of this kernel polls task queue {task_queue!r}, so the run would wait forever. "
                f"Start one first: %worker start --task-queue {task_queue} (or use %workflow start, which does not wait)."
            )
        run = await self.start_workflow(workflow_type, task_queue=task_queue, **options)
        # A new run: any failure of its workflow task is news (and needs no read first).
        return await _waiting.wait_for_result(await self.ensure_ready(), run, new=True)

    async def workflow_result(self, workflow_id: str, run_id: str | None = None) -> Any:
        """Wait for a run's result (``temporal workflow result``); stop with the failure if
        its workflow task fails anew meanwhile (see :mod:`kernel_ext._waiting`)."""
        handle, description = await self._run(workflow_id, run_id)
        run = RunHandle(handle, description.workflow_type, description.task_queue)
        return await _waiting.wait_for_result(await self.ensure_ready(), run)

    def _workflow_class(self, workflow_type: str) -> type:
        cls = self.workflows.get(workflow_type)
        if cls is None:
            known = ", ".join(sorted(self.workflows)) or "none yet"
            raise SessionError(f"Unknown workflow type {workflow_type!r} (this kernel defines: {known}). Define it in a %%workflow cell first; names are case-sensitive.")
        return cls

    async def _run(self, workflow_id: str, run_id: str | None) -> tuple[WorkflowHandle, WorkflowExecutionDescription]:
        client = await self.ensure_ready()
        handle = client.get_workflow_handle(workflow_id, run_id=run_id)
        try:
            description = await handle.describe()
        except WorkflowNotFoundError:
            if run_id is not None:
                raise SessionError(f"Workflow {workflow_id!r} has no run {run_id!r}. List runs with %workflow list.") from None
            raise SessionError(f"No workflow with id {workflow_id!r} in {self._db_path}. Ids are case-sensitive; list runs with %workflow list.") from None
        if description.id != workflow_id:
            raise SessionError(f"Workflow {workflow_id!r} has no run {run_id!r}. List runs with %workflow list.")
        # Pin the run, so a later action hits the run that was looked at, not a newer one.
        return client.get_workflow_handle(workflow_id, run_id=description.run_id), description

    async def describe_workflow(self, workflow_id: str, run_id: str | None = None) -> RunDescription:
        _, description = await self._run(workflow_id, run_id)
        memo = []
        for name in sorted(description.raw_memo):
            try:
                memo.append((name, _shown(await description.memo_value(name))))
            except Exception as e:  # noqa: BLE001 - one unreadable field (encrypted, no codec) must not hide the rest
                memo.append((name, f"<unreadable: {str(e).splitlines()[0] if str(e) else type(e).__name__}>"))
        return RunDescription(description, tuple(memo))

    async def show_workflow(self, workflow_id: str, run_id: str | None = None, *, output: str = "table", detailed: bool = False) -> Any:
        """A run's history: ``output`` is ``table`` (events), ``json`` (Temporal's format),
        ``graph`` (its steps, child runs nested), ``saga`` (forward steps, failure,
        compensations), ``chain`` (every run of its continue-as-new chain) or ``explorer`` (the
        widget of :mod:`kernel_ext.explorer`)."""
        if output not in SHOW_OUTPUTS:
            raise SessionError(f"Unknown output {output!r}: use {', '.join(SHOW_OUTPUTS)}.")
        handle, description = await self._run(workflow_id, run_id)
        if output == "json":
            # As stored (with a codec: encoded), like `temporal workflow show -o json`.
            return JsonDocument((await handle.fetch_history()).to_json_dict())
        if output == "explorer":
            from kernel_ext.explorer import explore

            try:
                return await explore(await self.ensure_ready(), workflow_id, description.run_id)
            except PayloadError as e:
                raise SessionError(f"{e} Set the data converter that wrote the run: %config DurableLab.data_converter = ...") from None
        try:
            snapshot = await handle.snapshot()
        except PayloadError as e:
            raise SessionError(f"{e} Set the data converter that wrote the run: %config DurableLab.data_converter = ...") from None
        history, attempts = snapshot.history, snapshot.attempts
        display = _display_module()
        if output == "table":
            return display.EventTable(history, detailed=detailed) if display else _PlainEventTable(history, detailed)
        if display is None:
            raise SessionError("Graphs need kernel_ext.display, which this checkout does not have yet; use --output table or --output json.")
        title = f"{workflow_id} ({description.workflow_type})"
        if output == "saga":
            return display.SagaView(history, attempts, title=title)
        if output == "chain":
            client = await self.ensure_ready()
            runs = [await client.get_workflow_handle(workflow_id, run_id=run.run_id).snapshot() for run in snapshot.chain]
            return display.ChainView([run.history for run in runs], {run.run_id: run.attempts for run in runs}, title=title)
        return display.RunView.of(snapshot, title=title)

    async def list_workflows(self, query: str | None = None, limit: int | None = None) -> RunTable:
        """Runs, newest first; ``query`` is Temporal's list filter (see ``Client.list_workflows``)."""
        from engine.errors import ListFilterError

        if limit is not None and limit < 1:
            raise SessionError(f"--limit must be at least 1, not {limit}.")
        client = await self.ensure_ready()
        try:
            runs = await client.list_workflows(query, limit=limit)
        except ListFilterError as e:
            raise SessionError(str(e)) from None
        return RunTable(tuple(runs))

    async def cancel_workflow(self, workflow_id: str, run_id: str | None = None, reason: str = "") -> str:
        """Ask a running run to cancel (its code sees the cancellation and may clean up);
        return the run id."""
        handle, description = await self._open_run(workflow_id, run_id, "cancel")
        await handle.cancel(reason=reason)
        return description.run_id

    async def terminate_workflow(self, workflow_id: str, run_id: str | None = None, reason: str | None = None) -> str:
        """End a running run at once, no workflow code runs; return the run id."""
        handle, description = await self._open_run(workflow_id, run_id, "terminate")
        await handle.terminate(reason=reason)
        return description.run_id

    async def reset_workflow(
        self, workflow_id: str, run_id: str | None, event_id: int | None, reset_type: str | None, reason: str, reapply_signals: bool = True
    ) -> str:
        """Reset a run (``temporal workflow reset``): a new run copies its history up to the end of
        a workflow task and the code defined now takes over. Returns what happened, in one line."""
        from engine._history.resets import ResetError, point_for

        handle, description = await self._run(workflow_id, run_id)
        try:
            # The history only to find a --type's event: the engine then checks the point.
            point = event_id if event_id is not None else point_for((await handle.fetch_history()).events, None, reset_type)
            new = await handle.reset(reason=reason, event_id=point, reapply_signals=reapply_signals)
        except ResetError as e:
            raise SessionError(str(e)) from None
        was = "terminated" if description.status == WorkflowExecutionStatus.RUNNING else f"left {description.status.name}"
        return (f"Workflow {workflow_id!r} reset to event {point}: new run {new.run_id} "
                f"(the old run {description.run_id} {was}; %workflow show -w {workflow_id} shows the new one).")

    async def _open_run(self, workflow_id: str, run_id: str | None, verb: str) -> tuple[WorkflowHandle, WorkflowExecutionDescription]:
        handle, description = await self._run(workflow_id, run_id)
        if description.status != WorkflowExecutionStatus.RUNNING:
            raise SessionError(f"Workflow {workflow_id!r} (run {description.run_id}) is already {description.status.name}; nothing to {verb}.")
        return handle, description

    async def signal_workflow(self, workflow_id: str, name: str, args: Sequence[Any] = (), run_id: str | None = None) -> None:
        await self._message(workflow_id, run_id, "signal", name, args)

    async def query_workflow(self, workflow_id: str, name: str, args: Sequence[Any] = (), run_id: str | None = None) -> Any:
        return await self._message(workflow_id, run_id, "query", name, args)

    async def _message(self, workflow_id: str, run_id: str | None, kind: str, name: str, args: Sequence[Any]) -> Any:
        client = await self.ensure_ready()
        handle = client.get_workflow_handle(workflow_id, run_id=run_id)
        await self._run(workflow_id, run_id)
        send = handle.signal if kind == "signal" else handle.query
        try:
            return await send(name, args=list(args))
        except (ValueError, WorkflowNotFoundError, WorkflowQueryFailedError) as e:
            # WorkflowQueryFailedError: no such query, its handler raised, or no worker answered;
            # each message says which and what to do, in one line.
            raise SessionError(str(e)) from None

    # ------------------------------------------------------------ the engine
    async def status(self) -> EngineStatus:
        client = await self.ensure_ready()
        runs = await client.list_workflows()
        counts = Counter(r.status.name.title().replace("_", "") for r in runs)
        return EngineStatus(
            db_path=self._db_path,
            resolved_path=self.resolved_path(),
            time_mode=self._time_mode,
            now=client.clock.now(),
            workers=tuple((w.name, w.task_queue, w.state) for w in self._workers.values()),
            runs=dict(counts),
            workflows=tuple(sorted(self.workflows)),
            activities=tuple(sorted(self.activities)),
            errors=self._log.recent(),
            codec=repr(client.data_converter.payload_codec) if client.data_converter.payload_codec else "",
        )

    async def set_time_mode(self, mode: str) -> EngineStatus:
        """Switch the clock; workers move to the new clock (the database is kept)."""
        self.configure(time_mode=mode)
        return await self.status()

    async def advance_time(self, delta: timedelta) -> "TimeAdvance":
        """Move the engine's clock ``delta`` forward (time skipping only): timers, retries and
        timeouts due by then fire, as if that much time had passed.

        The clock jumps in one step (``WorkflowEnvironment.sleep``): a timer due half-way
        fires at the new time, and timers the woken workflows then start count from there.
        To see a monthly timer fire three times, advance one month three times."""
        if delta <= timedelta(0):
            raise SessionError(f"Advance the clock by a positive duration, not {delta}: e.g. --advance 30d.")
        client = await self.ensure_ready()
        if self._time_mode != "skip":
            raise SessionError(
                "The engine runs on the wall clock, which cannot be moved. Switch to time skipping first: "
                "%engine --time skip (or %config DurableLab.time_mode = 'skip')."
            )
        from engine.testing import WorkflowEnvironment

        before = client.clock.now()
        await WorkflowEnvironment.from_client(client).sleep(delta)
        return TimeAdvance(before, client.clock.now(), delta)

    async def reset(self) -> EngineStatus:
        """Start over with an empty database at the same path; workers keep running."""
        await self.ensure_ready()
        async with self._lock:
            await self._stop_engine_workers()
            if self._client is not None:
                await self._client.close()
            if self._store is not None:
                await self._store.close()
            path = self.resolved_path()
            if path != _MEMORY:
                for suffix in ("", "-wal", "-shm", "-journal"):
                    Path(path + suffix).unlink(missing_ok=True)
            self._client = self._store = self._opened = None
        return await self.status()


class _EngineLog(logging.Handler):
    """Keeps the engine workers' warnings for ``%engine`` to show. The workers run in the
    background, and with no handler anywhere Python would print their records to stderr,
    into whatever cell runs (a logging setup of the user's own still gets them)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self._records: deque[str] = deque(maxlen=5)
        self._logger = logging.getLogger("engine.worker")

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "__temporal_error_identifier", None) == "ActivityFailure":
            return  # a failed attempt is the activity's news, shown with its attempts in the run's views
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += f": {record.exc_info[1]!r}"
        self._records.append(f"{datetime.now(timezone.utc):%H:%M:%S} {text}")

    def recent(self) -> tuple[str, ...]:
        return tuple(self._records)

    def attach(self) -> None:
        if self not in self._logger.handlers:
            self._logger.addHandler(self)

    def detach(self) -> None:
        self._logger.removeHandler(self)


def _display_module() -> Any:
    """``kernel_ext.display`` (another module of this package) if it exists yet."""
    try:
        from kernel_ext import display
    except ModuleNotFoundError as e:
        if e.name != "kernel_ext.display":
            raise
        return None
    return display


# ---------------------------------------------------------------------- engine internals
# The engine has no public hooks for these yet (see the issue report): a client on an
# already open store with another clock, and new definitions for a running worker.
async def _open_store(path: str) -> Any:
    from engine._persistence.store import Store

    if path != _MEMORY:
        try:
            # .durable/ beside the notebook; not deeper. Owner-only: it holds the runs' data.
            Path(path).parent.mkdir(mode=0o700, exist_ok=True)
        except FileNotFoundError:
            pass  # Store.open explains the missing folder
    try:
        return await Store.open(path)
    except StoreError as e:
        raise SessionError(f"{e} Choose another path with %config DurableLab.db_path = '...'.") from e


def _new_client(store: Any, time_mode: str, previous: Client | None, data_converter: DataConverter) -> Client:
    from engine._history.clock import Clock, VirtualClock

    clock: Clock = Clock()
    if time_mode == "skip":
        # Start virtual time where the previous clock stood, so engine time never runs backwards.
        clock = VirtualClock(previous.clock.now() if previous is not None else None)
    return Client(store, clock=clock, owns_store=False, data_converter=data_converter)
