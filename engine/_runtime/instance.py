"""The workflow runtime: a deterministic asyncio event loop driven by history.

A ``WorkflowInstance`` *is* an event loop (as in temporalio): ``time()`` is history time,
``call_later`` becomes a durable timer, and nothing runs except when an activation drives the
ready queue. ``apply(events)`` walks history: jobs (workflow started, activity completed,
timer fired, ...) resolve futures; each ``WorkflowTaskStarted`` that the history shows as
completed is a past activation (replay), the last one is the live activation. Commands the
code produces are matched, in order, with the command events recorded after each
``WorkflowTaskCompleted``; a mismatch raises ``NondeterminismError``.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import logging
import random as _random
import types
from typing import Any, Callable, Mapping, Sequence

from engine._api.sdk_flags import SDK_FLAGS, flags_of
from engine._conversion.payload_converter import from_json_payloads, to_json_payload
from engine._runtime import children as _children
from engine._runtime import handler_table as _handler_table
from engine._runtime import handlers as _handlers
from engine._runtime import interceptors as _interceptors
from engine._runtime import local_activities as _local_activities
from engine._runtime import outbound as _outbound
from engine._runtime import updates as _updates
from engine._runtime import user_exits as _user_exits
from engine._runtime.activities import ActivityCalls, ActivityHandle
from engine._runtime.code_lines import CodeLine, BOUNDARY_CODES, user_code_line
from engine._runtime.commands import (
    ContinueAsNewError,
    COMMAND_EVENTS,
    Command,
    WRITTEN_AMONG_COMMANDS,
    key_of,
    matches,
    patches_after,
    skippable,
)
from engine._runtime.definitions import WorkflowDefinition
from engine._runtime.event_loop import _WorkflowTimer
from engine._runtime.history_size import HistorySize
from engine._runtime.info import WorkflowInfo
from engine._runtime.workflow_calls import WorkflowCalls
from engine.converter import DataConverter
from engine.errors import CancelledError, FailureError, NondeterminismError, WorkflowQueryFailedError
from engine.history import HistoryEvent


_log = logging.getLogger("engine.workflow")


class WorkflowTaskError(Exception):
    """Workflow code raised something that is not a workflow failure: fail the workflow task."""

    def __init__(self, error: BaseException, nondeterminism: bool = False) -> None:
        if not isinstance(error, Exception):  # SystemExit, say: see engine._runtime.user_exits
            error = _user_exits.workflow_task_failure(error)
        super().__init__(str(error))
        self.error = error
        self.nondeterminism = nondeterminism


class WorkflowInstance(ActivityCalls, WorkflowCalls):
    """One workflow run's code, its state, and the event loop that drives it."""

    # Set by the runner that built the instance (engine/_sandbox/runner.py): whether its code
    # runs in the sandbox, and the definition the worker was given (``defn`` may be a copy).
    sandboxed = False
    registered: WorkflowDefinition | None = None
    # The worker's interceptors (engine/_runtime/interceptors.py); the chains are built with the object.
    interceptors: Sequence[Any] = ()
    # Called with the instance once it is evicted, by the runner that lent it its code.
    on_evicted: Callable[[Any], None] | None = None

    def __init__(self, defn: WorkflowDefinition, info: WorkflowInfo, data_converter: DataConverter | None = None) -> None:
        self.defn = defn
        self.info = info
        # Only the converters: the codec runs in the worker, outside workflow code.
        converter = data_converter or DataConverter.default
        self.payload_converter = converter.payload_converter
        self.failure_converter = converter.failure_converter
        self._ready: collections.deque[asyncio.Handle] = collections.deque()
        self._now = info.start_time
        self._replaying = False
        self._commands: list[Command] = []
        self._unmatched: collections.deque[Command] = collections.deque()
        self._matching_after: int | None = None
        self._seq = {"activity": 0, "timer": 0}
        self._activities: dict[int, ActivityHandle] = {}
        self._pending_activities: dict[str, ActivityHandle] = {}
        self._timers: dict[str, _WorkflowTimer] = {}
        # Child handles by initiated event id; callbacks of signal/cancel-external commands.
        self._children: dict[int, Any] = {}
        self._external: dict[int, Callable[[BaseException | None], None]] = {}
        self._conditions: list[tuple[Callable[[], bool], asyncio.Future]] = []
        self._main: asyncio.Task | None = None
        self._main_started = False
        self._object: Any = None
        self._inbound: Any = None  # the inbound interceptor chain, when there are interceptors
        self.outbound: Any = None  # the outbound one (its init sets it)
        self._random_instance: _random.Random | None = None
        self._tasks: set[asyncio.Task] = set()
        self._closed = False
        self._finished = False
        self._cancel_requested = False
        self.processed_upto = 0
        self.handlers = _handler_table.HandlerTable(defn)
        self._patches: dict[str, bool] = {}
        self._activation_patches: set[str] = set()
        # Patch ids in the TemporalChangeVersion upserts so far; SDK flags the history recorded
        # (None until a WorkflowTaskCompleted is seen: then the flags this worker writes apply).
        self._change_versions: list[str] = []
        self._history_flags: set[int] | None = None
        self.saw_completed_task = False
        self.last_started_event_id = 0
        self._local: _local_activities.LocalActivities | None = None  # made on first use
        self._task_events: tuple[Sequence[HistoryEvent], int] | None = None  # a replayed task's events
        self.continue_as_new_suggested = False
        self.history_size = HistorySize()

    # ----------------------------------------------------------------- driving
    def apply(
        self,
        events: Sequence[HistoryEvent],
        *,
        live_tail: bool = True,
        check_end: bool = True,
        updates: Sequence[dict[str, Any]] = (),
    ) -> list[Command]:
        """Feed new events (ids after ``processed_upto``); return the live activation's commands.

        With ``live_tail`` the last ``WorkflowTaskStarted`` runs as the live activation; without
        it (pure replay of a closed history) every activation is a replayed one. ``updates``
        are the update requests the live workflow task carries (validated, then accepted or
        rejected); replayed activations get the accepted ones back from the history.
        """
        try:
            return self._apply(events, live_tail, check_end, updates)
        except Exception:
            raise
        except BaseException as e:
            # Workflow code raised SystemExit or KeyboardInterrupt (asyncio lets those two
            # through its tasks and callbacks): a failed workflow task, not the worker's end.
            raise WorkflowTaskError(e) from None

    def _apply(
        self, events: Sequence[HistoryEvent], live_tail: bool, check_end: bool, updates: Sequence[dict[str, Any]]
    ) -> list[Command]:
        produced: list[Command] = []
        n = len(events)
        measure = self.history_size.unmeasured.append
        for i, event in enumerate(events):
            if event.event_id <= self.processed_upto:
                continue
            measure(event)
            if self._tracer is not None:  # the replay debugger's recorder (engine/_debugger/trace.py)
                self._tracer.on_event(self, event)
            etype = event.event_type
            if etype in COMMAND_EVENTS:
                self._match(event)
            elif etype in WRITTEN_AMONG_COMMANDS:
                self._job(event)
            else:
                self._check_all_matched(event)
                if etype == "WorkflowTaskStarted":
                    following = events[i + 1].event_type if i + 1 < n else None
                    if following == "WorkflowTaskCompleted" or (following is None and not live_tail and check_end):
                        if following is not None:
                            self._note_flags(events[i + 1])
                        self._activation_patches = patches_after(events, i + 2)
                        self._task_events = (events, i + 2)
                        for request in _updates.requests_in(events, i + 2):
                            _updates.deliver(self, request, validate=False)
                        self._activate(event, replaying=True)
                    elif following is None and live_tail:
                        self._task_events = None
                        for request in updates:
                            _updates.deliver(self, request, validate=True)
                        produced = self._activate(event, replaying=False)
                elif etype == "WorkflowTaskCompleted":
                    self._matching_after = event.event_id
                    self.saw_completed_task = True
                    self._note_flags(event)
                else:
                    self._job(event)
            self.processed_upto = event.event_id
        self.history_size.added()
        if not live_tail and check_end:
            self._check_all_matched(None)
        return produced

    def _note_flags(self, completed: HistoryEvent) -> None:
        self._history_flags = (self._history_flags or set()) | flags_of(completed.attributes)

    def uses_flag(self, flag: int) -> bool:
        """Whether this run follows SDK flag ``flag``: as its history recorded, or, before its
        first completed workflow task, as this worker will record."""
        return flag in (SDK_FLAGS if self._history_flags is None else self._history_flags)

    def _activate(self, started: HistoryEvent, *, replaying: bool) -> list[Command]:
        if started.event_time is not None:  # an imported history may lack times: keep the last
            self._now = started.event_time
        self._replaying = replaying
        self.last_started_event_id = started.event_id
        self.continue_as_new_suggested = bool(started.attributes.get("suggestContinueAsNew"))
        self.history_size.task_started(started)
        if self._local is not None:
            self._local.activation_index = 1
        self._run_until_idle()
        if replaying and self._local is not None:
            while self._local.resolve_replayed():
                self._local.activation_index += 1
                self._run_until_idle()
        return self._take_commands()

    def continue_activation(self) -> list[Command]:
        """Run the code on (local activity outcomes were handed in); the commands since the
        last call. The worker calls this within one workflow task, as core does."""
        self._run_until_idle()
        return self._take_commands()

    def _take_commands(self) -> list[Command]:
        commands, self._commands = self._commands, []
        self._unmatched.extend(c for c in commands if c.kind not in _updates.NO_EVENT_COMMANDS)
        return commands

    @property
    def local_activities(self) -> _local_activities.LocalActivities:
        if self._local is None:
            self._local = _local_activities.LocalActivities(self)
        return self._local

    def _run_until_idle(self) -> None:
        previous = asyncio.events._get_running_loop()
        asyncio.events._set_running_loop(self)
        try:
            while True:
                while self._ready:
                    handle = self._ready.popleft()
                    if not handle._cancelled:
                        handle._run()
                    if self._failure is not None:
                        failure, self._failure = self._failure, None
                        raise WorkflowTaskError(failure)
                if not self._check_conditions():
                    break
        finally:
            asyncio.events._set_running_loop(previous)

    _failure: BaseException | None = None
    _evicting = False
    # Set only while engine/_debugger/trace.py records a replay: it sees each event before it applies.
    _tracer: Any = None

    def fail_task(self, error: BaseException) -> None:
        """Fail this workflow task with ``error`` even if workflow code catches it (the
        sandbox reports restricted calls so), unless it is one of the workflow's failure types."""
        if self._failure is None and not isinstance(error, self.defn.failure_exception_types):
            self._failure = error

    def _check_conditions(self) -> bool:
        fired = False
        for entry in list(self._conditions):
            fn, fut = entry
            if fut.done():
                self._conditions.remove(entry)
                continue
            if fn():
                self._conditions.remove(entry)
                fut.set_result(True)
                fired = True
        return fired

    # ----------------------------------------------------------------- matching
    def _match(self, event: HistoryEvent) -> None:
        if skippable(event, self._unmatched[0] if self._unmatched else None):
            return
        if not self._unmatched:
            raise NondeterminismError(
                self._nd_message(
                    event,
                    "the workflow code produced no command here",
                    self._where_waiting(),
                ),
                workflow_id=self.info.workflow_id,
                event_id=event.event_id,
                recorded=self._describe_event(event),
                produced=None,
                code_line=str(self._where_waiting() or ""),
            )
        command = self._unmatched.popleft()
        if not matches(command, event):
            raise NondeterminismError(
                self._nd_message(event, f"the code produced {command.describe()}", command.source),
                workflow_id=self.info.workflow_id,
                event_id=event.event_id,
                recorded=self._describe_event(event),
                produced=command.describe(),
                code_line=str(command.source or ""),
            )
        on_event = command.on_event
        if on_event is not None:
            # Called once. Dropped, so that the handle it closes over (which holds the command)
            # is freed by its reference count, not left for the cycle collector.
            command.on_event = None
            on_event(event.event_id)

    def _check_all_matched(self, event: HistoryEvent | None) -> None:
        if self._matching_after is None:
            return
        if self._unmatched:
            command = self._unmatched[0]
            where = f"before event {event.event_id} ({event.event_type})" if event else "at the end of the history"
            raise NondeterminismError(
                f"Nondeterminism in workflow {self.info.workflow_id!r} ({self.info.workflow_type}): "
                f"the code produced {command.describe()} but the history recorded no such command "
                f"{where} (the workflow task completed at event {self._matching_after}). "
                f"Code line: {command.source}. The workflow code changed since this run started; "
                "restore the old code path, or guard the change with workflow.patched().",
                workflow_id=self.info.workflow_id,
                event_id=event.event_id if event else None,
                recorded=None,
                produced=command.describe(),
                code_line=str(command.source or ""),
            )
        self._matching_after = None

    def _describe_event(self, event: HistoryEvent) -> str:
        return f"{event.event_type}({key_of(event.event_type, dict(event.attributes))})"

    def _nd_message(self, event: HistoryEvent, produced: str, line: CodeLine | None) -> str:
        return (
            f"Nondeterminism in workflow {self.info.workflow_id!r} ({self.info.workflow_type}): "
            f"history event {event.event_id} is {self._describe_event(event)}, but on replay "
            f"{produced}. Code line: {line or 'unknown'}. The workflow code changed since this run "
            "started; restore the old code path, or guard the change with workflow.patched()."
        )

    def _where_waiting(self) -> CodeLine | None:
        if self._main is None:
            return None
        try:
            return user_code_line(self._main.get_stack())
        except Exception:  # noqa: BLE001 - best effort: only used in a message
            return None

    # ----------------------------------------------------------------- jobs
    def _job(self, event: HistoryEvent) -> None:
        handler = _JOBS.get(event.event_type)
        if handler is not None:
            handler(self, event)

    def _on_started(self, event: HistoryEvent) -> None:
        attrs = event.attributes
        args = from_json_payloads(
            self.payload_converter, attrs.get("input"), self.defn.arg_types, f"the input of workflow {self.info.workflow_type!r}"
        )
        if event.event_time is not None:
            self._now = event.event_time
        previous = asyncio.events._get_running_loop()
        asyncio.events._set_running_loop(self)  # __init__ is workflow code too (the sandbox checks it)
        try:
            if getattr(getattr(self.defn.cls, "__init__"), "__temporal_workflow_init", False):  # @workflow.init
                self._object = self.defn.cls(*args)
            else:
                self._object = self.defn.cls()
            if self.interceptors:
                self._inbound = _outbound.workflow_chain(self.interceptors, self)
        finally:
            asyncio.events._set_running_loop(previous)
        # The engine makes the main task: no user line made it, so none is looked for.
        self._main = self.create_task(self._run_main(args), _origin=False)

    async def _run_main(self, args: list[Any]) -> None:
        try:
            self._main_started = True
            if self._cancel_requested:
                # Asked to cancel before the run began (the request came with its first
                # workflow task): workflow code gets the CancelledError at its first await,
                # as it would any later one. Cancelling the task before its first step would
                # throw it in before this try, and the cancel would be lost.
                assert self._main is not None
                self._main.cancel()
            if self._inbound is None:
                result = await self.defn.run_fn(self._object, *args)
            else:
                result = await self._inbound.execute_workflow(
                    _interceptors.ExecuteWorkflowInput(
                        type(self._object), types.MethodType(self.defn.run_fn, self._object), args, self.info.headers
                    )
                )
        except ContinueAsNewError as e:
            self._add_command("ContinueAsNewWorkflowExecution", e.command_attributes(self.info, self.payload_converter))
            return
        except asyncio.CancelledError:
            if self._evicting:
                return
            if self._cancel_requested:
                self._add_command("CancelWorkflowExecution", {})
            else:
                # Not asked to cancel (e.g. an awaited activity was cancelled): as temporalio,
                # the workflow fails rather than retrying a task that would fail the same way.
                self._fail_workflow(CancelledError("Workflow code raised asyncio.CancelledError"))
            return
        except FailureError as e:
            if self._cancel_requested and _is_cancellation(e):
                # A cancelled activity's error left the run method after a cancel request:
                # the workflow is cancelled, not failed (as in Temporal).
                self._add_command("CancelWorkflowExecution", {})
            else:
                self._fail_workflow(e)
            return
        except Exception as e:  # noqa: BLE001 - decided below: workflow failure or task failure
            if isinstance(e, self.defn.failure_exception_types):
                self._fail_workflow(e)
            else:
                self._failure = e
            return
        except GeneratorExit:
            raise  # the coroutine is being closed
        except BaseException as e:  # noqa: BLE001 - SystemExit and the like fail the task, see _user_exits
            self._failure = e
            return
        payload = to_json_payload(self.payload_converter, result, f"the result of workflow {self.info.workflow_type!r}")
        self._add_command("CompleteWorkflowExecution", {"result": {"payloads": [payload]}})

    def _fail_workflow(self, error: BaseException) -> None:
        self._add_command("FailWorkflowExecution", {"failure": self.failure_converter.to_failure(error, self.payload_converter)})


    def _on_signal(self, event: HistoryEvent) -> None:
        name = str(event.attributes.get("signalName", ""))
        handler = self.handlers.find("signal", name)
        if handler is None or self._object is None:
            # As in Temporal, a signal without a handler waits: for a handler that code sets
            # later (workflow.set_signal_handler), or for the next version of the code.
            self.handlers.buffered.append((name, event))
            return
        self._deliver_signal(handler, event)

    def set_signal_handler(self, name: str | None, fn: Callable[..., Any] | None) -> None:
        """``workflow.set_signal_handler``: the signals kept for want of a handler go to the new one now."""
        handler = self.handlers.set("signal", name, fn)
        if handler is not None:
            for event in self.handlers.take_buffered(name):
                self._deliver_signal(handler, event)

    @property
    def unhandled_signals(self) -> list[str]:
        """The names of the signals no handler has taken yet, in the order they came."""
        return [name for name, _ in self.handlers.buffered]

    def _deliver_signal(self, handler: _handler_table.Handler, event: HistoryEvent) -> None:
        attrs = event.attributes
        name = str(attrs.get("signalName", ""))
        try:
            args = handler.arguments(self.payload_converter, name, attrs.get("input"), f"the input of signal {name!r}")
        except Exception as e:  # noqa: BLE001 - as temporalio: the signal is dropped, the run goes on
            # Failing the workflow task instead would fail it again on every retry, since the
            # signal is in the history for good, and its sender would never hear of it.
            if not self._replaying:
                _log.warning(
                    "Dropped signal %r (event %d) to workflow %s (id %r, run %s): its input does not convert "
                    "to the handler's parameter types: %s. Send it again with arguments that match %s.",
                    name, event.event_id, self.info.workflow_type, self.info.workflow_id, self.info.run_id,
                    str(e).rstrip("."), getattr(handler.fn, "__qualname__", name),
                )
            return
        if self._inbound is not None:
            headers = _interceptors.headers_from_json(attrs.get("header"))
            call = self._inbound.handle_signal(_interceptors.HandleSignalInput(name, args, headers))
            self.create_task(self._guarded(_handlers.tracked(self, call)))
        elif inspect.iscoroutinefunction(handler.fn):
            self.create_task(self._guarded(_handlers.tracked(self, handler.call(self._object, args))))
        else:
            self.call_soon(self._call_guarded, handler.call, self._object, args)

    def _call_guarded(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except FailureError as e:
            self._fail_workflow(e)
        except Exception as e:  # noqa: BLE001 - a bug in a handler fails the workflow task
            self._failure = e

    async def _guarded(self, coro: Any) -> None:
        try:
            await coro
        except FailureError as e:
            self._fail_workflow(e)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - a bug in a handler fails the workflow task
            self._failure = e

    def query(self, name: str, input: Mapping[str, Any] | None, headers: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Run query handler ``name`` on the current state (it must not issue commands);
        ``input`` and the answer are payloads (the worker runs the codec on them)."""
        handler = self.handlers.find("query", name)
        if handler is None:
            raise self.handlers.missing_query(self.info.workflow_type, name)
        converted = handler.arguments(self.payload_converter, name, input, f"the input of query {name!r}")
        previous = asyncio.events._get_running_loop()
        asyncio.events._set_running_loop(self)
        before = len(self._commands)
        try:
            if self._inbound is None:
                result = handler.call(self._object, converted)
            else:
                call = _interceptors.HandleQueryInput("", name, converted, dict(headers or {}))
                result = _interceptors.run_sync(self._inbound.handle_query(call), f"Query {name!r}")
        except WorkflowQueryFailedError:
            raise
        except Exception as e:
            # As in temporalio, the asker gets WorkflowQueryFailedError; the handler's own
            # exception stays its cause (this process) and its text is in the message.
            raise WorkflowQueryFailedError(f"Query {name!r} raised {type(e).__name__}: {e}") from e
        except BaseException as e:  # noqa: BLE001 - SystemExit and the like: see _user_exits
            raise WorkflowQueryFailedError(f"Query {name!r} raised {_user_exits.described(e)} ({_user_exits.hint(e)}).") from None
        finally:
            asyncio.events._set_running_loop(previous)
        if len(self._commands) != before:
            del self._commands[before:]
            raise WorkflowQueryFailedError(
                f"Query {name!r} tried to change the workflow (start an activity or timer); queries may only read state."
            )
        return to_json_payload(self.payload_converter, result, f"the answer to query {name!r}")

    def _on_timer_fired(self, event: HistoryEvent) -> None:
        timer = self._timers.pop(str(event.attributes.get("timerId")), None)
        if timer is not None and not timer.cancelled():
            timer.fired = True
            self._ready.append(timer)

    def _on_cancel_requested(self, event: HistoryEvent) -> None:
        self._cancel_requested = True
        if self._main is not None and self._main_started and not self._main.done():
            self._main.cancel()

    # ----------------------------------------------------------------- commands
    def _add_command(self, kind: str, attributes: dict[str, Any], on_event: Callable[[int], None] | None = None) -> Command:
        if self._evicting:
            return Command(kind, attributes)
        if self._finished:
            raise RuntimeError("The workflow already completed; no more commands can be issued.")
        if kind in ("CompleteWorkflowExecution", "FailWorkflowExecution", "CancelWorkflowExecution", "ContinueAsNewWorkflowExecution"):
            self._finished = True
        command = Command(kind, attributes, user_code_line(), on_event)
        self._commands.append(command)
        return command


        # else: the cancel command goes out once the schedule is matched (see ``bound``).


    def _cancel_timer(self, timer: _WorkflowTimer) -> None:
        if self._timers.pop(timer.timer_id, None) is None:
            return
        # A timer cancelled in the activation that started it was never sent: as in Temporal's
        # SDK core, both commands vanish (wait_condition with a timeout on a condition that
        # already holds records no timer), though the timer's sequence number stays spent.
        if not self._drop_unsent(timer.command):
            self._add_command("CancelTimer", {"timerId": timer.timer_id})

    def _drop_unsent(self, command: Command | None) -> bool:
        """Take back a command of this activation, not yet sent; False if it was sent."""
        for index, pending in enumerate(self._commands):
            if pending is command:
                del self._commands[index]
                return True
        return False


    # ----------------------------------------------------------------- asyncio.AbstractEventLoop
    def evict(self) -> None:
        """Drop the instance: cancel its coroutines so they do not leak."""
        previous = asyncio.events._get_running_loop()
        asyncio.events._set_running_loop(self)
        self._evicting = True
        try:
            for task in list(self._tasks):
                task.cancel()
            self._finished = True
            while self._ready:
                handle = self._ready.popleft()
                try:
                    handle._run()
                except BaseException:  # noqa: BLE001 - tearing down; nothing to report
                    pass
        finally:
            asyncio.events._set_running_loop(previous)
            self._closed = True
            # The main task holds this instance (its loop, its coroutine's frames): let go of
            # it, so that the instance is freed by its reference count, not by the collector.
            self._main = None
        given, self.on_evicted = self.on_evicted, None
        if given is not None:
            given(self)  # the sandbox takes its module copy back (engine/_sandbox/reuse.py)


_JOBS: dict[str, Callable[[WorkflowInstance, HistoryEvent], None]] = {
    "WorkflowExecutionStarted": WorkflowInstance._on_started,
    "ActivityTaskCompleted": WorkflowInstance._on_activity_done,
    "ActivityTaskFailed": WorkflowInstance._on_activity_done,
    "ActivityTaskTimedOut": WorkflowInstance._on_activity_done,
    "ActivityTaskCanceled": WorkflowInstance._on_activity_done,
    "TimerFired": WorkflowInstance._on_timer_fired,
    "WorkflowExecutionCancelRequested": WorkflowInstance._on_cancel_requested,
    "WorkflowExecutionSignaled": WorkflowInstance._on_signal,
    **_children.JOBS,
}


BOUNDARY_CODES.update(
    method.__code__ for method in (WorkflowInstance.apply, WorkflowInstance._run_until_idle, WorkflowInstance.query)
)


def _is_cancellation(error: BaseException | None) -> bool:
    """True for a CancelledError, or an error caused (directly or not) by one."""
    while error is not None:
        if isinstance(error, (CancelledError, asyncio.CancelledError)):
            return True
        error = error.__cause__
    return False
