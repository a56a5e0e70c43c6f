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
import inspect
import itertools
import json
import logging
import os
import socket
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Generator, Iterable, Mapping, Sequence

from engine import faults
from engine._definitions import served_activity
from engine.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus, WorkflowHandle
from engine.converter import DataConverter
from engine.errors import PayloadError, StoreError, WorkflowFailureError, WorkflowNotFoundError
from engine.history import History
from engine.worker import Worker
from kernel_ext import _process_workers, _waiting
from kernel_ext._errors import shown_in_notebook

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
_MEMORY = ":memory:"


class SessionError(Exception):
    """A mistake the user can fix (unknown worker, unknown workflow type, ...).

    The message says what is wrong and what to do; the magics show it as a ``UsageError``.
    """


# ---------------------------------------------------------------------- text views
def _text_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    cells = [list(map(str, headers))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells)


def _when(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


class _Text:
    """Shows ``text()`` as the notebook's plain-text output (a readable static export)."""

    def text(self) -> str:
        raise NotImplementedError

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.text())

    def __repr__(self) -> str:
        return self.text()


@dataclass(frozen=True, repr=False)
class RunTable(_Text):
    """``%workflow list``: runs, newest first."""

    runs: tuple[WorkflowExecutionDescription, ...]

    def __len__(self) -> int:
        return len(self.runs)

    def __iter__(self) -> Any:
        return iter(self.runs)

    def text(self) -> str:
        if not self.runs:
            return "No workflow runs yet."
        rows = [(r.status.name.title().replace("_", ""), r.id, r.workflow_type, r.task_queue, _when(r.start_time)) for r in self.runs]
        return _text_table(("Status", "WorkflowId", "Type", "TaskQueue", "StartTime"), rows)


def _shown(value: Any) -> str:
    """A search attribute or memo value as JSON text (datetimes in ISO form)."""
    return json.dumps(value, ensure_ascii=False, default=lambda v: v.isoformat() if hasattr(v, "isoformat") else str(v))


@dataclass(frozen=True, repr=False)
class RunDescription(_Text):
    """``%workflow describe``: one run's status and counts (fields of the engine's description)."""

    description: WorkflowExecutionDescription
    # (field, value as text) of the memo, decoded ahead (decoding may run the codec).
    memo: tuple[tuple[str, str], ...] = ()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.description, name)

    def text(self) -> str:
        d = self.description
        rows = [
            ("WorkflowId", d.id), ("RunId", d.run_id), ("Type", d.workflow_type), ("TaskQueue", d.task_queue),
            ("Status", d.status.name), ("StartTime", _when(d.start_time)), ("CloseTime", _when(d.close_time)),
            ("HistoryLength", d.history_length), ("PendingActivities", d.pending_activities), ("PendingTimers", d.pending_timers),
        ]
        lines = [f"{k:<18} {v}".rstrip() for k, v in rows]
        attributes = [(pair.key.name, _shown(pair.value)) for pair in d.typed_search_attributes]
        for title, pairs in (("SearchAttributes", attributes), ("Memo", self.memo)):
            if pairs:
                lines.append(f"{title}:")
                lines += [f"  {k:<16} {v}".rstrip() for k, v in pairs]
        return "\n".join(lines)


@dataclass(frozen=True)
class JsonDocument:
    """A JSON value shown as a tree where the front end can, as indented text elsewhere."""

    data: Any

    def text(self) -> str:
        return json.dumps(self.data, indent=2, ensure_ascii=False)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return {"application/json": self.data, "text/plain": self.text()}


@dataclass(frozen=True, repr=False)
class _PlainEventTable(_Text):
    """Stand-in for ``kernel_ext.display.EventTable`` while that module is missing."""

    history: History
    detailed: bool = False

    def text(self) -> str:
        rows = []
        for e in self.history.events:
            details = json.dumps(dict(e.attributes), ensure_ascii=False) if self.detailed else ""
            rows.append((e.event_id, _when(e.event_time), e.event_type, details))
        return _text_table(("Id", "Time", "Type", "Details" if self.detailed else ""), rows)


@dataclass(frozen=True, repr=False)
class EngineStatus(_Text):
    """``%engine``: where the database is, which clock runs, workers, and runs by status."""

    db_path: str
    resolved_path: str
    time_mode: str
    now: datetime
    workers: tuple[tuple[str, str, str], ...]
    runs: Mapping[str, int]
    workflows: tuple[str, ...]
    activities: tuple[str, ...]
    errors: tuple[str, ...] = ()
    codec: str = ""

    def text(self) -> str:
        where = self.db_path if self.db_path == self.resolved_path else f"{self.db_path}  ({self.resolved_path})"
        clock = "real time" if self.time_mode == "real" else f"time skipping (engine time {_when(self.now)})"
        workers = ", ".join(f"{n} (task queue {q!r}, {s})" for n, q, s in self.workers) or "none (start one: %worker start --task-queue Q)"
        runs = ", ".join(f"{s} {n}" for s, n in sorted(self.runs.items())) or "none"
        lines = [
            "durable-lab engine",
            f"  database    {where}",
            f"  clock       {clock}",
            f"  workflows   {', '.join(self.workflows) or 'none (define one in a %%workflow cell)'}",
            f"  activities  {', '.join(self.activities) or 'none (define one in an %%activity cell)'}",
            f"  workers     {workers}",
            f"  runs        {runs}",
        ]
        if self.codec:
            lines.insert(3, f"  codec       {self.codec}")
        lines += [f"  engine log  {e}" for e in self.errors]
        return "\n".join(lines)


@dataclass(frozen=True, repr=False)
class TimeAdvance(_Text):
    """``%engine --advance``: the engine's time before and after."""

    before: datetime
    after: datetime
    delta: timedelta

    def text(self) -> str:
        from kernel_ext._steps import format_seconds

        return f"engine time {_when(self.before)} -> {_when(self.after)} (+{format_seconds(self.delta.total_seconds())})"


# ---------------------------------------------------------------------- handles
class RunHandle:
    """A started run. ``await`` it for the result; other engine handle methods pass through
    (``await h.describe()``, ``await h.fetch_history()``, ``await h.cancel()``)."""

    def __init__(self, handle: WorkflowHandle, workflow_type: str, task_queue: str) -> None:
        self.handle = handle
        self.workflow_type = workflow_type
        self.task_queue = task_queue

    @property
    def workflow_id(self) -> str:
        return self.handle.id

    @property
    def run_id(self) -> str | None:
        return self.handle.run_id

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.handle, name)

    async def result(self) -> Any:
        """The run's result; a failed run raises ``WorkflowFailureError`` that a notebook
        shows as its cause chain and the user's frames (no engine internals)."""
        try:
            return await self.handle.result()
        except WorkflowFailureError as e:
            raise shown_in_notebook(e, self.workflow_id, self.workflow_type)

    def __await__(self) -> Generator[Any, None, Any]:
        return self.result().__await__()

    def __repr__(self) -> str:
        return (
            f"<run {self.workflow_id!r} of {self.workflow_type} on task queue {self.task_queue!r}, "
            f"run id {self.run_id}: await it for the result>"
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None, **_: Any) -> dict[str, Any]:
        """The text above, plus (in a notebook) the run's explorer, following it as it runs."""
        from kernel_ext._explorer_handle import handle_bundle

        bundle = handle_bundle(self.handle)
        bundle["text/plain"] = repr(self)
        return bundle


class KernelWorker:
    """A named worker of the kernel. It serves every workflow and activity the kernel's cells
    defined, and keeps its name when the engine reopens (``%engine --reset``, a new clock).
    ``await`` it to wait until it stops."""

    def __init__(self, name: str, task_queue: str) -> None:
        self.name = name
        self.task_queue = task_queue
        self.identity = f"{os.getpid()}@{socket.gethostname()}/{name}"
        self.worker: Worker | None = None  # the engine worker serving now, if any
        self.polls: tuple[bool, bool] = (False, False)  # (workflow tasks, activity tasks)
        self.error: BaseException | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopped = asyncio.Event()
        self._crashed = False

    @property
    def crashed(self) -> bool:
        """True once an injected fault crashed it: like a dead process, it serves no more
        (a new clock or database does not bring it back); start another worker."""
        return self._crashed or (self.worker is not None and self.worker.crashed)

    @property
    def state(self) -> str:
        if self._stopped.is_set():
            return "stopped"
        if self.crashed:
            return "crashed (injected fault)"
        if self.error is not None:
            return f"failed: {self.error}"
        return "running" if self.worker is not None else "waiting for definitions"

    @property
    def stats(self) -> dict[str, int]:
        return dict(self.worker.stats) if self.worker is not None else {}

    def _attach(self, worker: Worker, task: asyncio.Task[None], polls: tuple[bool, bool]) -> None:
        self.worker, self._task, self.polls, self.error = worker, task, polls, None
        task.add_done_callback(self._ran)

    def _ran(self, task: asyncio.Task[None]) -> None:
        # Keep the error for `%worker list` instead of letting asyncio log it to stderr.
        if not task.cancelled() and task.exception() is not None:
            self.error = task.exception()

    async def _detach(self) -> None:
        worker, task = self.worker, self._task
        self._crashed = self.crashed
        self.worker, self._task = None, None
        if worker is not None:
            await worker.shutdown()
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)

    async def _wait(self) -> "KernelWorker":
        await self._stopped.wait()
        return self

    def __await__(self) -> Generator[Any, None, "KernelWorker"]:
        return self._wait().__await__()

    def __repr__(self) -> str:
        return f"<worker {self.name!r} on task queue {self.task_queue!r}: {self.state}>"


@dataclass
class Registration:
    """What a ``%%workflow`` / ``%%activity`` cell changed."""

    added: list[tuple[str, str]] = field(default_factory=list)  # (kind, name)
    replaced: list[tuple[str, str]] = field(default_factory=list)
    unchanged: list[tuple[str, str]] = field(default_factory=list)
    evicted: int = 0
    workers: list[str] = field(default_factory=list)

    def names(self, kind: str) -> list[str]:
        return [n for k, n in self.added + self.replaced + self.unchanged if k == kind]

    def summary(self) -> str:
        parts = [f"{k} {n} registered" for k, n in self.added] + [f"{k} {n} replaced" for k, n in self.replaced]
        parts += [f"{k} {n} unchanged" for k, n in self.unchanged]
        text = "durable-lab: " + ("; ".join(parts) or "nothing to register")
        if self.workers:
            text += f" (workers updated: {', '.join(self.workers)}"
            text += f"; {self.evicted} cached run(s) will replay with the new code)" if self.evicted else ")"
        return text


# ---------------------------------------------------------------------- the session
class Session:
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

    # ------------------------------------------------------------ definitions
    def define(self, objects: Iterable[Any]) -> Registration:
        """Register the @workflow.defn classes and @activity.defn functions among ``objects``
        (others are ignored) and give them to every running worker. A new definition of a
        known workflow type evicts that type's cached runs: they replay with the new code
        on their next workflow task. Call :meth:`sync_workers` afterwards."""
        registration = Registration()
        new_workflows: dict[str, Any] = {}
        new_activities: dict[str, Any] = {}
        for obj in objects:
            for kind, table, defn, fresh in (
                ("workflow", self.workflows, _workflow_defn(obj), new_workflows),
                ("activity", self.activities, _activity_defn(obj), new_activities),
            ):
                if defn is None:
                    continue
                known = table.get(defn.name)
                if known is obj:
                    registration.unchanged.append((kind, defn.name))
                    continue
                (registration.replaced if known is not None else registration.added).append((kind, defn.name))
                table[defn.name] = obj
                fresh[defn.name] = defn
        if new_workflows or new_activities:
            for kernel_worker in self._workers.values():
                if kernel_worker.worker is not None and not kernel_worker.crashed:
                    registration.evicted += _install_definitions(kernel_worker.worker, new_workflows, new_activities)
                    if kernel_worker.worker.is_running:
                        kernel_worker.polls = (bool(self.workflows), bool(self.activities))
                    registration.workers.append(kernel_worker.name)
        return registration

    def _needs_restart(self, kernel_worker: KernelWorker) -> bool:
        if kernel_worker.crashed:
            return False
        if kernel_worker.worker is None:
            return bool(self.workflows or self.activities)
        polls_workflows, polls_activities = kernel_worker.polls
        return (bool(self.workflows) and not polls_workflows) or (bool(self.activities) and not polls_activities)

    async def sync_workers(self) -> list[str]:
        """Restart the workers that must poll a kind of task they did not poll (an engine
        worker polls workflow/activity tasks only if it had such definitions at start)."""
        stale = [w for w in self._workers.values() if self._needs_restart(w)]
        if not stale:
            return []
        await self.ensure_ready()
        for kernel_worker in stale:
            await kernel_worker._detach()
            self._start_engine_worker(kernel_worker)
        return [w.name for w in stale]

    # ------------------------------------------------------------ workers
    def workers(self) -> list[KernelWorker]:
        return list(self._workers.values())

    def worker_table(self) -> str:
        """This kernel's workers, then the other workers running on the same database file
        (``dlab worker`` processes, other kernels, scripts), which another program started."""
        others = self.foreign_workers()
        if not self._workers and not self._processes:
            text = "No workers. Start one: %worker start --task-queue Q"
            if others:
                text = "This kernel started no workers (start one: %worker start --task-queue Q)."
        else:
            rows: list[tuple[Any, ...]] = [
                (w.name, w.task_queue, w.state, "kernel", w.stats.get("workflow_tasks", 0), w.stats.get("activities", 0)) for w in self._workers.values()
            ]
            rows += [(p.name, p.task_queue, p.state, f"pid {p.pid}", "-", "-") for p in self._processes.values()]
            text = _text_table(("Name", "TaskQueue", "State", "Where", "WorkflowTasks", "Activities"), rows)
            if others:
                text = "Workers of this kernel:\n" + text
        if others:
            rows = [(r.identity, r.task_queue, f"pid {r.pid} on {r.host}", _when(datetime.fromtimestamp(r.started, timezone.utc)), r.program) for r in others]
            text += "\n\nOther workers on this database, not started by this kernel:\n"
            text += _text_table(("Identity", "TaskQueue", "Where", "Since", "Started as"), rows)
        return text

    def foreign_workers(self) -> list[Any]:
        """Workers running on this engine's database file that this kernel did not start
        (each running worker lists itself beside the file: engine._worker_registry)."""
        path = self.resolved_path()
        if path == _MEMORY:
            return []
        from engine._worker_registry import live_workers

        ours = {os.getpid(), *(p.pid for p in self._processes.values())}
        return [r for r in live_workers(path) if r.pid not in ours]

    def remember_source(self, source: str) -> None:
        """Keep a definition cell's code for worker processes (which cannot see the kernel)."""
        self.sources.append(source)

    async def start_worker(self, task_queue: str, name: str | None = None, *, process: bool = False) -> Any:
        """Start a worker on ``task_queue`` serving every definition of the kernel; with
        ``process``, a separate ``dlab worker`` process over the same database file."""
        if not task_queue:
            raise SessionError("A worker needs a task queue: --task-queue Q (the queue your workflows are started on).")
        taken = set(self._workers) | set(self._processes)
        if name is None:
            prefix = "p" if process else "w"
            name = next(n for n in (f"{prefix}{i}" for i in self._numbers[prefix]) if n not in taken)
        elif name in taken:
            other = self._workers.get(name) or self._processes[name]
            raise SessionError(f"A worker named {name!r} is already running (task queue {other.task_queue!r}). Stop it with %worker stop {name}, or choose another --name.")
        if process:
            return await self._start_process(name, task_queue)
        await self.ensure_ready()
        kernel_worker = KernelWorker(name, task_queue)
        self._workers[name] = kernel_worker
        self._start_engine_worker(kernel_worker)
        await asyncio.sleep(0)  # let it begin polling before the caller goes on
        return kernel_worker

    async def _start_process(self, name: str, task_queue: str) -> _process_workers.ProcessWorker:
        path = self.resolved_path()
        if path == _MEMORY:
            raise SessionError("A worker process needs a database file it can share; this engine is in memory. Use %config DurableLab.db_path = '.durable/engine.db'.")
        if self._time_mode != "real":
            raise SessionError("Worker processes run on the real clock; switch the kernel to it first: %engine --time real.")
        if self._data_converter is not DataConverter.default:
            raise SessionError(
                "A worker process cannot use this session's data converter (a codec's key stays in the kernel), so it "
                "could not read the runs it writes. Start a kernel worker instead: %worker start --task-queue Q."
            )
        if not self.sources:
            raise SessionError("No %%workflow or %%activity cell has run yet: a worker process runs the code of those cells.")
        await self.ensure_ready()
        try:
            worker = await _process_workers.start(name, task_queue, path, self.sources)
        except _process_workers.ProcessWorkerError as e:
            raise SessionError(str(e)) from None
        self._processes[name] = worker
        return worker

    async def kill_worker(self, name: str) -> Any:
        """Kill a worker abruptly: SIGKILL for a process; for a kernel worker, a crash (its
        cache and work in flight are lost, nothing is reported, its leases must time out)."""
        process = self._processes.pop(name, None)
        if process is not None:
            await asyncio.to_thread(process.kill)
            client = await self.ensure_ready()
            # Logged so the run's graph shows where the kill hit (the leases it left behind).
            await faults.record_kill(client, f"{process.pid}@{socket.gethostname()}#", f"worker {name} (pid {process.pid})")
            return process
        kernel_worker = self._workers.get(name)
        if kernel_worker is None:
            raise SessionError(f"No worker named {name!r} (running: {', '.join([*self._workers, *self._processes]) or 'none'}). See %worker list.")
        if kernel_worker.worker is not None:
            kernel_worker.worker.crash()
            client = await self.ensure_ready()
            await faults.record_kill(client, kernel_worker.worker._owner, f"worker {name}")
        await kernel_worker._detach()
        kernel_worker._stopped.set()
        del self._workers[name]
        return kernel_worker

    async def stop_worker(self, name: str) -> Any:
        """Stop a worker: it finishes workflow tasks in flight; running activities are cancelled."""
        process = self._processes.pop(name, None)
        if process is not None:
            await process.stop()
            return process
        kernel_worker = self._workers.get(name)
        if kernel_worker is None:
            running = ", ".join([*self._workers, *self._processes]) or "none"
            raise SessionError(f"No worker named {name!r} (running: {running}). See %worker list.")
        await kernel_worker._detach()
        kernel_worker._stopped.set()
        del self._workers[name]
        return kernel_worker

    def _start_engine_worker(self, kernel_worker: KernelWorker) -> None:
        if self._client is None or not (self.workflows or self.activities) or kernel_worker.crashed:
            return  # started by ensure_ready / sync_workers once there is something to serve
        worker = Worker(
            self._client,
            task_queue=kernel_worker.task_queue,
            workflows=list(self.workflows.values()),
            activities=list(self.activities.values()),
            identity=kernel_worker.identity,
        )
        task = asyncio.get_running_loop().create_task(worker.run(), name=f"durable-lab worker {kernel_worker.name}")
        kernel_worker._attach(worker, task, (bool(self.workflows), bool(self.activities)))

    async def _stop_engine_workers(self) -> None:
        for kernel_worker in self._workers.values():
            await kernel_worker._detach()

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
        return await _waiting.wait_for_result(await self.ensure_ready(), run)

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
        except (ValueError, WorkflowNotFoundError) as e:
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
    from engine._store import Store

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
    from engine._clock import Clock, VirtualClock

    clock: Clock = Clock()
    if time_mode == "skip":
        # Start virtual time where the previous clock stood, so engine time never runs backwards.
        clock = VirtualClock(previous.clock.now() if previous is not None else None)
    return Client(store, clock=clock, owns_store=False, data_converter=data_converter)


def _workflow_defn(obj: Any) -> Any:
    defn = getattr(obj, "__workflow_definition__", None) if isinstance(obj, type) else None
    return defn if defn is not None and defn.cls is obj else None


def _activity_defn(obj: Any) -> Any:
    defn = getattr(obj, "__activity_definition__", None) if callable(obj) and not isinstance(obj, type) else None
    if defn is not None and inspect.ismethod(obj) and obj.__func__ is defn.fn:
        return served_activity(obj)  # a method of an instance: its definition calls it bound
    return defn if defn is not None and defn.fn is obj else None


def _install_definitions(worker: Worker, workflows: Mapping[str, Any], activities: Mapping[str, Any]) -> int:
    """Give a running engine worker new definitions (it starts any poller it lacked and evicts
    cached runs of replaced workflow types). Returns how many runs were evicted."""
    return worker.register(
        workflows=[d.cls for d in workflows.values()], activities=[d.fn for d in activities.values()]
    )
