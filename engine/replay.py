"""Replay a recorded history against workflow code, offline (mirrors temporalio's ``Replayer``).

Use it to check that changed code still agrees with runs recorded by older code (ours, or
histories exported from a Temporal cluster): a disagreement raises ``NondeterminismError``
naming the event, the recorded command, the new command and the code line.

To see *why*, record a trace and step through it: ``Replayer.trace_workflow(history)`` gives
a ``ReplayTrace`` (every history event applied and every line of workflow code run, with the
locals, commands and pending work at each), and ``ReplayDebugger(trace)`` moves through it
forward and back, with breakpoints on lines, event types and event ids.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, AsyncIterable, AsyncIterator, Generator, Iterable, Mapping, Sequence

from engine._debugger.navigation import Breakpoint, TraceNavigator
from engine._debugger.trace import Divergence, Pending, ReplayTrace, TracedCommand, TraceStep, record
from engine._runtime.definitions import WorkflowDefinition
from engine._runtime.info import info_from_history
from engine._runtime.instance import WorkflowInstance, WorkflowTaskError
from engine._sandbox.runner import SandboxedWorkflowRunner, UnsandboxedWorkflowRunner, WorkflowRunner
from engine._sandbox.translation import workflow_definition
from engine.converter import DataConverter
from engine.errors import NondeterminismError, NotRegisteredError
from engine.history import History

__all__ = [
    "Replayer",
    "WorkflowReplayResult",
    "WorkflowReplayResults",
    "ReplayTrace",
    "TraceStep",
    "TracedCommand",
    "Pending",
    "Divergence",
    "ReplayDebugger",
    "Breakpoint",
]


@dataclass(frozen=True)
class WorkflowReplayResult:
    """The outcome of one replay: ``replay_failure`` is None when code and history agree."""

    history: History
    replay_failure: Exception | None

    def __await__(self) -> Generator[Any, None, WorkflowReplayResult]:
        # Replay here is synchronous; temporalio's ``replay_workflow`` is a coroutine, so
        # ``await replayer.replay_workflow(h)`` (code written for temporalio) works too.
        return self
        yield  # pragma: no cover - makes this a generator


@dataclass(frozen=True)
class WorkflowReplayResults:
    """The outcome of ``replay_workflows``: the failures, by run id (empty when all agree)."""

    replay_failures: Mapping[str, Exception] = field(default_factory=dict)


class Replayer:
    """Replays histories against the given workflow classes."""

    def __init__(
        self,
        *,
        workflows: Sequence[type],
        data_converter: DataConverter = DataConverter.default,
        workflow_runner: WorkflowRunner | None = None,
        unsandboxed_workflow_runner: WorkflowRunner | None = None,
        interceptors: Sequence[Any] = (),
    ) -> None:
        """``data_converter``'s payload and failure converters are used by the workflow code.
        Replay is synchronous, so a payload codec is not run here: decode a codec-encoded
        history first (``await engine.converter.decode_history(history, data_converter)``).
        Workflow code runs in the sandbox unless ``workflow_runner`` says otherwise, as in a worker."""
        self.data_converter = data_converter
        self._interceptors = [i for i in interceptors if hasattr(i, "workflow_interceptor_class")]
        self._runner = workflow_runner if workflow_runner is not None else SandboxedWorkflowRunner()
        self._unsandboxed_runner = unsandboxed_workflow_runner if unsandboxed_workflow_runner is not None else UnsandboxedWorkflowRunner()
        self._workflows: dict[str, WorkflowDefinition] = {}
        for w in workflows:
            defn = workflow_definition(w)
            self._workflows[defn.name] = defn
            self._runner_for(defn).prepare_workflow(defn)

    def _runner_for(self, defn: WorkflowDefinition) -> WorkflowRunner:
        return self._runner if defn.sandboxed else self._unsandboxed_runner

    def replay_workflow(self, history: History, *, raise_on_replay_failure: bool = True) -> WorkflowReplayResult:
        """Re-run the workflow code over ``history``; raise (or return) the first disagreement."""
        failure: Exception | None = None
        try:
            instance = self.instance_for(history)
            instance.apply(list(history.events), live_tail=False)
        except NondeterminismError as e:
            failure = e
        except WorkflowTaskError as e:
            failure = e.error if isinstance(e.error, Exception) else e
        if failure is not None and raise_on_replay_failure:
            raise failure
        return WorkflowReplayResult(history, failure)

    def trace_workflow(self, history: History) -> ReplayTrace:
        """Replay ``history`` recording every step (see ``ReplayTrace``); a disagreement or a
        failure ends the trace instead of raising. Costs more than ``replay_workflow``: use it
        to look, not to check."""
        return record(self, history)

    async def replay_workflows(
        self, histories: AsyncIterable[History] | Iterable[History], *, raise_on_replay_failure: bool = True
    ) -> WorkflowReplayResults:
        """Replay every history (an async iterator, as ``map_histories()`` gives, or a list);
        raise the first failure, or with ``raise_on_replay_failure=False`` collect them by run id."""
        failures: dict[str, Exception] = {}
        async with self.workflow_replay_iterator(histories) as results:
            async for result in results:
                if result.replay_failure is not None:
                    if raise_on_replay_failure:
                        raise result.replay_failure
                    failures[result.history.run_id] = result.replay_failure
        return WorkflowReplayResults(failures)

    @contextlib.asynccontextmanager
    async def workflow_replay_iterator(
        self, histories: AsyncIterable[History] | Iterable[History]
    ) -> AsyncIterator[AsyncIterator[WorkflowReplayResult]]:
        """``async with replayer.workflow_replay_iterator(histories) as results: async for r in results``:
        one ``WorkflowReplayResult`` per history, as each is replayed (failures never raise)."""

        async def results() -> AsyncIterator[WorkflowReplayResult]:
            if isinstance(histories, AsyncIterable):
                async for history in histories:
                    yield self.replay_workflow(history, raise_on_replay_failure=False)
            else:
                for history in histories:
                    yield self.replay_workflow(history, raise_on_replay_failure=False)

        yield results()

    def instance_for(self, history: History) -> WorkflowInstance:
        """A fresh instance of the history's workflow type, ready for ``apply``."""
        if not history.events or history.events[0].event_type != "WorkflowExecutionStarted":
            raise NondeterminismError("The history does not start with WorkflowExecutionStarted.")
        first = history.events[0]
        attrs = first.attributes
        wtype = (attrs.get("workflowType") or {}).get("name", "")
        defn = self._workflows.get(wtype)
        if defn is None:
            raise NotRegisteredError(
                f"The history is of workflow type {wtype!r}, but the Replayer was given "
                f"{', '.join(sorted(self._workflows)) or 'no workflows'}. Pass workflows=[YourClass]."
            )
        run_id = str(attrs.get("originalExecutionRunId") or attrs.get("firstExecutionRunId") or "replay")
        info = info_from_history(history.workflow_id, run_id, history.events)
        instance = self._runner_for(defn).create_instance(defn, info, self.data_converter)
        instance.interceptors = self._interceptors
        return instance


class ReplayDebugger(TraceNavigator):
    """Steps forward and back through a recorded replay: ``step()``, ``back()``,
    ``next_event()``, ``prev_event()``, ``goto(event_id=|line=|step=)``, ``run_to()`` and
    ``run_back()`` with breakpoints on lines, event types and event ids, ``to_divergence()``;
    ``state`` is the current ``TraceStep``. A replay that diverged opens at the divergence."""

    @classmethod
    def from_history(cls, history: History, workflows: Sequence[type], **replayer_options: Any) -> ReplayDebugger:
        """Record the trace of ``history`` replayed against ``workflows`` (``Replayer`` options pass through)."""
        return cls(Replayer(workflows=workflows, **replayer_options).trace_workflow(history))
