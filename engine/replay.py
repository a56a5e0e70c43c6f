"""Replay a recorded history against workflow code, offline (mirrors temporalio's ``Replayer``).

Use it to check that changed code still agrees with runs recorded by older code (ours, or
histories exported from a Temporal cluster): a disagreement raises ``NondeterminismError``
naming the event, the recorded command, the new command and the code line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from engine._definitions import WorkflowDefinition, workflow_definition
from engine._runtime import WorkflowInstance, WorkflowTaskError, info_from_history
from engine._sandbox_runner import SandboxedWorkflowRunner, UnsandboxedWorkflowRunner, WorkflowRunner
from engine.converter import DataConverter
from engine.errors import NondeterminismError, NotRegisteredError
from engine.history import History

__all__ = ["Replayer", "WorkflowReplayResult"]


@dataclass(frozen=True)
class WorkflowReplayResult:
    """The outcome of one replay: ``replay_failure`` is None when code and history agree."""

    history: History
    replay_failure: Exception | None


class Replayer:
    """Replays histories against the given workflow classes."""

    def __init__(
        self,
        *,
        workflows: Sequence[type],
        data_converter: DataConverter = DataConverter.default,
        workflow_runner: WorkflowRunner | None = None,
        unsandboxed_workflow_runner: WorkflowRunner | None = None,
    ) -> None:
        """``data_converter``'s payload and failure converters are used by the workflow code.
        Replay is synchronous, so a payload codec is not run here: decode a codec-encoded
        history first (``await engine.converter.decode_history(history, data_converter)``).
        Workflow code runs in the sandbox unless ``workflow_runner`` says otherwise, as in a worker."""
        self.data_converter = data_converter
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
        return self._runner_for(defn).create_instance(defn, info, self.data_converter)
