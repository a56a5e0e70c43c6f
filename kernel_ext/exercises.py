"""Exercises that check themselves: what a teacher writes, and what ``%check`` shows.

A check looks at what really happened, never at the text of the learner's code: it starts a
run of the learner's workflow, waits for it (with a time limit), and reads its history, its
result, its activity attempts, how it replays, how it survives ``%explore``. It answers with a
:class:`Verdict`: what is right, what is not yet, and a hint that points at the concept.

A teacher writes one function per exercise, in a module the notebook imports::

    from kernel_ext.exercises import Check, exercise

    @exercise("Greet everyone", hint="Each step that talks to the world is an activity: "
              "`await workflow.execute_activity(...)` once per person, in a loop.")
    async def greet_everyone(c: Check) -> None:
        run = await c.run("GreetEveryone", [{"name": "Ada"}, {"name": "Alan"}], task_queue="hello")
        c.expect(run.result == ["Hello, Ada!", "Hello, Alan!"],
                 "it returns one greeting per person, in order",
                 f"it returned {run.result!r}")
        c.expect(run.count("ActivityTaskScheduled") == 2,
                 "one activity per person (2 ActivityTaskScheduled events)",
                 f"the history has {run.count('ActivityTaskScheduled')} ActivityTaskScheduled events, not 2",
                 hint="Call the activity inside the loop, not once for everyone.")

and the learner's check cell is ``%check greet_everyone`` (after
``from notebooks.checks.hello import greet_everyone``), or ``await greet_everyone.check()``.

What a check never does: show a traceback or give advice that does not fit. ``c.run`` turns
every way a learner's run can go wrong into a "not yet" that says what happened (a workflow
task that failed, with the learner's line; a run that failed; a run that did not finish in
time, which the check then terminates). Any other exception in a check (a learner's workflow
type that does not exist yet, an attribute that is missing) also ends as a "not yet", with
the exercise's own hint. ``c.require`` stops the check at its first unmet condition, when the
rest would make no sense; ``c.expect`` notes it and goes on.
"""

from __future__ import annotations

import asyncio
import html
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Mapping, Sequence

from engine.client import ActivityAttempt, Client
from engine.errors import EngineError, describe_failure
from engine.history import History, HistoryEvent

__all__ = ["Check", "CheckedRun", "Exercise", "NotYet", "Verdict", "exercise", "exercises_in", "current_session", "judge"]

RUN_TIMEOUT = 10.0  # seconds a check waits for a learner's run before it calls it unfinished


@dataclass(frozen=True)
class Finding:
    """One thing a check looked at: right (``ok``) or not yet, with an optional hint."""

    ok: bool
    text: str
    hint: str | None = None


@dataclass(frozen=True)
class Verdict:
    """What ``%check`` shows: ``passed`` when nothing is "not yet"."""

    title: str
    findings: tuple[Finding, ...]
    hint: str  # the exercise's hint, shown when a finding has none of its own

    @property
    def passed(self) -> bool:
        return bool(self.findings) and all(f.ok for f in self.findings)

    @property
    def right(self) -> list[str]:
        return [f.text for f in self.findings if f.ok]

    @property
    def not_yet(self) -> list[str]:
        return [f.text for f in self.findings if not f.ok]

    @property
    def shown_hint(self) -> str | None:
        """The hint of the first unmet finding (else the exercise's); none when passed."""
        if self.passed:
            return None
        return next((f.hint for f in self.findings if not f.ok and f.hint), self.hint)

    def text(self) -> str:
        head = f"Well done: {self.title}" if self.passed else f"Not yet: {self.title}"
        lines = [head] + [f"  {'✓' if f.ok else '✗'} {f.text}" for f in self.findings]
        if self.shown_hint:
            lines.append(f"Hint: {self.shown_hint}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.text()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.text())

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None, **_: Any) -> dict[str, Any]:
        colour, head = ("#1b5e20", "Well done") if self.passed else ("#8a4b00", "Not yet")
        items = "".join(
            f'<li style="list-style:none">{"✓" if f.ok else "✗"} {html.escape(f.text)}</li>' for f in self.findings
        )
        hint = self.shown_hint
        hint_html = f"<div><b>Hint:</b> {html.escape(hint)}</div>" if hint else ""
        body = (
            f'<div class="dlab-verdict" style="border-left:4px solid {colour};padding:4px 10px">'
            f'<div style="color:{colour}"><b>{head}</b>: {html.escape(self.title)}</div>'
            f'<ul style="margin:4px 0;padding-left:4px">{items}</ul>{hint_html}</div>'
        )
        return {"text/plain": self.text(), "text/html": body}


class NotYet(Exception):
    """Raised in a check (or by :meth:`Check.require`) to stop it with one "not yet"."""

    def __init__(self, text: str, hint: str | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.hint = hint


@dataclass
class CheckedRun:
    """One run a check started and waited for: how it ended and what its history holds."""

    workflow_id: str
    status: str  # COMPLETED, FAILED, TIMED_OUT, CANCELED, TERMINATED, TASK_FAILED, UNFINISHED
    result: Any = None
    error: BaseException | None = None
    problem: str | None = None  # for a learner: why the run has no result
    history: History | None = None
    attempts: list[ActivityAttempt] = field(default_factory=list)
    handle: Any = None

    @property
    def completed(self) -> bool:
        return self.status == "COMPLETED"

    def events(self, event_type: str | None = None) -> list[HistoryEvent]:
        events = list(self.history.events) if self.history is not None else []
        return [e for e in events if event_type is None or e.event_type == event_type]

    def count(self, event_type: str) -> int:
        return len(self.events(event_type))

    def event_types(self) -> list[str]:
        return [e.event_type for e in self.events()]

    def attempts_of(self, activity_type: str) -> list[ActivityAttempt]:
        """Every attempt of the activities of that type (the side table keeps each try)."""
        ids = {e.event_id for e in self.events("ActivityTaskScheduled") if _activity_type(e) == activity_type}
        return [a for a in self.attempts if a.scheduled_event_id in ids]

    def activity_inputs(self, activity_type: str) -> list[list[Any]]:
        """The arguments each activity of that type was scheduled with, as the history holds them."""
        from engine.history import decode_payloads

        return [
            decode_payloads(e.attributes.get("input"))
            for e in self.events("ActivityTaskScheduled")
            if _activity_type(e) == activity_type
        ]

    def activity_types(self) -> list[str]:
        """The activity type of each ActivityTaskScheduled event, in order."""
        return [_activity_type(e) for e in self.events("ActivityTaskScheduled")]


def _activity_type(event: HistoryEvent) -> str:
    return str((event.attributes.get("activityType") or {}).get("name", ""))


class Check:
    """What a check function gets: the kernel's engine, and a way to record findings."""

    def __init__(self, session: Any, title: str) -> None:
        self.session = session
        self.title = title
        self.findings: list[Finding] = []

    # ------------------------------------------------------------ findings
    def expect(self, condition: bool, right: str, not_yet: str, hint: str | None = None) -> bool:
        """Note ``right`` if ``condition`` holds, else ``not_yet`` (with ``hint``); go on.
        An empty ``right`` notes nothing when the condition holds (a precondition)."""
        if condition and not right:
            return True
        self.findings.append(Finding(bool(condition), right if condition else not_yet, None if condition else hint))
        return bool(condition)

    def require(self, condition: bool, right: str, not_yet: str, hint: str | None = None) -> None:
        """As :meth:`expect`, but stop the check here when ``condition`` does not hold."""
        if not self.expect(condition, right, not_yet, hint):
            raise _Stop()

    def ok(self, text: str) -> None:
        self.findings.append(Finding(True, text))

    # ------------------------------------------------------------ runs
    @property
    def client(self) -> Client:
        client = self.session.client
        if client is None:
            raise NotYet("the engine is not open yet: run the notebook's first cells (%reload_ext kernel_ext).")
        return client

    @property
    def namespace(self) -> Mapping[str, Any]:
        """The notebook's variables (a check may use the lesson's helpers, e.g. its bank)."""
        from IPython import get_ipython  # type: ignore[attr-defined]

        shell = get_ipython()
        return shell.user_ns if shell is not None else {}

    async def explore(
        self,
        workflow_type: str,
        *args: Any,
        setup: Callable[[], Any] | None = None,
        check: Callable[[Any], str | None] | None = None,
    ) -> Any:
        """``%explore`` from a check: crash a run of the learner's workflow at every state
        change (each in its own engine in memory) and return the report."""
        from engine import faults

        workflow = self.defined("workflow", workflow_type)
        others = [w for name, w in self.session.workflows.items() if name != workflow_type]
        try:
            return await faults.explore(
                workflow, *args, workflows=others, activities=list(self.session.activities.values()),
                id=f"check-explore-{workflow_type}", setup=setup, check=check,
            )
        except ValueError as e:  # the workflow does not complete even without crashes
            raise NotYet(f"%explore could not start: {e}") from None

    def defined(self, kind: str, name: str) -> Any:
        """The learner's workflow class or activity called ``name``, or a "not yet"."""
        table = self.session.workflows if kind == "workflow" else self.session.activities
        if name not in table:
            cell = "%%workflow" if kind == "workflow" else "%%activity"
            raise NotYet(f"no {kind} named {name} is defined yet: run its {cell} cell.")
        return table[name]

    async def run(
        self,
        workflow_type: str,
        *args: Any,
        task_queue: str,
        workflow_id: str | None = None,
        timeout: float = RUN_TIMEOUT,
        before_wait: Callable[[Any], Awaitable[None]] | None = None,
        replay_every_task: bool = False,
        **start_options: Any,
    ) -> CheckedRun:
        """Start a run of the learner's ``workflow_type`` and wait for it to close.

        Never raises for what a learner's code does: the run's outcome is in the returned
        :class:`CheckedRun` (``status``, ``problem``). A run that does not close within
        ``timeout`` seconds (its workflow task failing, or waiting for something that never
        comes) is terminated, so that nothing keeps running after the check.
        ``before_wait(handle)`` runs right after the start (send signals or updates there).

        ``replay_every_task=True`` runs it on the check's own worker (on a task queue of its
        own) that keeps nothing in memory between workflow tasks: each task replays the
        history from event 1, as after a crash, so code that is not deterministic shows."""
        self.defined("workflow", workflow_type)
        workflow_id = workflow_id or f"check-{workflow_type}"
        if not replay_every_task:
            self._require_worker(task_queue)
            return await self._start_and_wait(workflow_type, args, task_queue, workflow_id, timeout, before_wait, start_options)
        from engine.worker import Worker

        queue = f"check-replaying-{workflow_type}"
        worker = Worker(
            self.client, task_queue=queue, workflows=list(self.session.workflows.values()),
            activities=list(self.session.activities.values()), max_cached_workflows=0, identity="exercise-check",
        )
        async with worker:
            return await self._start_and_wait(workflow_type, args, queue, workflow_id, timeout, before_wait, start_options)

    async def _start_and_wait(
        self, workflow_type: str, args: Sequence[Any], task_queue: str, workflow_id: str, timeout: float,
        before_wait: Callable[[Any], Awaitable[None]] | None, start_options: Mapping[str, Any],
    ) -> CheckedRun:
        await self._close_earlier(workflow_id)
        handle = await self.session.start_workflow(
            workflow_type, task_queue=task_queue, workflow_id=workflow_id, args=list(args), **start_options
        )
        if before_wait is not None:
            try:
                await asyncio.wait_for(before_wait(handle), timeout)
            except (asyncio.TimeoutError, EngineError) as e:
                # The check's own requests (signals, updates) got no answer, or were refused.
                from kernel_ext import _waiting

                _, recorded, transient = await self.client.store.read(_waiting._task_failures, handle.run_id)
                await _quietly(handle.terminate(reason="ended by the exercise check"))
                what = f"got no answer within {timeout:g} s" if isinstance(e, asyncio.TimeoutError) else f"failed: {describe_failure(e)}"
                run = CheckedRun(workflow_id, "UNFINISHED", handle=handle, problem=f"the check's requests to the run {what}")
                failure = transient or recorded
                if failure:  # a handler raised: say what, not only that nothing answered
                    message = str(failure.get("message", "")).split(" Deliberate and")[0]
                    run.status = "TASK_FAILED"
                    run.problem = f"its workflow task failed while handling the check's requests: {message}"
                run.history = await handle.fetch_history()
                return run
        return await self._wait(handle, timeout, terminate=True)

    async def existing(self, workflow_id: str, *, timeout: float = RUN_TIMEOUT) -> CheckedRun:
        """Wait for a run that the learner (or the lesson) started, as :meth:`run` does, but
        leave it running if it does not close in time."""
        from kernel_ext._session import RunHandle

        try:
            description = await self.client.get_workflow_handle(workflow_id).describe()
        except Exception:
            raise NotYet(f"there is no run with workflow id {workflow_id!r} yet: run the cells above this one.") from None
        engine_handle = self.client.get_workflow_handle(workflow_id, run_id=description.run_id)
        handle = RunHandle(engine_handle, description.workflow_type, description.task_queue)
        return await self._wait(handle, timeout, terminate=False)

    async def _wait(self, handle: Any, timeout: float, *, terminate: bool) -> CheckedRun:
        from kernel_ext import _waiting

        run = CheckedRun(handle.workflow_id, "UNFINISHED", handle=handle)
        try:
            run.result = await asyncio.wait_for(_waiting.wait_for_result(self.client, handle), timeout)
            run.status = "COMPLETED"
        except _waiting.TaskFailedError as e:
            run.status, run.error = "TASK_FAILED", e
            lines = e.lines()
            # The engine's own advice for deliberate calls (an escape hatch) is not the exercise's.
            message = lines[1].strip().split(" Deliberate and harmless here?")[0]
            run.problem = "its workflow task failed (the workflow code raised): " + message
            where = [line.strip() for line in lines if line.strip().startswith(("Cell In", "File"))]
            if where and "Cell In[" not in message:
                run.problem += f" (at {where[-1]})"
        except asyncio.TimeoutError:
            run.problem = f"the run did not finish within {timeout:g} s" + (" (the check terminated it)" if terminate else "")
        except EngineError as e:  # the run failed, timed out, was cancelled or terminated
            run.error = e
            run.status = _closed_status(e)
            run.problem = f"the run ended {run.status}: {_cause_text(e)}"
        if terminate and run.status in ("UNFINISHED", "TASK_FAILED"):
            await _quietly(handle.terminate(reason="ended by the exercise check"))
        run.history = await handle.fetch_history()
        run.attempts = list(await handle.activity_attempts())
        return run

    async def chain(self, run: CheckedRun) -> list[History]:
        """The history of every run of ``run``'s continue-as-new chain, first to last (one
        history when the run did not continue as new)."""
        handle = self.client.get_workflow_handle(run.workflow_id, run_id=run.handle.run_id if run.handle else None)
        snapshot = await handle.snapshot()
        return [
            await self.client.get_workflow_handle(run.workflow_id, run_id=r.run_id).fetch_history() for r in snapshot.chain
        ]

    def polled_queues(self) -> set[str]:
        """The task queues that a running worker polls: this kernel's, its worker processes',
        and other programs' on the same database file."""
        queues = {w.task_queue for w in self.session.workers() if w.state == "running"}
        # Worker processes of this kernel are kept by the session (no public list of them yet).
        queues |= {p.task_queue for p in getattr(self.session, "_processes", {}).values() if p.state == "running"}
        queues |= {r.task_queue for r in self.session.foreign_workers()}
        return queues

    def require_completed(self, run: CheckedRun, right: str = "the run completed", hint: str | None = None) -> None:
        """Stop with the run's problem unless it completed."""
        self.require(run.completed, right, f"{run.workflow_id}: {run.problem}", hint)

    def _require_worker(self, task_queue: str) -> None:
        if task_queue not in self.polled_queues():
            raise NotYet(
                f"no worker of this kernel polls task queue {task_queue!r}, so the check's run would wait forever.",
                f"Start one: %worker start --task-queue {task_queue} (task queue names are case-sensitive).",
            )

    async def _close_earlier(self, workflow_id: str) -> None:
        # A check run again reuses its workflow id; an earlier run still open would block the start.
        try:
            await self.client.get_workflow_handle(workflow_id).terminate(reason="a new check run")
        except Exception:
            pass  # not found, or already closed: nothing to do


async def _quietly(awaitable: Awaitable[Any]) -> None:
    try:
        await awaitable
    except Exception:
        pass  # the run closed meanwhile: terminating it is no longer needed


def _closed_status(error: BaseException) -> str:
    for cause in _causes(error):
        name = type(cause).__name__
        for word, status in (("Terminated", "TERMINATED"), ("Cancel", "CANCELED"), ("Timeout", "TIMED_OUT")):
            if word in name:
                return status
    return "FAILED"


def _causes(error: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and len(chain) < 8:
        chain.append(current)
        current = getattr(current, "cause", None) or current.__cause__
    return chain


def _cause_text(error: BaseException) -> str:
    """The innermost cause, one line: what the learner's code raised."""
    innermost = _causes(error)[-1]
    return f"{type(innermost).__name__}: {innermost}".splitlines()[0]


class _Stop(Exception):
    """``Check.require`` unmet: end the check with what has been found so far."""


@dataclass(frozen=True)
class Exercise:
    """A check function with its title and hint; ``await ex.check()`` gives its verdict."""

    title: str
    hint: str
    function: Callable[[Check], Awaitable[None]]
    concept: str = ""

    @property
    def name(self) -> str:
        return self.function.__name__

    async def check(self, session: Any = None) -> Verdict:
        """Run the check against ``session`` (default: the kernel's); never raises."""
        c = Check(session if session is not None else current_session(), self.title)
        try:
            await self.function(c)
        except Exception as e:
            _note_end(c, e)
        return _verdict(c, self.hint)

    async def __call__(self, c: Check) -> None:
        await self.function(c)


def _note_end(c: Check, error: Exception) -> None:
    """How a check that stopped early ends: its own "not yet", or one that says it could not go on."""
    if isinstance(error, NotYet):
        c.findings.append(Finding(False, error.text, error.hint))
    elif not isinstance(error, _Stop):  # a learner's code can fail in ways no check foresaw
        text = f"{type(error).__name__}: {describe_failure(error)}".splitlines()[0]
        c.findings.append(Finding(False, f"the check could not go on: {text}"))


def _verdict(c: Check, hint: str) -> Verdict:
    if not c.findings:
        c.findings.append(Finding(False, "the check found nothing to look at"))
    return Verdict(c.title, tuple(c.findings), hint)


def judge(title: str, hint: str, function: Callable[[Check], None]) -> Verdict:
    """A check of plain values (a debugger's position, a list the learner made), run at once:
    ``function(c)`` records findings as an exercise does, but starts no run, so it needs no
    engine and no event loop. Never raises."""
    c = Check(None, title)
    try:
        function(c)
    except Exception as e:
        _note_end(c, e)
    return _verdict(c, hint)


def exercise(title: str, *, hint: str, concept: str = "") -> Callable[[Callable[[Check], Awaitable[None]]], Exercise]:
    """Make an async ``function(c: Check)`` an exercise: ``%check name`` runs it.

    ``hint`` points at the concept; it is shown when the check ends "not yet" without a more
    specific hint (in particular when the learner's code raised)."""

    def wrap(function: Callable[[Check], Awaitable[None]]) -> Exercise:
        if not asyncio.iscoroutinefunction(function):
            raise TypeError(f"exercise {title!r}: the check must be an async def taking a Check")
        return Exercise(title, hint, function, concept)

    return wrap


def current_session() -> Any:
    """The kernel's durable-lab session (``%load_ext kernel_ext`` opened it)."""
    from IPython import get_ipython  # type: ignore[attr-defined]

    shell = get_ipython()
    magics = shell.magics_manager.registry.get("DurableMagics") if shell is not None else None
    if magics is None:
        raise NotYet("the durable-lab extension is not loaded: run %load_ext kernel_ext first.")
    return magics.session


def exercises_in(namespace: Mapping[str, Any]) -> Sequence[str]:
    """The names of the exercises a namespace holds (for ``%check``'s error message)."""
    return sorted(name for name, value in namespace.items() if isinstance(value, Exercise))
