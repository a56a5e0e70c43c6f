"""What a worker logs when work fails, as temporalio's worker does.

A workflow task that keeps failing (a bug, a nondeterministic change) is retried with backoff
for as long as it takes someone to fix the code; an activity whose attempts fail is retried by
its retry policy. Without a log line either one looks like a run that hangs in silence.

temporalio logs a WARNING with the error on each failed workflow activation (logger
``temporalio.worker._workflow_instance``, extra ``__temporal_error_identifier`` =
``"WorkflowTaskFailure"``) and on each failed activity attempt (``"ActivityFailure"``). The
engine does the same under ``engine.worker._workflow_instance`` and ``engine.worker._activity``
(children of ``engine.worker``, so one handler there gets all of a worker's records), except
that a workflow task failing the same way again is reported at most once a minute (a count of
the repeats goes with the next report): the failure repeats until the code changes.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from typing import Any, Callable, Mapping

log = logging.getLogger("engine.worker")
workflow_log = logging.getLogger("engine.worker._workflow_instance")
activity_log = logging.getLogger("engine.worker._activity")

WORKFLOW_TASK_FAILURE = "WorkflowTaskFailure"
ACTIVITY_FAILURE = "ActivityFailure"
_IDENTIFIER = "__temporal_error_identifier"
_RUNS_REMEMBERED = 1000


class WorkflowTaskFailures:
    """Reports failed workflow tasks: each run's first failure and every change of failure
    at once, identical repeats at most once per ``repeat_interval`` seconds."""

    def __init__(self, repeat_interval: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.repeat_interval = repeat_interval
        self._clock = clock
        # run id -> (the failure's signature, when it was last reported, repeats not reported)
        self._last: collections.OrderedDict[str, tuple[str, float, int]] = collections.OrderedDict()

    def failed(self, details: Mapping[str, Any], error: BaseException, cause: str) -> None:
        run_id = str(details.get("run_id", ""))
        signature = f"{cause}|{type(error).__qualname__}|{error}"
        now = self._clock()
        last = self._last.pop(run_id, None)
        if last is not None and last[0] == signature and now - last[1] < self.repeat_interval:
            self._last[run_id] = (signature, last[1], last[2] + 1)
            workflow_log.debug("Workflow task failed again (%s)", dict(details), exc_info=error)
            return
        self._last[run_id] = (signature, now, 0)
        while len(self._last) > _RUNS_REMEMBERED:
            self._last.popitem(last=False)
        repeats = f"; {last[2]} more identical failures since the last report" if last is not None and last[2] else ""
        reason = "nondeterminism: the code no longer matches the history" if "NON_DETERMINISTIC" in cause else "workflow code raised"
        workflow_log.warning(
            "Failed workflow task on workflow %s with ID %s and run ID %s (attempt %s, %s%s); it is retried "
            "with backoff until the code is fixed and the worker restarted",
            details.get("workflow_type"), details.get("workflow_id"), run_id, details.get("attempt"), reason, repeats,
            exc_info=error,
            extra={"temporal_workflow": dict(details), _IDENTIFIER: WORKFLOW_TASK_FAILURE},
        )

    def completed(self, run_id: str) -> None:
        """The run's workflow task succeeded: its next failure is news again."""
        self._last.pop(run_id, None)


def activity_failed(details: Mapping[str, Any], error: BaseException) -> None:
    """One activity attempt failed (it is retried if its retry policy allows)."""
    activity_log.warning(
        "Completing activity as failed (%s)",
        dict(details),
        exc_info=error,
        extra={"temporal_activity": dict(details), _IDENTIFIER: ACTIVITY_FAILURE},
    )


def _report_failed_job(job: asyncio.Future, what: str) -> None:
    # Retrieved here, so that asyncio never logs "Task exception was never retrieved".
    if not job.cancelled() and job.exception() is not None:
        log.error("%s failed; its task is retried after its timeout", what, exc_info=job.exception())
