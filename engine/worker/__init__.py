"""Workers: poll a task queue, run workflow code and activities (mirrors ``temporalio.worker``).

A worker keeps recently used workflow instances in memory; when it has none for a run (new
worker, restart, eviction) it rebuilds the instance by replaying the run's history.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import itertools
import os
import socket
import uuid
from collections import OrderedDict
from datetime import timedelta
from typing import Any, Callable, Sequence

from engine._history.clock import wait_first
from engine._history.timers import fire_due as _fire_due
from engine._matching import dead_workers as _dead_workers
from engine._matching import queries as _queries
from engine._matching import worker_registry as _worker_registry
from engine._matching.dispatch import Receiver
from engine._persistence import lock_waits as _lock_waits
from engine._persistence.files import read_only_message
from engine._runtime import interceptors as _interceptors
from engine._runtime.definitions import ActivityDefinition, WorkflowDefinition, check_problems
from engine._runtime.instance import WorkflowInstance
from engine._runtime.interceptors import (
    ActivityInboundInterceptor,
    ActivityOutboundInterceptor,
    ContinueAsNewInput,
    ExecuteActivityInput,
    ExecuteWorkflowInput,
    HandleQueryInput,
    HandleSignalInput,
    HandleUpdateInput,
    Interceptor,
    SignalChildWorkflowInput,
    SignalExternalWorkflowInput,
    StartActivityInput,
    StartChildWorkflowInput,
    StartLocalActivityInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)
from engine._sandbox.runner import SandboxedWorkflowRunner, UnsandboxedWorkflowRunner, WorkflowRunner
from engine._sandbox.translation import served_activity as activity_definition
from engine._sandbox.translation import workflow_definition
from engine.activity import _Context
from engine.client import Client
from engine.errors import StoreReadOnlyError
from engine.replay import Replayer, WorkflowReplayResult, WorkflowReplayResults
from engine.worker import _build_id
from engine.worker import _faults as _worker_faults
from engine.worker import _logs as _worker_logs
from engine.worker._activity_tasks import ActivityTasks
from engine.worker._workflow_tasks import WorkflowTasks

__all__ = [
    "Worker",
    "WorkflowRunner",
    "UnsandboxedWorkflowRunner",
    "SandboxedWorkflowRunner",
    "Replayer",
    "WorkflowReplayResult",
    "WorkflowReplayResults",
    "Interceptor",
    "WorkflowInterceptorClassInput",
    "ActivityInboundInterceptor",
    "ActivityOutboundInterceptor",
    "ExecuteActivityInput",
    "WorkflowInboundInterceptor",
    "WorkflowOutboundInterceptor",
    "ExecuteWorkflowInput",
    "HandleSignalInput",
    "HandleQueryInput",
    "HandleUpdateInput",
    "StartActivityInput",
    "StartLocalActivityInput",
    "StartChildWorkflowInput",
    "SignalChildWorkflowInput",
    "SignalExternalWorkflowInput",
    "ContinueAsNewInput",
]

_worker_numbers = itertools.count(1)
POLL_INTERVAL = 0.2


class Worker(WorkflowTasks, ActivityTasks):
    """Serves one task queue: workflow tasks for ``workflows``, activity tasks for ``activities``."""

    def __init__(
        self,
        client: Client,
        *,
        task_queue: str,
        activities: Sequence[Callable[..., Any]] = (),
        workflows: Sequence[type] = (),
        activity_executor: concurrent.futures.Executor | None = None,
        workflow_runner: WorkflowRunner | None = None,
        unsandboxed_workflow_runner: WorkflowRunner | None = None,
        identity: str | None = None,
        max_cached_workflows: int = 1000,
        max_concurrent_workflow_tasks: int | None = None,
        max_concurrent_activities: int | None = None,
        graceful_shutdown_timeout: timedelta = timedelta(0),
        debug_mode: bool = False,
        interceptors: Sequence[Any] = (),
        build_id: str | None = None,
    ) -> None:
        problems = []
        if not task_queue:
            problems.append("task_queue must be a non-empty string")
        if not activities and not workflows:
            problems.append("give at least one workflow or activity to serve")
        # Workflow code runs in the sandbox unless the class says sandboxed=False (temporalio's defaults).
        self._runner = workflow_runner if workflow_runner is not None else SandboxedWorkflowRunner()
        self._unsandboxed_runner = unsandboxed_workflow_runner if unsandboxed_workflow_runner is not None else UnsandboxedWorkflowRunner()
        for what, runner in (("workflow_runner", self._runner), ("unsandboxed_workflow_runner", self._unsandboxed_runner)):
            if not isinstance(runner, WorkflowRunner):
                problems.append(f"{what} must be SandboxedWorkflowRunner(...) or UnsandboxedWorkflowRunner(), got {runner!r}")
        self._workflows: dict[str, WorkflowDefinition] = {}
        for w in workflows:
            try:
                defn = workflow_definition(w)
            except Exception as e:  # noqa: BLE001 - collected and reported together
                problems.append(str(e))
                continue
            if defn.name in self._workflows:
                problems.append(f"two workflows are named {defn.name!r}")
            self._workflows[defn.name] = defn
            try:
                self._runner_for(defn).prepare_workflow(defn)
            except Exception as e:  # noqa: BLE001 - collected and reported together
                problems.append(f"workflow {defn.name!r} cannot be loaded: {type(e).__name__}: {e}")
        self._activities: dict[str, ActivityDefinition] = {}
        for a in activities:
            try:
                adefn = activity_definition(a)
            except Exception as e:  # noqa: BLE001
                problems.append(str(e))
                continue
            if adefn.name in self._activities:
                problems.append(f"two activities are named {adefn.name!r}")
            self._activities[adefn.name] = adefn
        check_problems("worker", list(dict.fromkeys(problems)))  # one module's failure is every class's
        self.client = client
        self.task_queue = task_queue
        # Recorded on each completed workflow task (workerVersion); auto-reset points are kept per build id.
        self.build_id = build_id or _build_id.code_build_id(workflows, activities)
        # As temporalio: the client's interceptors that also intercept workers come first.
        self._interceptors = [i for i in getattr(client, "_interceptors", ()) if _interceptors.is_worker_interceptor(i)]
        self._interceptors += list(interceptors)
        number = next(_worker_numbers)
        self.identity = identity or f"{os.getpid()}@{socket.gethostname()}"
        # The lease owner must differ between workers of one process, the identity need not.
        self._owner = f"{self.identity}#{number}-{uuid.uuid4().hex[:6]}"
        self._cache: OrderedDict[str, WorkflowInstance] = OrderedDict()
        self._max_cached = max_cached_workflows
        self._wf_slots = max_concurrent_workflow_tasks or 100
        self._act_slots = max_concurrent_activities or 100
        self._executor = activity_executor
        self._own_executor = activity_executor is None and any(not d.is_async for d in self._activities.values())
        if self._own_executor:
            self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=self._act_slots, thread_name_prefix="activity")
        self._graceful = graceful_shutdown_timeout.total_seconds()
        self._stop = asyncio.Event()
        self._inflight_wf: set[asyncio.Task] = set()
        self._inflight_act: set[asyncio.Task] = set()
        self._activity_contexts: set[_Context] = set()  # running attempts, told of a shutdown
        self._running = False
        self._run_task: asyncio.Task | None = None
        self._loops: dict[str, asyncio.Task] = {}
        self._receivers: dict[str, Receiver] = {}
        self.stats = {"workflow_tasks": 0, "replays": 0, "activities": 0}
        # Fault injection (engine.faults): the worker's copy of the fault table, and a hook
        # that crash exploration sets to crash at a chosen state change.
        self._crash_hook: _worker_faults.faults.CrashHook | None = None
        self._crashed = False
        self._faults_epoch = -1
        self._faults_read_at = 0.0
        self._fault_cache: list[Any] = []
        self._task_failures = _worker_logs.WorkflowTaskFailures()

    # ------------------------------------------------------------------ lifecycle
    @property
    def is_running(self) -> bool:
        return self._running

    @property
    def crashed(self) -> bool:
        """True once an injected fault crashed this worker (it cannot be started again)."""
        return self._crashed

    def crash(self) -> None:
        """Die at once, as a killed process: stop, drop the cache and all work in flight,
        report nothing. Leases held stay held until they time out, as after a real crash."""
        if self._crashed:
            return
        self._crashed = True
        self._stop.set()
        self._close_receivers()
        current = asyncio.current_task()
        for task in [*self._loops.values(), *self._inflight_wf, *self._inflight_act]:
            if task is not current:
                task.cancel()
        self.client._workers.discard(self)

    async def run(self) -> None:
        """Serve until ``shutdown()`` is called."""
        if self._running:
            raise RuntimeError("This worker is already running.")
        self._refuse_read_only()
        if self._crashed:
            raise RuntimeError("This worker crashed (an injected fault); start a new Worker, as you would restart a process.")
        self._running = True
        self.client._ensure_service()
        self.client._workers.add(self)
        try:
            # Before the pollers start (a restart after a crash): their first claims would
            # otherwise queue ahead of the takeover. Nothing is awaited when no worker is dead.
            await self._reclaim()
        except Exception:  # noqa: BLE001 - the database may be busy: the reclaim loop tries again
            pass
        except BaseException:  # cancelled before it served: as if it had never started
            self._running = False
            self.client._workers.discard(self)
            raise
        self._start_loops()
        # Listed while it runs, so other programs on the file see it (%worker list), and
        # locked until its last change has committed: a lock another worker can take means
        # this process is gone and its leases may be taken back (engine._matching.dead_workers).
        entry = _worker_registry.register(
            self.client.store.path, self.identity, self.task_queue, list(self._workflows), list(self._activities), self._owner
        )
        try:
            await self._stop.wait()
        finally:
            self._close_receivers()
            loops = list(self._loops.values())
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            # Changes in flight may still hand this worker eagerly dispatched tasks.
            await self.client.store.settle()
            if self._crashed:
                for task in [*self._inflight_wf, *self._inflight_act]:
                    task.cancel()
            if self._inflight_wf:
                await asyncio.gather(*self._inflight_wf, return_exceptions=True)
            if self._inflight_act:
                done, pending = await asyncio.wait(self._inflight_act, timeout=self._graceful or None) if self._graceful else (set(), set(self._inflight_act))
                for task in pending:
                    task.cancel()
                if pending:
                    await asyncio.wait(pending, timeout=1.0)
            # Outcomes the jobs above submitted commit before the worker reports it stopped.
            await self.client.store.settle()
            for instance in self._cache.values():
                instance.evict()
            self._cache.clear()
            if self._own_executor and self._executor is not None:
                self._executor.shutdown(wait=False, cancel_futures=True)
            self.client.served_queues.subtract(f"{kind}:{self.task_queue}" for kind in self._loops)
            self.client.served_queues += collections.Counter()  # drop queues nobody serves now
            self._loops.clear()
            self.client._workers.discard(self)
            self._running = False
            if entry is not None:
                entry.close()

    def _start_loops(self) -> None:
        for kind, defs, loop in (("workflow", self._workflows, self._workflow_loop), ("activity", self._activities, self._activity_loop)):
            if defs and kind not in self._loops:
                key = f"{kind}:{self.task_queue}"
                if kind == "workflow":
                    receiver = Receiver(key, self._owner, self._wf_slots, self._accept_workflow_task, self._cached_upto, self._eager)
                else:
                    receiver = Receiver(key, self._owner, self._act_slots, self._accept_activity, eager=self._eager)
                self._receivers[kind] = receiver
                receivers = self.client.store.receivers
                receivers[key] = (*receivers.get(key, ()), receiver)
                self._loops[kind] = asyncio.ensure_future(loop())
                self.client.served_queues[key] += 1
        if "reclaim" not in self._loops:
            self._loops["reclaim"] = asyncio.ensure_future(self._reclaim_loop())
        if self._workflows and "query" not in self._loops:
            # Questions from other processes about the runs this worker's code can replay.
            self._loops["query"] = asyncio.ensure_future(_queries.serve(self))

    def _eager(self) -> bool:
        # Eager dispatch is off while faults are injected or a crash hook is set, so that a
        # crash leaves the worker holding only tasks it claimed, as the fault model expects.
        return self._crash_hook is None and not self._fault_cache

    def _close_receivers(self) -> None:
        receivers = self.client.store.receivers
        for receiver in self._receivers.values():
            receiver.open = False
            rest = tuple(r for r in receivers.get(receiver.key, ()) if r is not receiver)
            if rest:
                receivers[receiver.key] = rest
            else:
                receivers.pop(receiver.key, None)

    def register(self, *, workflows: Sequence[type] = (), activities: Sequence[Callable[..., Any]] = ()) -> int:
        """Add or replace definitions, also while running (a notebook cell was re-run).

        Cached runs of a replaced workflow type are evicted, so they continue with the new
        code on their next workflow task, exactly as after restarting the worker with new code.
        Returns how many cached runs were evicted.
        """
        new_workflows = {d.name: d for d in (workflow_definition(w) for w in workflows)}
        for defn in new_workflows.values():
            self._runner_for(defn).prepare_workflow(defn)
        new_activities = {d.name: d for d in (activity_definition(a) for a in activities)}
        self._workflows.update(new_workflows)
        self._activities.update(new_activities)
        if self._executor is None and any(not d.is_async for d in new_activities.values()):
            self._own_executor = True
            self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=self._act_slots, thread_name_prefix="activity")
        stale = [run_id for run_id, inst in self._cache.items() if inst.defn.name in new_workflows]
        for run_id in stale:
            self._evict(run_id)
        if self._running:
            self._start_loops()
        return len(stale)

    async def shutdown(self) -> None:
        """Stop polling, finish workflow tasks in flight, cancel running activities after the grace period."""
        self._stop.set()
        for context in list(self._activity_contexts):
            context.shut_down()  # activity.is_worker_shutdown(), wait_for_worker_shutdown()
        if self._run_task is not None:
            await asyncio.gather(self._run_task, return_exceptions=True)

    def _refuse_read_only(self) -> None:
        store = self.client.store
        if store.read_only:
            raise StoreReadOnlyError(f"A worker cannot run here: {read_only_message(store.path)}")

    async def __aenter__(self) -> "Worker":
        self._refuse_read_only()  # here, not only in run(): its task would keep the error
        self._run_task = asyncio.ensure_future(self.run())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.shutdown()

    async def _wait_for_work(self, arrived: asyncio.Event) -> None:
        """Until this process commits work for the queue, the clock jumps, or the poll
        interval passes (other processes sharing the database file are seen by polling)."""
        clock = self.client.clock
        await wait_first(
            [
                arrived.wait(),
                clock.sleep_until(None, at_most=POLL_INTERVAL),
                self._stop.wait(),
            ]
        )


    async def _reclaim_loop(self) -> None:
        """Take back the leases of dead workers of this database: at once when this worker
        starts (a restart after a crash), then every ``dead_workers.INTERVAL`` seconds."""
        outage = _lock_waits.Outage("taking back the leases of dead workers")
        while not self._stop.is_set():
            try:
                await self._reclaim()
                outage.passed()
            except Exception as e:  # noqa: BLE001 - the database may be busy; try again later
                outage.failed(e)
            await wait_first([asyncio.sleep(_dead_workers.INTERVAL), self._stop.wait()])

    async def _reclaim(self) -> int:
        return await _dead_workers.reclaim(self.client.store, self.client.clock.now(), _fire_due)

    async def _poll_loop(self, kind: str, claim: Callable[..., Any], extra: tuple[Any, ...], accept: Callable[[Any], None]) -> None:
        """Claim ``kind`` tasks while there are free slots; sleep until work arrives when the
        queue is drained. ``extra`` goes to ``claim`` between the slot count and the receiver."""
        store, clock = self.client.store, self.client.clock
        receiver = self._receivers[kind]
        outage = _lock_waits.Outage(f"polling {kind} tasks of task queue {self.task_queue!r}")
        while not self._stop.is_set():
            free = receiver.free()
            if free <= 0:
                receiver.freed.clear()
                await wait_first([receiver.freed.wait(), self._stop.wait()])
                continue
            # Taken before the claim: work committed while the claim runs still wakes us.
            arrived = store.waiter("queue", f"{kind}:{self.task_queue}")
            try:
                tasks = await store.run(claim, self.task_queue, self._owner, clock.now(), free, *extra, receiver)
            except Exception as e:  # noqa: BLE001 - the database may be busy or gone; try again shortly
                outage.failed(e)
                await asyncio.sleep(POLL_INTERVAL)
                continue
            outage.passed()
            for task in tasks:
                accept(task)
            if receiver.drained:
                # Claiming again at once would find nothing.
                await self._wait_for_work(arrived)
