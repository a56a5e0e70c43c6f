"""The session's workers: definitions from cells registered, workers started in the kernel or
in processes of their own, stopped, killed, and restarted when their definitions change.
"""

from __future__ import annotations

import asyncio
import os
import socket
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, Iterable, Iterator

from engine import faults
from engine.client import Client
from engine.converter import DataConverter
from engine.worker import Worker
from kernel_ext import _process_workers
from kernel_ext._kernel_workers import KernelWorker, Registration, _activity_defn, _install_definitions, _workflow_defn
from kernel_ext._kernel_workers import MEMORY_DB as _MEMORY
from kernel_ext._session_errors import SessionError
from kernel_ext._session_results import _text_table, _when


class SessionWorkers:
    """The worker side of ``Session``."""

    # Kept by Session (kernel_ext/_session.py), which this class is a part of.
    workflows: dict[str, type]
    activities: dict[str, Callable[..., Any]]
    sources: list[str]
    _client: Client | None
    _data_converter: DataConverter
    _time_mode: str
    _workers: dict[str, KernelWorker]
    _processes: dict[str, _process_workers.ProcessWorker]
    _numbers: dict[str, Iterator[int]]
    ensure_ready: Callable[[], Awaitable[Client]]
    resolved_path: Callable[[], str]

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
        (each running worker lists itself beside the file: engine._matching.worker_registry)."""
        path = self.resolved_path()
        if path == _MEMORY:
            return []
        from engine._matching.worker_registry import live_workers

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
