"""Fault injection (engine.faults): every fault kind, the fault log, and crash exploration."""

from __future__ import annotations

import asyncio
from typing import Any
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import Worker, activity, faults, workflow
from engine.faults import is_injected
from engine.common import RetryPolicy
from engine.errors import ActivityError, ApplicationError, WorkflowFailureError
from engine.testing import WorkflowEnvironment

RAN: Counter[str] = Counter()
LEDGER: list[tuple[str, int]] = []  # what the "bank" did, for the idempotency exercise


@dataclass
class Move:
    source: str
    target: str
    amount: int
    key: str = ""


@activity.defn
async def debit(m: Move) -> str:
    RAN["debit"] += 1
    LEDGER.append((m.source, -m.amount))
    return f"debited {m.amount} from {m.source}"


@activity.defn
async def credit(m: Move) -> str:
    RAN["credit"] += 1
    LEDGER.append((m.target, m.amount))
    return f"credited {m.amount} to {m.target}"


APPLIED: set[str] = set()


@activity.defn
async def debit_once(m: Move) -> str:
    # Idempotent: the bank remembers the key, so a retried call does nothing twice.
    RAN["debit"] += 1
    if f"debit:{m.key}" not in APPLIED:
        APPLIED.add(f"debit:{m.key}")
        LEDGER.append((m.source, -m.amount))
    return f"debited {m.amount} from {m.source}"


@activity.defn
async def credit_once(m: Move) -> str:
    RAN["credit"] += 1
    if f"credit:{m.key}" not in APPLIED:
        APPLIED.add(f"credit:{m.key}")
        LEDGER.append((m.target, m.amount))
    return f"credited {m.amount} to {m.target}"


RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=10)


@workflow.defn
class Pay:
    @workflow.run
    async def run(self, m: Move) -> list[str]:
        opts = dict(start_to_close_timeout=timedelta(seconds=30), retry_policy=RETRY)
        return [await workflow.execute_activity(debit, m, **opts), await workflow.execute_activity(credit, m, **opts)]


# Unsandboxed: a hypothesis test runs it, and the sandbox would re-run this test module (and its
# @given decorators) inside that test for every workflow run, which hypothesis refuses.
@workflow.defn(sandboxed=False)
class PayOnce:
    @workflow.run
    async def run(self, m: Move) -> list[str]:
        opts = dict(start_to_close_timeout=timedelta(seconds=30), retry_policy=RETRY)
        m.key = m.key or str(workflow.uuid4())  # one key per transfer, the same on replay
        return [await workflow.execute_activity(debit_once, m, **opts), await workflow.execute_activity(credit_once, m, **opts)]


def _outcomes(attempts, nth: int) -> list[str]:  # type: ignore[no-untyped-def]
    """Outcomes of the attempts of the nth scheduled activity (0 = debit, 1 = credit)."""
    scheduled = sorted({a.scheduled_event_id for a in attempts})
    return [a.outcome for a in attempts if a.scheduled_event_id == scheduled[nth]]


def _reset() -> None:
    RAN.clear()
    LEDGER.clear()
    APPLIED.clear()


MOVE = Move("alice", "bob", 50)


async def _env_and_worker(**kw):  # type: ignore[no-untyped-def]
    env = await WorkflowEnvironment.start_time_skipping()
    return env, Worker(env.client, task_queue="q", workflows=[Pay], activities=[debit, credit], **kw)


async def test_fail_activity_fails_the_next_attempts_and_is_logged() -> None:
    _reset()
    env, worker = await _env_and_worker()
    fault = await faults.fail_activity(env.client, credit, times=2)
    assert [f.id for f in await faults.list_faults(env.client)] == [fault.id]
    async with worker:
        handle = await env.client.start_workflow(Pay.run, MOVE, id="f1", task_queue="q")
        assert await handle.result() == ["debited 50 from alice", "credited 50 to bob"]
        attempts = await handle.activity_attempts()
        log = await faults.fault_log(env.client, run_id=handle.run_id)
    await env.shutdown()
    assert RAN["credit"] == 1  # the two injected attempts never ran the function
    assert _outcomes(attempts, 1) == ["failed", "failed", "completed"]
    assert [entry.kind for entry in log] == ["fail", "fail"] and all(e.workflow_id == "f1" for e in log)
    assert fault.describe() == "activity 'credit': fail with InjectedFault, 2 more attempt(s)"


async def test_a_non_retryable_injected_failure_fails_the_workflow_and_is_marked() -> None:
    _reset()
    env, worker = await _env_and_worker()
    await faults.fail_activity(env.client, "debit", error_type="BankDown", non_retryable=True)
    async with worker:
        handle = await env.client.start_workflow(Pay.run, MOVE, id="f2", task_queue="q")
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
        history = await handle.fetch_history()
    await env.shutdown()
    cause = info.value.cause
    assert isinstance(cause, ActivityError) and isinstance(cause.__cause__, ApplicationError)
    assert cause.cause is cause.__cause__ and cause.__cause__.type == "BankDown"  # temporalio's .cause
    failed = [e for e in history.events if e.event_type == "ActivityTaskFailed"][0]
    assert is_injected(failed.attributes["failure"])
    assert not is_injected({"message": "organic", "applicationFailureInfo": {"type": "ConnectionError"}})


async def test_hang_activity_times_out_and_is_retried() -> None:
    _reset()
    env, worker = await _env_and_worker()
    await faults.hang_activity(env.client, debit)
    async with worker:
        handle = await env.client.start_workflow(Pay.run, MOVE, id="f3", task_queue="q")
        assert (await handle.result())[0] == "debited 50 from alice"
        attempts = await handle.activity_attempts()
    await env.shutdown()
    assert _outcomes(attempts, 0) == ["timed out", "completed"]
    assert RAN["debit"] == 1


async def test_slow_activity_delays_the_attempt() -> None:
    _reset()
    env, worker = await _env_and_worker()
    await faults.slow_activity(env.client, debit, delay=0.2)
    async with worker:
        handle = await env.client.start_workflow(Pay.run, MOVE, id="f4", task_queue="q")
        await handle.result()
        debit_attempt = sorted(await handle.activity_attempts(), key=lambda a: a.scheduled_event_id)[0]
    await env.shutdown()
    assert (debit_attempt.ended_at - debit_attempt.started_at).total_seconds() >= 0.2


@pytest.mark.parametrize("when", ["after_commit", "before_commit"])
async def test_crash_worker_after_an_event_loses_its_work_and_a_new_worker_finishes(when: str) -> None:
    _reset()
    env, worker = await _env_and_worker()
    await faults.crash_worker(env.client, after="ActivityTaskCompleted", activity="debit", when=when)
    async with worker:
        handle = await env.client.start_workflow(Pay.run, MOVE, id=f"f5-{when}", task_queue="q")
        for _ in range(500):
            if worker.crashed:
                break
            await env.sleep(0.01)
    assert worker.crashed
    async with Worker(env.client, task_queue="q", workflows=[Pay], activities=[debit, credit]):
        assert await handle.result() == ["debited 50 from alice", "credited 50 to bob"]
    log = await faults.fault_log(env.client)
    await env.shutdown()
    assert [e.kind for e in log] == ["crash_worker"] and "ActivityTaskCompleted(debit)" in log[0].detail
    # After the commit the completion is recorded: debit never runs again. Before it, the
    # report was lost: the engine runs debit again (at least once, as Temporal).
    assert RAN["debit"] == (1 if when == "after_commit" else 2)


async def test_clear_faults_removes_them() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    one = await faults.fail_activity(env.client, debit)
    await faults.crash_worker(env.client, after="WorkflowTaskCompleted")
    assert await faults.clear_faults(env.client, one.id) == 1
    assert [f.kind for f in await faults.list_faults(env.client)] == ["crash_worker"]
    assert await faults.clear_faults(env.client) == 1
    assert await faults.list_faults(env.client) == []
    with pytest.raises(ValueError, match="when must be one of"):
        await faults.crash_worker(env.client, after="ActivityTaskCompleted", when="sometime")
    with pytest.raises(ValueError, match="A crash cannot follow 'activity completed': .* workers write only WorkflowTaskCompleted, "):
        await faults.crash_worker(env.client, after="activity completed")
    # Event types workers never write (a client writes the start) could never fire.
    for never in ("Bogus", "WorkflowExecutionStarted", "ActivityTaskTimedOut"):
        with pytest.raises(ValueError, match=f"A crash cannot follow '{never}'"):
            await faults.crash_worker(env.client, after=never)
    with pytest.raises(ValueError, match="Did you mean ActivityTaskCompleted"):
        await faults.crash_worker(env.client, after="ActivityTaskComplete")
    await env.shutdown()


def test_kill_process_kills_with_sigkill() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    faults.kill_process(proc.pid)
    assert proc.wait(timeout=10) == -9


def _balance_check(outcome: faults.RunOutcome) -> str | None:
    moved = sum(amount for account, amount in LEDGER if account == "alice")
    return None if moved == -50 else f"alice's balance moved by {moved}, not -50 (a double effect)"


async def test_exploration_passes_a_correct_workflow_at_every_crash_point() -> None:
    report = await faults.explore(Pay.run, MOVE, activities=[debit, credit], setup=_reset)
    assert report.ok, report.table()
    # Three workflow tasks and two activity completions, each crashed before and after commit.
    assert len(report.points) == 10 and all(p.reached for p in report.points)
    before = [p for p in report.points if p.phase == "before_commit" and "ActivityTaskCompleted(debit)" in p.description]
    assert before and before[0].outcome is not None and before[0].outcome.reexecuted == ["debit"]
    assert "0 violation(s)" in report.table()


async def test_exploration_finds_the_double_effect_of_a_non_idempotent_activity() -> None:
    report = await faults.explore(Pay.run, MOVE, activities=[debit, credit], setup=_reset, check=_balance_check)
    assert not report.ok
    bad = report.violations
    assert [(p.phase, p.description) for p in bad] == [("before_commit", "ActivityTaskStarted(debit) + ActivityTaskCompleted(debit)")]
    assert "double effect" in bad[0].violations[0]
    assert bad[0].history is not None and bad[0].history.events[-1].event_type == "WorkflowExecutionCompleted"
    assert "VIOLATION" in report.table()


async def test_an_idempotency_key_fixes_the_double_effect() -> None:
    report = await faults.explore(PayOnce.run, MOVE, activities=[debit_once, credit_once], setup=_reset, check=_balance_check)
    assert report.ok, report.table()


# Crash schedules: up to three crashes, each at some state change, before or after its commit.
_SCHEDULES = st.frozensets(st.tuples(st.integers(1, 9), st.sampled_from(["before_commit", "after_commit"])), max_size=3)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(schedule=_SCHEDULES)
def test_random_crash_schedules_never_lose_or_duplicate_completed_work(schedule: frozenset[tuple[int, str]]) -> None:
    from engine._testing.explore import run_with_crashes

    async def scenario() -> None:
        rec, outcome, finished = await run_with_crashes(
            [PayOnce], [debit_once, credit_once], "PayOnce", [MOVE], "prop", "q", _reset, (), schedule, 20.0
        )
        assert finished, f"stuck after crashes {rec.crashes}"
        assert outcome.result == ["debited 50 from alice", "credited 50 to bob"], outcome
        # No activity ran again once its completion was recorded (checked at every start)...
        assert rec.violations == [], rec.violations
        # ...and nothing was lost or done twice: the bank saw each effect exactly once.
        assert sorted(LEDGER) == [("alice", -50), ("bob", 50)], (LEDGER, rec.crashes)
        history = outcome.history
        assert history is not None
        assert [e.event_id for e in history.events] == list(range(1, len(history.events) + 1))
        assert [e.event_type for e in history.events].count("ActivityTaskCompleted") == 2

    asyncio.run(scenario())


async def test_exploring_a_workflow_that_never_completes_says_so() -> None:
    # No worker runs its activities, so even the crash-free run is stuck.
    with pytest.raises(ValueError, match="does not complete even without crashes"):
        await faults.explore(Pay.run, MOVE, activities=[], setup=_reset, run_timeout=0.5)


# --- exploring a saga, and checks written with assert -------------------------------------


@activity.defn
async def book(what: str) -> str:
    if what == "flight":
        raise ApplicationError("no seats left", type="SoldOut", non_retryable=True)
    return f"{what}-1"


@activity.defn
async def cancel(reservation: str) -> str:
    return f"cancelled {reservation}"


@workflow.defn
class Trip:
    @workflow.run
    async def run(self) -> list[str]:
        from engine.saga import Saga

        saga = Saga()
        opts = dict(start_to_close_timeout=timedelta(seconds=10))
        try:
            done = []
            for what in ("car", "hotel", "flight"):
                done.append(await workflow.execute_activity(book, what, **opts))
                saga.add_compensation(cancel, done[-1], **opts)
        except ActivityError:
            await saga.compensate()
            raise
        return done


async def test_exploring_a_saga_leaves_no_coroutine_unawaited() -> None:
    import gc
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = await faults.explore(Trip.run, activities=[book, cancel])
        gc.collect()
    assert report.ok, report.table()
    never = [str(w.message) for w in caught if "never awaited" in str(w.message)]
    assert never == []


async def test_a_check_that_fails_an_assert_is_that_crash_points_violation() -> None:
    def check(outcome: faults.RunOutcome) -> None:
        moved = sum(amount for account, amount in LEDGER if account == "alice")
        assert moved == -50, f"alice's balance moved by {moved}"

    # As a notebook cell defines it (pytest rewrites the asserts of this module, IPython
    # does not): an assert without a message, its source known to linecache.
    import linecache

    source = 'def bare(outcome):\n    assert sum(amount for account, amount in LEDGER if account == "alice") == -50\n'
    linecache.cache["<cell 12>"] = (len(source), None, source.splitlines(True), "<cell 12>")
    namespace: dict[str, Any] = {"LEDGER": LEDGER}
    exec(compile(source, "<cell 12>", "exec"), namespace)
    bare = namespace["bare"]

    report = await faults.explore(Pay.run, MOVE, activities=[debit, credit], setup=_reset, check=check)
    assert len(report.points) == 10  # every crash point was explored, not only up to the first failure
    assert [(p.phase, p.violations) for p in report.violations] == [
        ("before_commit", ["check failed: alice's balance moved by -100"])
    ]
    report = await faults.explore(Pay.run, MOVE, activities=[debit, credit], setup=_reset, check=bare)
    assert [p.violations for p in report.violations] == [
        ["check failed: assert sum(amount for account, amount in LEDGER if account == \"alice\") == -50"]
    ]
