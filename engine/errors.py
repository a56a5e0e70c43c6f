"""Every error the engine raises, in one place.

The tree::

    EngineError                       base of everything raised on purpose
    ├── FailureError                  a failure that travels through history (mirrors temporalio)
    │   ├── ApplicationError          raised by user code; fails an activity attempt or the workflow
    │   ├── ActivityError             an activity failed for good (cause: the last attempt's failure)
    │   ├── ChildWorkflowError        a child workflow failed
    │   ├── CancelledError            work was cancelled
    │   ├── TerminatedError           the run was terminated
    │   ├── TimeoutError              a timeout fired (type says which)
    │   └── ServerError               the engine refused a request
    ├── WorkflowFailureError          client side: the workflow run did not complete (cause set)
    ├── WorkflowUpdateFailedError     client side: an update was rejected or its handler failed
    ├── WorkflowQueryFailedError      client side: a query's handler failed, or no worker answered
    ├── WorkflowAlreadyStartedError   a run with that workflow id is still open
    ├── WorkflowNotFoundError         no such workflow id / run id
    ├── NondeterminismError           replayed code disagrees with the recorded history
    │   └── RestrictedWorkflowAccessError  sandboxed workflow code called time.time(), open(), ...
    ├── DefinitionError               a @workflow.defn / @activity.defn is malformed
    ├── NotRegisteredError            a worker got a task for a type it does not know
    ├── PayloadError                  a value cannot be converted to or from a payload
    ├── HistoryFormatError            a history JSON file is malformed
    ├── ListFilterError               a list filter (--query) cannot be read
    └── StoreError                    the database cannot be used
        ├── StoreCorruptError         the file is not a durable-lab database, or is damaged
        ├── StoreReadOnlyError        a write to a database this user can only read
        └── StoreLockedError          another program held the write lock past the wait; try again

Messages name the problem, the place (workflow id, event id, code line) and what to do next.
"""

from __future__ import annotations

import enum
from typing import Any, Sequence

__all__ = [
    "EngineError",
    "FailureError",
    "ApplicationError",
    "ApplicationErrorCategory",
    "ActivityError",
    "ChildWorkflowError",
    "CancelledError",
    "TerminatedError",
    "TimeoutError",
    "TimeoutType",
    "RetryState",
    "ServerError",
    "WorkflowFailureError",
    "WorkflowUpdateFailedError",
    "WorkflowQueryFailedError",
    "describe_failure",
    "WorkflowAlreadyStartedError",
    "WorkflowNotFoundError",
    "NondeterminismError",
    "RestrictedWorkflowAccessError",
    "DefinitionError",
    "NotRegisteredError",
    "PayloadError",
    "HistoryFormatError",
    "ListFilterError",
    "StoreError",
    "StoreCorruptError",
    "StoreReadOnlyError",
    "StoreLockedError",
]


class EngineError(Exception):
    """Base class of every error the engine raises on purpose."""


class _MessageAndCause(EngineError):
    """temporalio's ``message`` and ``cause`` (the same as ``__cause__``), shared by failures
    and by ``WorkflowQueryFailedError``, which is not a failure recorded in history."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self._message = message

    @property
    def message(self) -> str:
        return self._message

    @property
    def cause(self) -> BaseException | None:
        """What caused it: the last attempt's failure for an ``ActivityError``, the query
        handler's own exception (when it ran in this process) for a failed query."""
        return self.__cause__


class FailureError(_MessageAndCause):
    """A failure that is recorded in history and can cross from activity to workflow to client."""

    @property
    def failure(self) -> Any:
        """The failure recorded in history that this error was read from, as temporalio's
        ``failure`` (``.message``, ``.stack_trace``, ``.cause``, ...); None for an error
        raised here and not read from a history."""
        recorded = getattr(self, "failure_json", None)
        if recorded is None:
            return None
        from engine._api.proto_view import FAILURE_DEFAULTS, ProtoView

        return ProtoView(recorded, FAILURE_DEFAULTS)


class ApplicationErrorCategory(enum.IntEnum):
    """How serious an ``ApplicationError`` is (Temporal's names): ``BENIGN`` marks an expected
    failure (a poll that found nothing yet) that workers log at DEBUG, not as a problem."""

    UNSPECIFIED = 0
    BENIGN = 1


class ApplicationError(FailureError):
    """An error raised by user code on purpose.

    In an activity it fails the attempt (retried unless ``non_retryable`` or its ``type``
    is listed in the retry policy's ``non_retryable_error_types``). In workflow code it fails
    the workflow execution, unlike any other exception, which only fails the workflow task.
    """

    def __init__(
        self,
        message: str,
        *details: Any,
        type: str | None = None,
        non_retryable: bool = False,
        next_retry_delay: Any = None,
        category: ApplicationErrorCategory = ApplicationErrorCategory.UNSPECIFIED,
    ) -> None:
        super().__init__(message)
        if not isinstance(category, ApplicationErrorCategory):
            raise TypeError(f"ApplicationError's category must be an ApplicationErrorCategory (e.g. ApplicationErrorCategory.BENIGN), not {category!r}.")
        self._category = category
        self._details = details
        self._type = type
        self._non_retryable = non_retryable
        self._next_retry_delay = next_retry_delay

    @property
    def details(self) -> Sequence[Any]:
        return self._details

    @property
    def type(self) -> str | None:
        return self._type

    @property
    def non_retryable(self) -> bool:
        return self._non_retryable

    @property
    def next_retry_delay(self) -> Any:
        return self._next_retry_delay

    @property
    def category(self) -> ApplicationErrorCategory:
        return self._category


class RetryState(enum.IntEnum):
    """Why retrying stopped (Temporal's names)."""

    UNSPECIFIED = 0
    IN_PROGRESS = 1
    NON_RETRYABLE_FAILURE = 2
    TIMEOUT = 3
    MAXIMUM_ATTEMPTS_REACHED = 4
    RETRY_POLICY_NOT_SET = 5
    INTERNAL_SERVER_ERROR = 6
    CANCEL_REQUESTED = 7


class TimeoutType(enum.IntEnum):
    """Which timeout fired (Temporal's names)."""

    UNSPECIFIED = 0
    START_TO_CLOSE = 1
    SCHEDULE_TO_START = 2
    SCHEDULE_TO_CLOSE = 3
    HEARTBEAT = 4


class ActivityError(FailureError):
    """An activity failed for good; ``__cause__`` holds the last attempt's failure."""

    def __init__(
        self,
        message: str,
        *,
        scheduled_event_id: int,
        started_event_id: int,
        identity: str,
        activity_type: str,
        activity_id: str,
        retry_state: RetryState | None,
    ) -> None:
        super().__init__(message)
        self.scheduled_event_id = scheduled_event_id
        self.started_event_id = started_event_id
        self.identity = identity
        self.activity_type = activity_type
        self.activity_id = activity_id
        self.retry_state = retry_state


class ChildWorkflowError(FailureError):
    """A child workflow failed; ``__cause__`` holds its failure."""

    def __init__(
        self,
        message: str,
        *,
        namespace: str,
        workflow_id: str,
        run_id: str,
        workflow_type: str,
        initiated_event_id: int,
        started_event_id: int,
        retry_state: RetryState | None,
    ) -> None:
        super().__init__(message)
        self.namespace = namespace
        self.workflow_id = workflow_id
        self.run_id = run_id
        self.workflow_type = workflow_type
        self.initiated_event_id = initiated_event_id
        self.started_event_id = started_event_id
        self.retry_state = retry_state


class CancelledError(FailureError):
    """Work was cancelled."""

    def __init__(self, message: str = "Cancelled", *details: Any) -> None:
        super().__init__(message)
        self.details = details


class TerminatedError(FailureError):
    """The workflow run was terminated."""

    def __init__(self, message: str, *details: Any) -> None:
        super().__init__(message)
        self.details = details


class TimeoutError(FailureError):  # noqa: A001 - mirrors temporalio.exceptions.TimeoutError
    """A timeout fired."""

    def __init__(
        self,
        message: str,
        *,
        type: TimeoutType | None,
        last_heartbeat_details: Sequence[Any] = (),
    ) -> None:
        super().__init__(message)
        self.type = type
        self.last_heartbeat_details = last_heartbeat_details


class ServerError(FailureError):
    """The engine refused a request."""

    def __init__(self, message: str, *, non_retryable: bool = False) -> None:
        super().__init__(message)
        self.non_retryable = non_retryable


class WorkflowFailureError(EngineError):
    """Raised by ``handle.result()`` when the run failed, timed out, was cancelled or terminated.

    Its text is temporalio's, ``Workflow execution failed``; *why* is in ``cause`` (and the
    chain below it). To show it, use :func:`describe_failure`, which prints the whole chain."""

    def __init__(self, *, cause: BaseException) -> None:
        super().__init__("Workflow execution failed")
        self.__cause__ = cause

    @property
    def cause(self) -> BaseException:
        assert self.__cause__ is not None
        return self.__cause__


class WorkflowAlreadyStartedError(EngineError):
    """A run with this workflow id is still open."""

    def __init__(
        self,
        workflow_id: str,
        workflow_type: str,
        *,
        run_id: str | None = None,
        first_run_id: str | None = None,
    ) -> None:
        super().__init__(
            f"Workflow execution already started: workflow id {workflow_id!r} (type {workflow_type}) "
            f"has an open run {run_id}. Use another id, or wait for that run to close."
        )
        self.workflow_id = workflow_id
        self.workflow_type = workflow_type
        self.run_id = run_id
        self.first_run_id = first_run_id


class WorkflowNotFoundError(EngineError):
    """No workflow run matches the given id."""


class NondeterminismError(EngineError):
    """Workflow code, replayed, made a different decision than the one recorded in history."""

    def __init__(
        self,
        message: str,
        *,
        workflow_id: str = "",
        event_id: int | None = None,
        recorded: str | None = None,
        produced: str | None = None,
        code_line: str | None = None,
    ) -> None:
        super().__init__(message)
        self.workflow_id = workflow_id
        self.event_id = event_id
        self.recorded = recorded
        self.produced = produced
        self.code_line = code_line


class RestrictedWorkflowAccessError(NondeterminismError):
    """Sandboxed workflow code called something whose result differs on replay (the clock,
    ``random``, files, the network, processes). It fails the workflow *task*, as a bug does:
    fix the code and the run goes on. ``qualified_name`` names what was called."""

    def __init__(self, message: str, *, qualified_name: str = "", code_line: str | None = None) -> None:
        super().__init__(message, code_line=code_line)
        self.qualified_name = qualified_name


class DefinitionError(EngineError, TypeError):
    """A workflow or activity definition is malformed (all problems are listed at once)."""


class NotRegisteredError(EngineError):
    """A worker was asked to run a workflow or activity type it has not been given."""


class PayloadError(EngineError, TypeError):
    """A value cannot be converted to a payload, or a payload back to a value."""


class HistoryFormatError(EngineError, ValueError):
    """A history (JSON) is malformed."""


class ListFilterError(EngineError, ValueError):
    """A list filter such as ``WorkflowType='Hello' AND ExecutionStatus='Running'`` cannot be
    read; the message names the token and its column."""


class StoreError(EngineError):
    """The database cannot be used."""


class StoreCorruptError(StoreError):
    """The file is not a durable-lab database, or it is damaged."""


class StoreReadOnlyError(StoreError):
    """A write (a start, a signal, a worker's claim) to a database this user cannot write: the
    file or its folder is read-only. Reads (list, show, describe, history, result) still work."""


class StoreLockedError(StoreError):
    """Another program (a DB browser, the sqlite3 shell, a stuck process) held the database's
    write lock for longer than the store waits for it (10 s). Nothing was written: trying
    again once the lock is free is safe."""


class WorkflowUpdateFailedError(EngineError):
    """Raised to the caller of an update that was rejected by its validator or whose handler
    failed; ``cause`` holds the reason (an ``ApplicationError`` for a validator's refusal).

    Its text is temporalio's, ``Workflow update failed``: :func:`describe_failure` shows why."""

    def __init__(self, *, cause: BaseException) -> None:
        super().__init__("Workflow update failed")
        self.__cause__ = cause

    @property
    def cause(self) -> BaseException:
        assert self.__cause__ is not None
        return self.__cause__


class WorkflowQueryFailedError(_MessageAndCause):
    """A query could not be answered: the workflow has no handler of that name, its handler
    raised (then ``cause`` is that exception when it ran in this process), or no worker
    answered in time. The message says which, as temporalio's does."""


def describe_failure(error: BaseException) -> str:
    """One line with an error and every cause below it, as Temporal's CLI prints a failure:
    ``Workflow execution failed: ActivityError: Activity task failed: ApplicationError
    (AccountClosed): no such account``.

    ``str()`` of ``WorkflowFailureError`` and ``WorkflowUpdateFailedError`` says only that
    something failed (as temporalio's does); this is what a person needs to read."""
    parts = [str(error)]
    seen = {id(error)}
    cause = error.__cause__
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        kind = getattr(cause, "type", None)
        name = type(cause).__name__
        label = f"{name} ({kind})" if isinstance(kind, str) and kind and kind != name else name
        text = cause.message if isinstance(cause, FailureError) else str(cause)
        parts.append(f"{label}: {text}" if text else label)
        cause = cause.__cause__
    return ": ".join(parts)
