"""Crash exploration: run a workflow once per crash point and check that it recovers.

A clean run first lists the state changes the workers submit (each workflow task and each
activity outcome). Then, for each change and each phase (just before its commit: the work is
done but its report is lost; just after: recorded, but the worker never hears), a fresh
engine runs the workflow with a worker that crashes exactly there, a new worker takes over,
and the run is checked: it completes with the clean run's result, no activity whose
completion was recorded runs again, every signal is in the history once, event ids are
contiguous, and the caller's own ``check`` holds (for effects the engine cannot see, such as
a bank balance written by a non-idempotent activity).
"""

from __future__ import annotations

import asyncio
import itertools
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from engine.history import History
from engine.worker._injected_faults import CRASH_PHASES, ChangePoint


@dataclass
class RunOutcome:
    """One run of the workflow (with or without a crash), as ``check`` sees it."""

    result: Any
    error: BaseException | None
    history: History | None
    executions: list[str]  # activity type of each execution, in order
    reexecuted: list[str]  # activity types whose scheduled activity ran more than once
    crash: str | None  # where the worker crashed, or None


@dataclass
class CrashPointResult:
    """What happened when the worker crashed at one point."""

    index: int
    phase: str
    description: str
    reached: bool
    violations: list[str] = field(default_factory=list)
    outcome: RunOutcome | None = None

    @property
    def ok(self) -> bool:
        return not self.violations

    @property
    def history(self) -> History | None:
        """The history of this run: replay or view it to reproduce a violation."""
        return self.outcome.history if self.outcome else None

    def status(self) -> str:
        if not self.reached:
            return "not reached"
        return "ok" if self.ok else "VIOLATION"


@dataclass
class Exploration:
    """Every crash point of a workflow and what recovery from it gave."""

    workflow_type: str
    baseline: RunOutcome
    points: list[CrashPointResult]

    @property
    def ok(self) -> bool:
        return all(p.ok for p in self.points)

    @property
    def violations(self) -> list[CrashPointResult]:
        return [p for p in self.points if not p.ok]

    def table(self) -> str:
        rows = [("#", "crash", "state change", "outcome", "re-executed")]
        for p in self.points:
            again = ", ".join(p.outcome.reexecuted) if p.outcome and p.outcome.reexecuted else ""
            status = p.status() + (": " + "; ".join(p.violations) if p.violations else "")
            rows.append((str(p.index), p.phase.replace("_", " "), p.description, status, again))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = ["  ".join(r[i].ljust(widths[i]) for i in range(4)) + "  " + r[4] for r in rows]
        lines.insert(1, "-" * len(lines[0]))
        bad = len(self.violations)
        lines.append(f"{len(self.points)} crash points, {bad} violation(s) ({self.workflow_type})")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


class _Recorder:
    """The crash hook of one run: counts state changes, crashes at the chosen ones, and
    watches activity executions against recorded completions."""

    def __init__(self, crash_at: frozenset[tuple[int, str]]) -> None:
        self.crash_at = crash_at
        self.changes: list[ChangePoint] = []
        self.crashed = asyncio.Event()  # renewed for each worker
        self.crashes: list[str] = []
        self.executions: list[tuple[str, str]] = []  # (activity key, type)
        self.completed: set[str] = set()
        self.violations: list[str] = []

    def hook(self, point: ChangePoint, phase: str) -> bool:
        if phase == "start":
            if point.activity_key in self.completed:
                self.violations.append(
                    f"activity {point.events[0][1]!r} ({point.activity_key}) ran again after its completion was recorded"
                )
            self.executions.append((point.activity_key, point.events[0][1]))
            return False
        if phase == "before_commit":
            self.changes.append(point)
        index = len(self.changes)
        crash = (index, phase) in self.crash_at and not self.crashed.is_set()
        if phase == "after_commit" and point.label == "activity_completed":
            self.completed.add(point.activity_key)
        if crash:
            self.crashes.append(f"{phase.replace('_', ' ')} of change {index}: {point.describe()}")
            self.crashed.set()
        return crash

    def outcome(self, result: Any, error: BaseException | None, history: History | None) -> RunOutcome:
        counts: dict[str, int] = {}
        for key, _ in self.executions:
            counts[key] = counts.get(key, 0) + 1
        names = dict(self.executions)
        again = sorted({names[k] for k, n in counts.items() if n > 1})
        return RunOutcome(result, error, history, [t for _, t in self.executions], again, "; ".join(self.crashes) or None)


async def explore(
    workflow: Any,
    *args: Any,
    workflows: Sequence[type] = (),
    activities: Sequence[Callable[..., Any]] = (),
    id: str = "explored",
    task_queue: str = "explore",
    setup: Callable[[], Any] | None = None,
    check: Callable[[RunOutcome], str | None] | None = None,
    signals: Sequence[tuple[str, Sequence[Any]]] = (),
    phases: Sequence[str] = CRASH_PHASES,
    run_timeout: float = 30.0,
) -> Exploration:
    """Crash the worker at every state change of a run of ``workflow(*args)``; check recovery.

    ``setup()`` runs before each run (reset the side effects your activities write);
    ``check(outcome)`` returns a violation text or None, or fails an ``assert`` (its
    message is the violation); ``signals`` are sent right after
    the start. Each run uses a fresh in-memory, time-skipping engine.
    """
    from engine._sandbox.translation import workflow_definition

    for phase in phases:
        if phase not in CRASH_PHASES:
            raise ValueError(f"phases may hold {', '.join(CRASH_PHASES)} (got {phase!r}).")
    defn = workflow_definition(workflow)
    all_workflows = [defn.cls, *[w for w in workflows if w is not defn.cls]]

    async def one(crash_at: tuple[int, str] | None) -> tuple[_Recorder, RunOutcome, bool]:
        return await run_with_crashes(all_workflows, activities, defn.name, args, id, task_queue, setup, signals, crash_at, run_timeout)

    baseline_rec, baseline, finished = await one(None)
    if not finished or baseline.error is not None and not _is_workflow_failure(baseline.error):
        raise ValueError(
            f"The workflow does not complete even without crashes ({baseline.error!r}); exploration compares "
            "every crashed run with a crash-free one, so fix the workflow (or its inputs) first."
        )
    points: list[CrashPointResult] = []
    for index, phase in itertools.product(range(1, len(baseline_rec.changes) + 1), phases):
        description = baseline_rec.changes[index - 1].describe()
        rec, outcome, finished = await one((index, phase))
        point = CrashPointResult(index, phase, description, reached=bool(rec.crashes), outcome=outcome)
        point.violations = _violations(baseline, outcome, rec, finished, len(signals), check, run_timeout)
        points.append(point)
    points.sort(key=lambda p: (p.index, CRASH_PHASES.index(p.phase)))
    return Exploration(defn.name, baseline, points)


def _is_workflow_failure(error: BaseException) -> bool:
    from engine.errors import WorkflowFailureError

    return isinstance(error, WorkflowFailureError)


def _shown(outcome: RunOutcome) -> str:
    # A failure's own text is only "Workflow execution failed" (as temporalio's): show its causes.
    from engine.errors import describe_failure

    error = outcome.error
    return f"{type(error).__name__}({describe_failure(error)!r})" if error is not None else repr(outcome.result)


def _same(a: RunOutcome, b: RunOutcome) -> bool:
    if (a.error is None) != (b.error is None):
        return False
    if a.error is not None and b.error is not None:
        return type(a.error.__cause__) is type(b.error.__cause__) and str(a.error.__cause__) == str(b.error.__cause__)
    return bool(a.result == b.result)


def _violations(
    baseline: RunOutcome,
    outcome: RunOutcome,
    rec: _Recorder,
    finished: bool,
    signals: int,
    check: Callable[[RunOutcome], str | None] | None,
    timeout: float,
) -> list[str]:
    found = list(rec.violations)
    if not finished:
        found.append(f"the run did not complete within {timeout:g} s after the crash (stuck)")
        return found
    if not _same(baseline, outcome):
        found.append(f"result {_shown(outcome)} differs from the crash-free run's {_shown(baseline)}")
    history = outcome.history
    if history is not None:
        ids = [e.event_id for e in history.events]
        if ids != list(range(1, len(ids) + 1)):
            found.append("event ids are not contiguous")
        got_signals = sum(1 for e in history.events if e.event_type == "WorkflowExecutionSignaled")
        if got_signals != signals:
            found.append(f"{got_signals} signal event(s) in history, {signals} sent")
    if check is not None:
        problem = _run_check(check, outcome)
        if problem:
            found.append(problem)
    return found


def _run_check(check: Callable[[RunOutcome], str | None], outcome: RunOutcome) -> str | None:
    """The check's verdict: the text it returns, or the message of an ``assert`` it fails
    (the statement itself when the assert has no message)."""
    try:
        return check(outcome)
    except AssertionError as e:
        message = str(e).strip().split("\n")[0]  # one line: it is a row of the report's table
        if not message:
            frames = traceback.extract_tb(e.__traceback__)
            message = (frames[-1].line or "") if frames else ""
        return f"check failed: {message or 'an assert without a message'}"


async def run_with_crashes(
    workflows: list[type],
    activities: Sequence[Callable[..., Any]],
    workflow_type: str,
    args: Sequence[Any],
    workflow_id: str,
    task_queue: str,
    setup: Callable[[], Any] | None,
    signals: Sequence[tuple[str, Sequence[Any]]],
    crash_at: tuple[int, str] | frozenset[tuple[int, str]] | None,
    run_timeout: float,
) -> tuple[_Recorder, RunOutcome, bool]:
    """Run the workflow on a fresh engine; its workers crash at the ``(change index, phase)``
    points given, each crash followed by a new worker (as a restarted process)."""
    from engine.errors import WorkflowFailureError
    from engine.testing import WorkflowEnvironment
    from engine.worker import Worker

    if setup is not None:
        setup()
    points = frozenset() if crash_at is None else frozenset([crash_at]) if isinstance(crash_at, tuple) else crash_at
    recorder = _Recorder(points)
    env = await WorkflowEnvironment.start_time_skipping()
    result: Any = None
    error: BaseException | None = None
    finished = False
    history: History | None = None
    try:
        handle = await env.client.start_workflow(workflow_type, args=list(args), id=workflow_id, task_queue=task_queue)
        for name, signal_args in signals:
            await handle.signal(name, args=list(signal_args))
        for _ in range(len(points) + 1):
            recorder.crashed = asyncio.Event()
            worker = Worker(env.client, task_queue=task_queue, workflows=workflows, activities=activities, max_cached_workflows=100)
            worker._crash_hook = recorder.hook
            async with worker:
                waiting = asyncio.ensure_future(handle.result())
                crashed = asyncio.ensure_future(recorder.crashed.wait())
                await asyncio.wait([waiting, crashed], return_when=asyncio.FIRST_COMPLETED, timeout=run_timeout)
                crashed.cancel()
                if waiting.done():
                    try:
                        result, finished = waiting.result(), True
                    except WorkflowFailureError as e:
                        error, finished = e, True
                    break
                waiting.cancel()
                await asyncio.gather(waiting, crashed, return_exceptions=True)
                if not recorder.crashed.is_set():
                    break  # neither done nor crashed: stuck
        history = await env.client.get_workflow_handle(workflow_id).fetch_history()
    finally:
        await env.shutdown()
    return recorder, recorder.outcome(result, error, history), finished
