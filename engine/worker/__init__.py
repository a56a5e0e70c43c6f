"""Workers: poll a task queue, run workflow code and activities (mirrors ``temporalio.worker``).

A worker keeps recently used workflow instances in memory; when it has none for a run (new
worker, restart, eviction) it rebuilds the instance by replaying the run's history.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextvars
import functools
import itertools
import logging
import os
import socket
import uuid
from collections import OrderedDict
from datetime import timedelta
from typing import Any, Awaitable, Callable, Sequence

from engine import _lock_waits, _queries, _service, _user_exits, _worker_faults
from engine import _worker_logs
from engine import _interceptors
from engine._interceptors import (
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
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)
from engine._failure_converter import encode_failure
from engine._payload_converter import to_json_payloads
from engine._payload_visitor import transform_commands, transform_events
from engine._dispatch import Receiver
from engine._definitions import ActivityDefinition, WorkflowDefinition, check_problems, workflow_definition
from engine._definitions import served_activity as activity_definition
from engine._runtime import WorkflowInstance, WorkflowTaskError, info_from_history
from engine import _worker_registry
from engine._sandbox_runner import SandboxedWorkflowRunner, UnsandboxedWorkflowRunner, WorkflowRunner
from engine._service import ActivityTask, StaleTaskError, WorkflowTask, from_ts, ts
from engine.activity import Info as ActivityInfo, _Context, _current
from engine.activity import _CompleteAsyncError
from engine._async_activities import task_token as _task_token
from engine.worker._local import run_local_activities
from engine.client import Client, wait_first
from engine._store_files import read_only_message
from engine.replay import Replayer, WorkflowReplayResult, WorkflowReplayResults
from engine.errors import (
    ApplicationError,
    NondeterminismError,
    NotRegisteredError,
    PayloadError,
    StoreLockedError,
    StoreReadOnlyError,
)

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
    "StartChildWorkflowInput",
    "SignalChildWorkflowInput",
    "SignalExternalWorkflowInput",
    "ContinueAsNewInput",
]

log = logging.getLogger("engine.worker")
_worker_numbers = itertools.count(1)
POLL_INTERVAL = 0.2


class Worker:
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
        self._start_loops()
        # Listed while it runs, so other programs on the file see it (%worker list).
        entry = _worker_registry.register(
            self.client.store.path, self.identity, self.task_queue, list(self._workflows), list(self._activities)
        )
        try:
            await self._stop.wait()
        finally:
            if entry is not None:
                entry.close()
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

    # ------------------------------------------------------------------ workflow tasks
    async def _workflow_loop(self) -> None:
        await self._poll_loop("workflow", _service.claim_workflow_tasks, (self._cached_upto,), self._accept_workflow_task)

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

    def _accept_workflow_task(self, task: WorkflowTask) -> None:
        """Run a workflow task: at once when nothing needs awaiting (the run is cached or the
        task carries its whole history, no payload codec, no fault to obey), else in a task
        of its own. Either way the worker's slot is given back once the outcome committed."""
        if self._crashed:
            return  # as after a real crash: the lease times out
        self.stats["workflow_tasks"] += 1
        defn = self._workflows.get(task.workflow_type)
        if defn is not None and self.client.data_converter.payload_codec is None and _worker_faults.quiet(self):
            found = self._instance_at_hand(task, defn)
            if found is not None:
                self._run_workflow_task(task, *found)
                return
        self._spawn_workflow_job(self._handle_workflow_task(task))

    def _spawn_workflow_job(self, coro: Any) -> None:
        job = asyncio.ensure_future(coro)
        self._inflight_wf.add(job)
        job.add_done_callback(self._workflow_job_done)

    def _workflow_job_done(self, job: asyncio.Future) -> None:
        self._inflight_wf.discard(job)
        self._receivers["workflow"].release()
        _report_failed_job(job, "a workflow task")

    def _run_workflow_task(self, task: WorkflowTask, instance: WorkflowInstance, events: list[Any]) -> None:
        """The fast path: run the workflow code now; its commands commit with the next batch."""
        cause = "WORKFLOW_TASK_FAILED_CAUSE_WORKFLOW_WORKER_UNHANDLED_FAILURE"
        try:
            commands = instance.apply(events, updates=task.updates)
        except NondeterminismError as e:
            error: BaseException = e
            cause = "WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR"
        except WorkflowTaskError as e:
            error = e.error
        except Exception as e:  # noqa: BLE001 - any bug surfaces as a failed workflow task
            error = e
        else:
            if instance._local is not None and instance._local.pending:
                # Local activities to run before the task completes: on with the slow path.
                self._spawn_workflow_job(self._handle_workflow_task(task, (instance, commands)))
                return
            make = self._completion(task, [(c.kind, c.attributes) for c in commands], not instance.saw_completed_task)
            self.client.store.submit(*make(), done=functools.partial(self._workflow_task_committed, task, instance, make))
            return
        self._evict(task.run_id)
        job = asyncio.ensure_future(self._fail_workflow_task(task, error, cause))
        self._inflight_wf.add(job)
        job.add_done_callback(self._workflow_job_done)

    def _completion(self, task: WorkflowTask, submitted: list[Any], first: bool) -> Callable[[], tuple[Any, ...]]:
        """The change that completes ``task`` with the commands ``submitted``, made at each try."""
        return lambda: (
            _service.complete_workflow_task, task.task_id, self._owner, task.run_id, task.started_event_id,
            submitted, self.client.clock.now(), first,
        )

    def _workflow_task_committed(
        self, task: WorkflowTask, instance: WorkflowInstance, make: Callable[[], tuple[Any, ...]], ok: bool, value: Any
    ) -> None:
        if not ok and isinstance(value, StoreLockedError) and not self._crashed:
            # Another program holds the write lock: record the same commands once it is free
            # (that job gives the slot back).
            self._spawn_workflow_job(self._complete_after_lock_wait(task, instance, make, value))
            return
        self._receivers["workflow"].release()
        if not ok:
            self._evict(task.run_id)
            if not isinstance(value, StaleTaskError):
                log.error("completing workflow task %s of run %s failed", task.started_event_id, task.run_id, exc_info=value)
            return
        instance.saw_completed_task = True
        self._task_failures.completed(task.run_id)
        if instance._finished or self._max_cached == 0 or not value:
            self._evict(task.run_id)

    async def _complete_after_lock_wait(
        self, task: WorkflowTask, instance: WorkflowInstance, make: Callable[[], tuple[Any, ...]], error: StoreLockedError
    ) -> None:
        await self._record_completion(task, instance, _lock_waits.record(self.client.store, _task_named(task), make, lambda: self._crashed, error))

    async def _record_completion(self, task: WorkflowTask, instance: WorkflowInstance, recording: Awaitable[bool]) -> None:
        """Await the commit of a workflow task's completion, then keep or evict the instance."""
        try:
            recorded = await recording
        except _worker_faults.Crashed:
            return
        except StaleTaskError:
            self._evict(task.run_id)
            return
        except Exception:
            self._evict(task.run_id)
            raise
        instance.saw_completed_task = True
        self._task_failures.completed(task.run_id)
        if instance._finished or self._max_cached == 0 or not recorded:
            self._evict(task.run_id)

    async def _handle_workflow_task(self, task: WorkflowTask, resumed: tuple[WorkflowInstance, list[Any]] | None = None) -> None:
        defn = self._workflows.get(task.workflow_type)
        if defn is None and resumed is None:
            error = NotRegisteredError(
                f"Workflow type {task.workflow_type!r} is not registered on the worker for task queue "
                f"{self.task_queue!r} (it has: {', '.join(sorted(self._workflows)) or 'none'}). Add the "
                "workflow class to Worker(workflows=[...]); the task is retried."
            )
            await self._fail_workflow_task(task, error, "WORKFLOW_TASK_FAILED_CAUSE_WORKFLOW_WORKER_UNHANDLED_FAILURE")
            return
        codec = self.client.data_converter.payload_codec
        try:
            if resumed is not None:
                instance, commands = resumed
            else:
                assert defn is not None
                instance, events = await self._instance_for(task, defn)
                if codec is not None:
                    events = await transform_events(events, codec.decode)
                updates = task.updates
                if codec is not None and updates:
                    updates = [{**u, "args": await self.client.data_converter._codec_json(u.get("args"), encode=False)} for u in updates]
                commands = instance.apply(events, updates=updates)
            commands = commands + await run_local_activities(self, instance)
            submitted = [(c.kind, c.attributes) for c in commands]
            if codec is not None:
                submitted = await transform_commands(submitted, codec.encode)
        except NondeterminismError as e:
            self._evict(task.run_id)
            await self._fail_workflow_task(task, e, "WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR")
            return
        except WorkflowTaskError as e:
            self._evict(task.run_id)
            await self._fail_workflow_task(task, e.error, "WORKFLOW_TASK_FAILED_CAUSE_WORKFLOW_WORKER_UNHANDLED_FAILURE")
            return
        except Exception as e:  # noqa: BLE001 - any bug surfaces as a failed workflow task
            self._evict(task.run_id)
            await self._fail_workflow_task(task, e, "WORKFLOW_TASK_FAILED_CAUSE_WORKFLOW_WORKER_UNHANDLED_FAILURE")
            return
        first = not instance.saw_completed_task
        await self._record_completion(
            task,
            instance,
            _worker_faults.change(self, _worker_faults.workflow_task_point(task, submitted), _task_named(task), self._completion(task, submitted, first)),
        )

    def _instance_at_hand(self, task: WorkflowTask, defn: WorkflowDefinition) -> tuple[WorkflowInstance, list[Any]] | None:
        """The cached instance and the new events, or a new instance when the task carries
        the whole history; None when the history must be read first."""
        instance = self._cache.get(task.run_id)
        events = task.events
        fresh_ok = (
            instance is not None
            and not task.history_complete
            and instance.registered is defn
            and events
            and events[0].event_id == instance.processed_upto + 1
            and sum(1 for e in events if e.event_type == "WorkflowTaskStarted") == 1
            # A timed-out task of this run may still be running local activities on it.
            and not (instance._local is not None and instance._local.running)
        )
        if fresh_ok:
            assert instance is not None
            self._cache.move_to_end(task.run_id)
            return instance, events
        if instance is not None:
            self._evict(task.run_id)
        if not task.history_complete:
            return None
        try:
            return self._new_instance(task, defn, events), events
        except Exception:  # noqa: BLE001 - retried on the slow path, which reports it
            return None

    async def _instance_for(self, task: WorkflowTask, defn: WorkflowDefinition) -> tuple[WorkflowInstance, list[Any]]:
        found = self._instance_at_hand(task, defn)
        if found is not None:
            return found
        events = task.events
        if not task.history_complete:
            stored = await self.client.store.read(_service.read_events, task.run_id, 0)
            # A transient or speculative task's Scheduled/Started events exist only in the task.
            last = stored[-1].event_id if stored else 0
            events = stored + [e for e in events if e.event_id > last]
        return self._new_instance(task, defn, events), events

    def _new_instance(self, task: WorkflowTask, defn: WorkflowDefinition, events: list[Any]) -> WorkflowInstance:
        self.stats["replays"] += 1
        info = info_from_history(task.workflow_id, task.run_id, events, self.client.namespace)
        instance = self._runner_for(defn).create_instance(defn, info, self.client.data_converter)
        instance.interceptors = self._interceptors
        self._cache[task.run_id] = instance
        while len(self._cache) > max(1, self._max_cached):
            _, old = self._cache.popitem(last=False)
            old.evict()
        return instance

    async def query(self, run_id: str, name: str, input: dict[str, Any], headers: Any = None) -> dict[str, Any]:
        """Answer a query by replaying the run's history (no history is written).
        ``input`` (``{"payloads": [...]}``) and the answer are payloads, codec-encoded."""
        converter = self.client.data_converter
        events = await self.client.store.read(_service.read_events, run_id, 0)
        if not events:
            raise NotRegisteredError(f"No run {run_id!r} to query.")
        if converter.payload_codec is not None:
            events = await transform_events(events, converter.payload_codec.decode)
        info = info_from_history("", run_id, events, self.client.namespace)
        info.workflow_id = str(events[0].attributes.get("workflowId", ""))
        defn = self._workflows.get(info.workflow_type)
        if defn is None:
            raise NotRegisteredError(f"This worker does not know workflow type {info.workflow_type!r}.")
        instance = self._runner_for(defn).create_instance(defn, info, converter)
        instance.interceptors = self._interceptors
        try:
            # Only completed workflow tasks are replayed: the state the workflow last showed.
            instance.apply(events, live_tail=False, check_end=False)
            answer = instance.query(name, await converter._codec_json(input, encode=False), headers)
        finally:
            instance.evict()
        encoded = await converter._codec_json({"payloads": [answer]}, encode=True)
        return dict((encoded or {})["payloads"][0])

    def _runner_for(self, defn: WorkflowDefinition) -> WorkflowRunner:
        return self._runner if defn.sandboxed else self._unsandboxed_runner

    def serves_workflow(self, workflow_type: str) -> bool:
        return workflow_type in self._workflows

    def _cached_upto(self, run_id: str) -> int:
        # Called from the database thread during a claim: one dict lookup, instead of
        # copying the whole cache on every poll. A stale answer is caught by the
        # consistency check in _instance_at_hand, which then replays the full history.
        instance = self._cache.get(run_id)
        return instance.processed_upto if instance is not None else 0

    def _evict(self, run_id: str) -> None:
        instance = self._cache.pop(run_id, None)
        if instance is not None:
            instance.evict()

    async def _fail_workflow_task(self, task: WorkflowTask, error: BaseException, cause: str) -> None:
        self._task_failures.failed(self._workflow_log_details(task), error, cause)
        failure = await self._encode_failure(error)
        try:
            await _lock_waits.record(
                self.client.store,
                f"The failure of {_task_named(task)}",
                lambda: (
                    _service.fail_workflow_task, task.task_id, self._owner, task.run_id, task.started_event_id,
                    failure, cause, self.client.clock.now(),
                ),
                lambda: self._crashed,
            )
        except StaleTaskError:
            pass

    def _workflow_log_details(self, task: WorkflowTask) -> dict[str, Any]:
        attempt = next((e.attributes.get("attempt") for e in reversed(task.events) if e.event_type == "WorkflowTaskScheduled"), None)
        return {
            "attempt": int(attempt or 1), "namespace": self.client.namespace, "run_id": task.run_id,
            "task_queue": self.task_queue, "workflow_id": task.workflow_id, "workflow_type": task.workflow_type,
        }

    async def _encode_failure(self, error: BaseException) -> dict[str, Any]:
        try:
            return await self.client.data_converter.encode_failure(error)
        except Exception as e:  # noqa: BLE001 - the codec itself may be what failed
            # Written without the codec, so it must hold no user data: only the error types.
            return encode_failure(
                ApplicationError(
                    f"{type(error).__name__} occurred, and the data converter could not encode it "
                    f"({type(e).__name__}); check that the client's payload codec works (its key, say)."
                )
            )

    # ------------------------------------------------------------------ activities
    async def _activity_loop(self) -> None:
        await self._poll_loop("activity", _service.claim_activity_tasks, (), self._accept_activity)

    def _accept_activity(self, task: ActivityTask) -> None:
        if self._crashed:
            return  # as after a real crash: the lease times out
        self._spawn_activity_job(self._run_activity(task))

    def _spawn_activity_job(self, coro: Any) -> None:
        job = asyncio.ensure_future(coro)
        self._inflight_act.add(job)
        job.add_done_callback(self._activity_job_done)

    def _activity_job_done(self, job: asyncio.Future) -> None:
        self._inflight_act.discard(job)
        _report_failed_job(job, "an activity")

    def _activity_recorded(self, what: str, make: Callable[[], tuple[Any, ...]], ok: bool, value: Any) -> None:
        if not ok and isinstance(value, StoreLockedError) and not self._crashed:
            # Another program holds the write lock: record the outcome once it is free.
            self._spawn_activity_job(self._record_after_lock_wait(what, make, value))
            return
        self._receivers["activity"].release()
        if not ok:  # the lease will time out and the attempt is retried
            log.error("recording %s failed", what, exc_info=value)

    async def _record_after_lock_wait(self, what: str, make: Callable[[], tuple[Any, ...]], error: StoreLockedError) -> None:
        try:
            await _lock_waits.record(self.client.store, what, make, lambda: self._crashed, error)
        except StaleTaskError:
            pass
        except Exception:  # noqa: BLE001 - the lease will time out and the attempt is retried
            log.exception("recording %s failed", what)
        finally:
            self._receivers["activity"].release()

    async def _run_activity(self, task: ActivityTask) -> None:
        """Run one attempt and submit its outcome; the slot is given back after that commit."""
        submitted = False
        try:
            submitted = await self._attempt(task)
        finally:
            if not submitted:
                self._receivers["activity"].release()

    async def _attempt(self, task: ActivityTask) -> bool:
        store = self.client.store
        self.stats["activities"] += 1
        info = task.info
        defn = self._activities.get(info["activityType"])
        outcome: tuple[str, Any]
        context: _Context | None = None
        quiet = _worker_faults.quiet(self)
        if defn is None:
            outcome = (
                "fail",
                ApplicationError(
                    f"Activity type {info['activityType']!r} is not registered on the worker for task queue "
                    f"{self.task_queue!r} (it has: {', '.join(sorted(self._activities)) or 'none'}). Add the "
                    "function to Worker(activities=[...]).",
                    type="NotFoundError",
                ),
            )
        else:
            injected = None if quiet else await _worker_faults.activity_fault(self, task)
            if injected is not None:
                outcome = injected
            else:
                try:
                    context = await self._activity_context(task)
                except Exception as e:  # noqa: BLE001 - unreadable heartbeat details fail the attempt
                    outcome = ("fail", e)
                else:
                    try:
                        outcome = await self._invoke(defn, task, context)
                    except asyncio.CancelledError:
                        if not self._stop.is_set() or self._crashed:
                            raise
                        # A graceful shutdown cut the attempt short: say so, so the engine
                        # retries it now rather than after its start-to-close timeout.
                        outcome = ("fail", ApplicationError("the worker shut down while the activity ran", type="WorkerShutdown"))
        if outcome[0] == "abandoned":
            return False
        if context is not None:
            await context.drain_heartbeats()
        if outcome[0] == "fail":
            _worker_logs.activity_failed(self._activity_log_details(task), outcome[1])
        what = f"The outcome of attempt {task.attempt} of activity {info['activityType']} (run {task.run_id})"
        try:
            make = await self._activity_outcome(task, outcome)
            if quiet and _worker_faults.quiet(self):
                # Nothing to obey: submit, and let the commit give the slot back.
                store.submit(*make(), done=functools.partial(self._activity_recorded, what, make))
                return True
            await _worker_faults.change(self, _worker_faults.activity_point(task, outcome[0]), what, make)
        except _worker_faults.Crashed:
            return False
        except Exception:  # noqa: BLE001 - the lease will time out and the attempt is retried
            log.exception("recording %s failed", what)
        return False

    def _activity_log_details(self, task: ActivityTask) -> dict[str, Any]:
        info = task.info
        return {
            "activity_id": info.get("activityId"), "activity_type": info.get("activityType"), "attempt": task.attempt,
            "namespace": self.client.namespace, "task_queue": self.task_queue, "workflow_id": info.get("workflowId"),
            "workflow_run_id": task.run_id, "workflow_type": info.get("workflowType"),
        }

    async def _activity_outcome(self, task: ActivityTask, outcome: tuple[str, Any]) -> Callable[[], tuple[Any, ...]]:
        """The change that records ``outcome``, made at each try (its time current)."""
        now = self.client.clock.now
        if outcome[0] == "ok":
            return lambda: (_service.complete_activity, task.task_id, self._owner, task.attempt, outcome[1], now())
        failure = await self._encode_failure(outcome[1])
        cancelled = outcome[0] == "cancelled"
        return lambda: (_service.fail_activity, task.task_id, self._owner, task.attempt, failure, now(), cancelled)

    async def _invoke(self, defn: ActivityDefinition, task: ActivityTask, context: _Context) -> tuple[str, Any]:
        info = task.info
        converter = self.client.data_converter
        timer: asyncio.TimerHandle | None = None
        state = {"running": True, "timed_out": False}
        try:
            args = await converter._decode_json(info.get("input"), defn.arg_types, f"the input of activity {defn.name!r}")
            token = _current.set(context)
            self._activity_contexts.add(context)
            try:
                if defn.is_async:
                    # Run inline in this task (no task of its own). A timeout or a cancel
                    # request learned through a heartbeat cancels this task, and only while the
                    # activity's code is still running, so it always lands inside that code.
                    job = asyncio.current_task()
                    assert job is not None

                    def interrupt(timed_out: bool = False) -> None:
                        if state["running"]:
                            state["timed_out"] = timed_out
                            job.cancel()

                    context.on_cancel = interrupt
                    limit = info.get("startToClose")
                    if limit:
                        timer = asyncio.get_running_loop().call_later(limit, interrupt, True)
                    try:
                        result = await (self._intercepted(defn, args, info) if self._interceptors else defn.fn(*args))
                    finally:
                        state["running"] = False
                elif self._interceptors:
                    result = await self._intercepted(defn, args, info)
                else:
                    ctx = contextvars.copy_context()
                    loop = asyncio.get_running_loop()
                    result = await loop.run_in_executor(self._executor, ctx.run, defn.fn, *args)
            finally:
                _current.reset(token)
                self._activity_contexts.discard(context)
                if timer is not None:
                    timer.cancel()
        except _CompleteAsyncError:
            return ("abandoned", None)  # completed later through a handle: nothing to record now
        except asyncio.CancelledError as e:
            if state["timed_out"]:
                # As a temporalio worker: stop the code, report nothing; the engine's own timer
                # records ActivityTaskTimedOut (a reported failure would be ActivityTaskFailed).
                return ("abandoned", None)
            if context.cancelled:
                return ("cancelled", asyncio.CancelledError())
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # this attempt's task was cancelled: the worker crashed or is shutting down
            # The activity raised it itself (nobody cancelled it): as temporalio, a failure.
            return ("fail", _from_user_code(e, defn.name))
        except Exception as e:  # noqa: BLE001 - every failure is recorded as the attempt's outcome
            return ("fail", e)
        except BaseException as e:  # noqa: BLE001 - SystemExit, KeyboardInterrupt: see _from_user_code
            return ("fail", _from_user_code(e, defn.name))
        try:
            return ("ok", await converter._encode_json([result], f"the result of activity {defn.name!r}", numbered=False))
        except PayloadError as e:
            return ("fail", ApplicationError(str(e), type="PayloadError", non_retryable=True))

    async def _intercepted(self, defn: ActivityDefinition, args: list[Any], info: dict[str, Any]) -> Any:
        chain = _interceptors.activity_chain(self._interceptors, _interceptors.EngineActivityInbound(self._executor))
        chain.init(_interceptors.EngineActivityOutbound())
        call = _interceptors.ExecuteActivityInput(defn.fn, args, self._executor, _interceptors.headers_from_json(info.get("header")))
        return await chain.execute_activity(call)

    async def _activity_context(self, task: ActivityTask) -> _Context:
        info = task.info
        converter = self.client.data_converter
        # Decoded now (a codec may need awaiting); the rest of activity.info() on first use.
        details = await converter._decode_json(info["heartbeatDetails"], (), "heartbeat details") if info.get("heartbeatDetails") else []

        def make_info() -> ActivityInfo:
            def seconds(key: str) -> timedelta | None:
                return timedelta(seconds=info[key]) if info.get(key) else None

            return ActivityInfo(
                activity_id=info["activityId"],
                activity_type=info["activityType"],
                attempt=task.attempt,
                workflow_id=info["workflowId"],
                workflow_run_id=task.run_id,
                workflow_type=info["workflowType"],
                workflow_namespace=self.client.namespace,
                task_queue=self.task_queue,
                scheduled_time=from_ts(info["scheduledTime"]),
                started_time=from_ts(task.started_at),
                schedule_to_close_timeout=(from_ts(info["deadline"]) - from_ts(info["scheduledTime"])) if info.get("deadline") else None,
                start_to_close_timeout=seconds("startToClose"),
                heartbeat_timeout=seconds("heartbeat"),
                heartbeat_details=details,
                task_token=_task_token(task.task_id, self._owner, task.attempt, task.run_id, task.scheduled_event_id),
            )

        loop = asyncio.get_running_loop()  # heartbeats may come from a sync activity's thread
        return _Context(make_info, lambda context: _Heartbeats(self, task, context, loop), converter.payload_converter)


def _task_named(task: WorkflowTask) -> str:
    return f"Workflow task {task.started_event_id} of workflow {task.workflow_id!r} (run {task.run_id})"


def _report_failed_job(job: asyncio.Future, what: str) -> None:
    # Retrieved here, so that asyncio never logs "Task exception was never retrieved".
    if not job.cancelled() and job.exception() is not None:
        log.error("%s failed; its task is retried after its timeout", what, exc_info=job.exception())


def _from_user_code(error: BaseException, activity_type: str) -> BaseException:
    """An activity raised what is not an ``Exception`` (``sys.exit()`` in a library, say).
    As in temporalio it fails only this attempt, as an application failure whose type is the
    exception's class name: letting it through would end the worker process, and the next
    worker to take the retried attempt too, with nothing recorded."""
    log.warning(
        "activity %s raised %s; recorded as the failure of this attempt, the worker goes on",
        activity_type, _user_exits.described(error),
    )
    return error


class _Heartbeats:
    """Sends an activity's heartbeats, one change at a time, the latest details winning."""

    def __init__(self, worker: Worker, task: ActivityTask, context: _Context, loop: asyncio.AbstractEventLoop) -> None:
        self._worker = worker
        self._task = task
        self._context = context
        self._loop = loop
        self._details: Any = None
        self._sending: asyncio.Task | None = None

    def __call__(self, values: Sequence[Any]) -> None:
        converter = self._worker.client.data_converter
        self._details = to_json_payloads(converter.payload_converter, list(values), "heartbeat detail")
        if asyncio.events._get_running_loop() is self._loop:
            self._kick()
        else:
            self._loop.call_soon_threadsafe(self._kick)

    def _kick(self) -> None:
        if self._sending is None and self._details is not None:
            self._sending = self._loop.create_task(self._send())

    async def drain(self) -> None:
        """Until every heartbeat given so far is recorded (before the attempt's outcome is)."""
        while self._sending is not None:
            await asyncio.shield(self._sending)

    async def _send(self) -> None:
        worker, task, context = self._worker, self._task, self._context
        converter = worker.client.data_converter
        try:
            while self._details is not None:
                details, self._details = self._details, None
                details = await converter._codec_json(details, encode=True)
                cancel = await worker.client.store.run(
                    _service.heartbeat_activity, task.task_id, worker._owner, task.attempt, details, worker.client.clock.now()
                )
                if cancel and not context.cancelled:
                    context.cancelled = True
                    if context.on_cancel is not None:
                        context.on_cancel()
        except Exception:  # noqa: BLE001 - a lost heartbeat only risks a heartbeat timeout
            log.exception("heartbeat failed")
        finally:
            self._sending = None
