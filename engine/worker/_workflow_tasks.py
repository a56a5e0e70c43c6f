"""A worker's workflow tasks: polled, run on a cached or rebuilt instance of the workflow, their
commands recorded (or the task failed), and queries answered from the instance.
"""

from __future__ import annotations

import asyncio
import functools
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Awaitable, Callable, cast

from engine._conversion.failure_converter import encode_failure
from engine._conversion.payload_visitor import transform_commands, transform_events
from engine._history.commands import complete_workflow_task
from engine._history.mutable_state import StaleTaskError
from engine._history.workflow_tasks import WorkflowTask
from engine._history.workflow_tasks import claim_workflow_tasks, fail_workflow_task, read_events
from engine._persistence import lock_waits as _lock_waits
from engine._runtime.definitions import WorkflowDefinition
from engine._runtime.info import info_from_history
from engine._runtime.instance import WorkflowInstance, WorkflowTaskError
from engine._sandbox.runner import WorkflowRunner
from engine.errors import ApplicationError, NondeterminismError, NotRegisteredError, StoreLockedError
from engine.worker import _faults as _worker_faults
from engine.worker._local import run_local_activities
from engine.worker._logs import WorkflowTaskFailures, _report_failed_job, log

if TYPE_CHECKING:
    from engine._matching.dispatch import Receiver
    from engine.client import Client
    from engine.worker import Worker


class WorkflowTasks:
    """The workflow-task side of ``Worker``."""

    # Kept by Worker (engine/worker/__init__.py), which this class is a part of.
    client: Client
    task_queue: str
    stats: dict[str, int]
    build_id: str
    _owner: str
    _crashed: bool
    _workflows: dict[str, WorkflowDefinition]
    _interceptors: list[Any]
    _runner: WorkflowRunner
    _unsandboxed_runner: WorkflowRunner
    _cache: OrderedDict[str, WorkflowInstance]
    _max_cached: int
    _inflight_wf: set[asyncio.Task]
    _receivers: dict[str, Receiver]
    _task_failures: WorkflowTaskFailures
    _poll_loop: Callable[[str, Callable[..., Any], tuple[Any, ...], Callable[[Any], None]], Awaitable[None]]

    # ------------------------------------------------------------------ workflow tasks
    async def _workflow_loop(self) -> None:
        await self._poll_loop("workflow", claim_workflow_tasks, (self._cached_upto,), self._accept_workflow_task)

    def _accept_workflow_task(self, task: WorkflowTask) -> None:
        """Run a workflow task: at once when nothing needs awaiting (the run is cached or the
        task carries its whole history, no payload codec, no fault to obey), else in a task
        of its own. Either way the worker's slot is given back once the outcome committed."""
        if self._crashed:
            return  # as after a real crash: the lease times out
        self.stats["workflow_tasks"] += 1
        defn = self._workflows.get(task.workflow_type)
        if defn is not None and self.client.data_converter.payload_codec is None and _worker_faults.quiet(cast("Worker", self)):
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
            if instance._finished:
                # Its code is done (it closed the run): nothing of it is needed to record the
                # commands, and a retry after a failed commit replays from history anyway. Let
                # it go now, not at the commit, so that its objects and its sandbox copy are
                # free for the next task of this batch (engine/_sandbox/reuse.py).
                self._evict(task.run_id)
            return
        self._evict(task.run_id)
        job = asyncio.ensure_future(self._fail_workflow_task(task, error, cause))
        self._inflight_wf.add(job)
        job.add_done_callback(self._workflow_job_done)

    def _completion(self, task: WorkflowTask, submitted: list[Any], first: bool) -> Callable[[], tuple[Any, ...]]:
        """The change that completes ``task`` with the commands ``submitted``, made at each try."""
        return lambda: (
            complete_workflow_task, task.task_id, self._owner, task.run_id, task.started_event_id,
            submitted, self.client.clock.now(), first, self.build_id,
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
            commands = commands + await run_local_activities(cast("Worker", self), instance)
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
        if instance._finished:
            self._evict(task.run_id)  # as in _run_workflow_task: its code is done
        await self._record_completion(
            task,
            instance,
            _worker_faults.change(cast("Worker", self), _worker_faults.workflow_task_point(task, submitted), _task_named(task), self._completion(task, submitted, first)),
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
            stored = await self.client.store.read(read_events, task.run_id, 0)
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
        events = await self.client.store.read(read_events, run_id, 0)
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
                    fail_workflow_task, task.task_id, self._owner, task.run_id, task.started_event_id,
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


def _task_named(task: WorkflowTask) -> str:
    return f"Workflow task {task.started_event_id} of workflow {task.workflow_id!r} (run {task.run_id})"
