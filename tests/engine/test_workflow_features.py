"""Workflow semantics: failures, retries, timeouts, cancellation, conditions, replay."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest

from engine import Worker, activity, workflow
from engine.common import RetryPolicy
from engine.errors import (
    ActivityError,
    ApplicationError,
    CancelledError,
    TerminatedError,
    TimeoutError,
    WorkflowFailureError,
    WorkflowNotFoundError,
)
from engine.replay import Replayer
from engine.testing import WorkflowEnvironment

from tests.engine.workflows import RUNS, MoneyTransfer, Parallel, Refusing, Transfer, deposit, echo, refuse, withdraw


async def _env_worker(workflows, activities=(), **kw):  # type: ignore[no-untyped-def]
    env = await WorkflowEnvironment.start_time_skipping()
    return env, Worker(env.client, task_queue="q", workflows=workflows, activities=activities, **kw)


async def test_parallel_activities_with_gather() -> None:
    env, worker = await _env_worker([Parallel], [echo])
    async with worker:
        result = await env.client.execute_workflow(Parallel.run, ["a", "b", "c"], id="p", task_queue="q")
        history = await env.client.get_workflow_handle("p").fetch_history()
    await env.shutdown()
    assert result == ["a", "b", "c"]
    types = [e.event_type for e in history.events]
    # All three are scheduled by one workflow task.
    first = types.index("ActivityTaskScheduled")
    assert types[first : first + 3] == ["ActivityTaskScheduled"] * 3


async def test_non_retryable_application_error_fails_the_workflow() -> None:
    env, worker = await _env_worker([Refusing], [refuse])
    async with worker:
        handle = await env.client.start_workflow(Refusing.run, id="r", task_queue="q")
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
        history = await handle.fetch_history()
    await env.shutdown()
    cause = info.value.cause
    assert isinstance(cause, ActivityError) and cause.activity_type == "refuse"
    assert isinstance(cause.__cause__, ApplicationError) and cause.__cause__.type == "Refused"
    assert history.events[-1].event_type == "WorkflowExecutionFailed"
    failed = next(e for e in history.events if e.event_type == "ActivityTaskFailed")
    assert failed.attributes["retryState"] == "RETRY_STATE_NON_RETRYABLE_FAILURE"


@workflow.defn(name="Buggy")
class Buggy:
    @workflow.run
    async def run(self) -> str:
        await workflow.execute_activity(echo, "x", start_to_close_timeout=timedelta(seconds=5))
        raise KeyError("a bug, not a business failure")


@workflow.defn(name="Buggy")
class Fixed:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity(echo, "x", start_to_close_timeout=timedelta(seconds=5))


async def test_a_bug_fails_the_task_and_fixed_code_finishes_the_run() -> None:
    RUNS.clear()
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[Buggy], activities=[echo]) as worker:
        handle = await env.client.start_workflow("Buggy", id="b", task_queue="q")
        for _ in range(300):
            history = await handle.fetch_history()
            if any(e.event_type == "WorkflowTaskFailed" for e in history.events):
                break
            await asyncio.sleep(0.01)
        failed = next(e for e in history.events if e.event_type == "WorkflowTaskFailed")
        assert "a bug, not a business failure" in failed.attributes["failure"]["message"]
        # Retries after 1 s and 2 s fail again but, being transient, add nothing to history.
        for _ in range(3):
            await env.sleep(timedelta(seconds=2))
        assert worker.stats["workflow_tasks"] >= 3
        assert (await handle.fetch_history()).events == history.events
    assert (await handle.describe()).status.name == "RUNNING"
    async with Worker(env.client, task_queue="q", workflows=[Fixed], activities=[echo]):
        assert await handle.result() == "x"
        final = await handle.fetch_history()
    await env.shutdown()
    assert RUNS["echo"] == 1
    types = [e.event_type for e in final.events]
    assert types.count("WorkflowTaskFailed") == 1
    retried = [e for e in final.events if e.event_type == "WorkflowTaskScheduled"][-1]
    assert retried.attributes["attempt"] >= 3 and types[-1] == "WorkflowExecutionCompleted"


@activity.defn
async def slow(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "done"


@workflow.defn
class TimesOut:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity(
            slow, 5.0, start_to_close_timeout=timedelta(milliseconds=100), retry_policy=RetryPolicy(maximum_attempts=2)
        )


async def test_start_to_close_timeout_retries_then_fails() -> None:
    env, worker = await _env_worker([TimesOut], [slow])
    async with worker:
        handle = await env.client.start_workflow(TimesOut.run, id="to", task_queue="q")
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
        attempts = await handle.activity_attempts()
    await env.shutdown()
    assert isinstance(info.value.cause, ActivityError)
    assert len(attempts) == 2 and all(a.outcome in ("timed out", "failed") for a in attempts)
    assert info.value.cause.retry_state is not None and info.value.cause.retry_state.name == "MAXIMUM_ATTEMPTS_REACHED"


@activity.defn
def beating() -> int:
    info = activity.info()
    start = info.heartbeat_details[0] if info.heartbeat_details else 0
    for i in range(start, 3):
        activity.heartbeat(i + 1)
    if info.attempt == 1:
        import time

        time.sleep(0.6)  # stop heart-beating: the heartbeat timeout fires
    return start


@workflow.defn
class Heartbeats:
    @workflow.run
    async def run(self) -> int:
        return await workflow.execute_activity(
            beating,
            start_to_close_timeout=timedelta(seconds=30),
            heartbeat_timeout=timedelta(milliseconds=200),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=10)),
        )


async def test_heartbeat_timeout_retries_with_last_details() -> None:
    env, worker = await _env_worker([Heartbeats], [beating])
    async with worker:
        handle = await env.client.start_workflow(Heartbeats.run, id="hb", task_queue="q")
        assert await handle.result() == 3
        attempts = await handle.activity_attempts()
    await env.shutdown()
    assert attempts[0].outcome == "timed out"
    assert attempts[0].failure["message"] == "activity Heartbeat timeout"  # the server's words


@workflow.defn
class CancelsActivity:
    @workflow.run
    async def run(self) -> str:
        handle = workflow.start_activity(slow, 60.0, start_to_close_timeout=timedelta(seconds=120))
        await workflow.sleep(1)
        handle.cancel()
        try:
            await handle
        except ActivityError as e:
            # As temporalio: the cancelled activity's await raises ActivityError(CancelledError).
            return "cancelled" if isinstance(e.__cause__, CancelledError) else "other"
        return "not cancelled"


async def test_cancelling_an_activity_handle() -> None:
    env, worker = await _env_worker([CancelsActivity], [slow])
    async with worker:
        handle = await env.client.start_workflow(CancelsActivity.run, id="ca", task_queue="q")
        assert await handle.result() == "cancelled"
        types = [e.event_type for e in (await handle.fetch_history()).events]
    await env.shutdown()
    assert "ActivityTaskCancelRequested" in types


@workflow.defn
class Waits:
    def __init__(self) -> None:
        self.ready = False

    @workflow.run
    async def run(self) -> str:
        try:
            await workflow.wait_condition(lambda: self.ready, timeout=timedelta(minutes=5))
        except asyncio.TimeoutError:
            return "gave up after 5 minutes"
        return "ready"


async def test_wait_condition_timeout() -> None:
    env, worker = await _env_worker([Waits])
    async with worker:
        assert await env.client.execute_workflow(Waits.run, id="w", task_queue="q") == "gave up after 5 minutes"
    await env.shutdown()


@workflow.defn
class Forever:
    @workflow.run
    async def run(self) -> None:
        try:
            await workflow.sleep(timedelta(days=365))
        except asyncio.CancelledError:
            await workflow.execute_activity(echo, "cleanup", start_to_close_timeout=timedelta(seconds=5))
            raise


async def test_cancel_runs_cleanup_then_cancels_and_terminate_ends_at_once() -> None:
    env, worker = await _env_worker([Forever], [echo])
    async with worker:
        handle = await env.client.start_workflow(Forever.run, id="f1", task_queue="q")
        await asyncio.sleep(0.05)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
        assert isinstance(info.value.cause, CancelledError)
        types = [e.event_type for e in (await handle.fetch_history()).events]
        assert "WorkflowExecutionCancelRequested" in types and types[-1] == "WorkflowExecutionCanceled"
        assert "ActivityTaskCompleted" in types

        other = await env.client.start_workflow(Forever.run, id="f2", task_queue="q")
        await other.terminate(reason="no longer needed")
        with pytest.raises(WorkflowFailureError) as info:
            await other.result()
        assert isinstance(info.value.cause, TerminatedError)
    await env.shutdown()


async def test_a_cancel_requested_before_the_first_workflow_task_cancels_the_run() -> None:
    # The request reaches the run with its first workflow task (no worker was running yet):
    # workflow code sees CancelledError at its first await, runs its cleanup, and is cancelled.
    env, worker = await _env_worker([Forever], [echo])
    handle = await env.client.start_workflow(Forever.run, id="early", task_queue="q")
    await handle.cancel()
    async with worker:
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
    assert isinstance(info.value.cause, CancelledError)
    history = await handle.fetch_history()
    types = [e.event_type for e in history.events]
    assert types[:4] == ["WorkflowExecutionStarted", "WorkflowTaskScheduled", "WorkflowExecutionCancelRequested", "WorkflowTaskStarted"]
    assert "ActivityTaskCompleted" in types and types[-1] == "WorkflowExecutionCanceled"
    Replayer(workflows=[Forever]).replay_workflow(history)
    await env.shutdown()


async def test_execution_timeout() -> None:
    env, worker = await _env_worker([Forever], [echo])
    async with worker:
        handle = await env.client.start_workflow(Forever.run, id="t", task_queue="q", execution_timeout=timedelta(hours=1))
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
    await env.shutdown()
    assert isinstance(info.value.cause, TimeoutError)


async def test_replay_from_history_when_nothing_is_cached() -> None:
    RUNS.clear()
    env, worker = await _env_worker([MoneyTransfer], [withdraw, deposit], max_cached_workflows=0)
    async with worker:
        result = await env.client.execute_workflow(MoneyTransfer.run, Transfer("a", "b", 5), id="m", task_queue="q")
    await env.shutdown()
    assert result == ["withdrew 5 from a", "deposited 5 into b"]
    assert worker.stats["replays"] == worker.stats["workflow_tasks"] >= 3
    assert RUNS["withdraw"] == 1


@workflow.defn
class Logs:
    @workflow.run
    async def run(self) -> list[bool]:
        seen = [workflow.unsafe.is_replaying()]
        workflow.logger.info("before the activity")
        await workflow.execute_activity(echo, "x", start_to_close_timeout=timedelta(seconds=5))
        seen.append(workflow.unsafe.is_replaying())
        workflow.logger.info("after the activity")
        return seen + [workflow.in_workflow(), workflow.info().workflow_id == "lg"]


async def test_logger_is_quiet_during_replay(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="engine.workflow")
    env, worker = await _env_worker([Logs], [echo], max_cached_workflows=0)
    async with worker:
        result = await env.client.execute_workflow(Logs.run, id="lg", task_queue="q")
    await env.shutdown()
    # The result comes from the last (replayed) activation: the code before the activity re-ran
    # as replay, the code after it ran live.
    assert result == [True, False, True, True]
    messages = [r.getMessage() for r in caplog.records if r.name == "engine.workflow"]
    assert sum("before the activity" in m for m in messages) == 1
    assert sum("after the activity" in m for m in messages) == 1
    assert not workflow.in_workflow()


async def test_task_queues_are_case_sensitive_and_shared_by_workers() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="Q", workflows=[Parallel], activities=[echo]):
        handle = await env.client.start_workflow(Parallel.run, ["x"], id="cs", task_queue="q")
        await asyncio.sleep(0.3)
        assert len((await handle.fetch_history()).events) == 2  # nobody serves "q"
        async with Worker(env.client, task_queue="q", workflows=[Parallel], activities=[echo]), Worker(
            env.client, task_queue="q", workflows=[Parallel], activities=[echo]
        ):
            assert await handle.result() == ["x"]
    await env.shutdown()


@activity.defn
async def always_fails() -> str:
    raise RuntimeError("still broken")


@workflow.defn
class Deadlines:
    @workflow.run
    async def run(self, which: str) -> str:
        try:
            if which == "schedule_to_close":
                await workflow.execute_activity(always_fails, schedule_to_close_timeout=timedelta(seconds=10))
            else:
                await workflow.execute_activity(
                    always_fails,
                    task_queue="nobody-polls-this",
                    start_to_close_timeout=timedelta(seconds=5),
                    schedule_to_start_timeout=timedelta(minutes=1),
                )
        except ActivityError as e:
            assert isinstance(e.__cause__, TimeoutError) or e.retry_state is not None
            cause = e.__cause__
            kind = cause.type.name if isinstance(cause, TimeoutError) and cause.type else type(cause).__name__
            return f"{e.retry_state.name if e.retry_state else ''}:{kind}"
        return "no error"


async def test_schedule_to_close_stops_retries_and_schedule_to_start_times_out() -> None:
    env, worker = await _env_worker([Deadlines], [always_fails])
    async with worker:
        h1 = await env.client.start_workflow(Deadlines.run, "schedule_to_close", id="s2c", task_queue="q")
        # Retries (1 s, 2 s, 4 s) stop before the 10 s deadline: the last failure is reported.
        assert await h1.result() == "TIMEOUT:ApplicationError"
        attempts = await h1.activity_attempts()
        assert 3 <= len(attempts) <= 4
        h2 = await env.client.start_workflow(Deadlines.run, "schedule_to_start", id="s2s", task_queue="q")
        assert await h2.result() == "TIMEOUT:SCHEDULE_TO_START"
    await env.shutdown()


async def test_start_local_runs_in_real_time_over_a_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = await WorkflowEnvironment.start_local(str(tmp_path / "local.db"))
    assert not env.supports_time_skipping
    async with Worker(env.client, task_queue="q", workflows=[Parallel], activities=[echo]):
        assert await env.client.execute_workflow(Parallel.run, ["x", "y"], id="l", task_queue="q") == ["x", "y"]
    await env.shutdown()
    assert (tmp_path / "local.db").exists()


@workflow.defn(name="Versioned")
class VersionedV1:
    @workflow.run
    async def run(self) -> str:
        await workflow.sleep(timedelta(hours=1))
        return "v1"


@workflow.defn(name="Versioned")
class VersionedV2:
    @workflow.run
    async def run(self) -> str:
        await workflow.sleep(timedelta(hours=1))
        return "v2"


async def test_register_replaces_code_of_a_running_worker() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", activities=[echo]) as worker:
        assert worker.register(workflows=[VersionedV1]) == 0  # starts the workflow poller
        handle = await env.client.start_workflow("Versioned", id="v", task_queue="q")
        for _ in range(300):
            if any(e.event_type == "TimerStarted" for e in (await handle.fetch_history()).events):
                break
            await asyncio.sleep(0.01)
        assert worker.register(workflows=[VersionedV2]) == 1
        assert await handle.result() == "v2"
        with pytest.raises(WorkflowNotFoundError):
            await env.client.get_workflow_handle("v", run_id="no-such-run").describe()
        with pytest.raises(WorkflowNotFoundError, match="already closed"):
            await handle.cancel()
    await env.shutdown()


SEEN: list[str] = []


@activity.defn
async def heartbeat_until_cancelled() -> str:
    try:
        while True:
            activity.heartbeat("alive")
            await asyncio.sleep(0.02)
    except asyncio.CancelledError:
        SEEN.append("cancelled")
        raise


@workflow.defn
class CancelsHeartbeating:
    @workflow.run
    async def run(self) -> str:
        handle = workflow.start_activity(
            heartbeat_until_cancelled, start_to_close_timeout=timedelta(minutes=1), heartbeat_timeout=timedelta(seconds=5)
        )
        await workflow.sleep(0.3)
        handle.cancel()
        await workflow.sleep(1)
        return "done"


async def test_cancellation_reaches_a_heartbeating_activity() -> None:
    SEEN.clear()
    env = await WorkflowEnvironment.start_local()
    async with Worker(env.client, task_queue="q", workflows=[CancelsHeartbeating], activities=[heartbeat_until_cancelled]):
        handle = await env.client.start_workflow(CancelsHeartbeating.run, id="chb", task_queue="q")
        assert await handle.result() == "done"
        types = [e.event_type for e in (await handle.fetch_history()).events]
    await env.shutdown()
    assert SEEN == ["cancelled"]
    assert types.index("ActivityTaskCancelRequested") < types.index("ActivityTaskCanceled")


@workflow.defn
class Countdown:
    @workflow.run
    async def run(self, n: int, total: int = 0) -> int:
        total += await workflow.execute_activity(echo, str(n), start_to_close_timeout=timedelta(seconds=5)) and n
        if n > 1:
            workflow.continue_as_new(args=[n - 1, total])
        return total


async def test_continue_as_new_chains_runs_and_result_follows_them() -> None:
    env, worker = await _env_worker([Countdown], [echo])
    async with worker:
        handle = await env.client.start_workflow(Countdown.run, 3, id="cd", task_queue="q")
        assert await handle.result() == 3 + 2 + 1
        first = await handle.fetch_history()
        latest = env.client.get_workflow_handle("cd")
        last = await latest.fetch_history()
        runs = await env.client.list_workflows()
    await env.shutdown()
    assert first.events[-1].event_type == "WorkflowExecutionContinuedAsNew"
    assert sorted(r.status.name for r in runs) == ["COMPLETED", "CONTINUED_AS_NEW", "CONTINUED_AS_NEW"]
    started = last.events[0].attributes
    assert started["firstExecutionRunId"] == handle.run_id
    assert started["continuedExecutionRunId"] != handle.run_id  # the middle run
    assert last.events[-1].event_type == "WorkflowExecutionCompleted"


@workflow.defn
class AwaitsActivityWhenCancelled:
    @workflow.run
    async def run(self, catch: bool) -> str:
        try:
            return await workflow.execute_activity(
                heartbeat_until_cancelled, start_to_close_timeout=timedelta(minutes=1), heartbeat_timeout=timedelta(seconds=5)
            )
        except ActivityError as e:
            if not catch or not isinstance(e.__cause__, CancelledError):
                raise
            await workflow.execute_activity(echo, "cleanup", start_to_close_timeout=timedelta(seconds=5))
            raise


async def test_cancelling_an_activity_that_never_started_is_replayed() -> None:
    # The activity's task is never claimed (no worker serves activities yet), so the cancel
    # closes it at once: ActivityTaskCanceled lands among the events of the workflow task's
    # commands, before the cleanup activity's ActivityTaskScheduled, as in Temporal.
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[AwaitsActivityWhenCancelled]):
        handle = await env.client.start_workflow(AwaitsActivityWhenCancelled.run, True, id="never-started", task_queue="q")
        for expected in (1, 2):
            if expected == 2:
                await handle.cancel()
            for _ in range(300):
                types = [e.event_type for e in (await handle.fetch_history()).events]
                if types.count("ActivityTaskScheduled") == expected:
                    break
                await asyncio.sleep(0.01)
        async with Worker(env.client, task_queue="q", activities=[echo]):
            with pytest.raises(WorkflowFailureError) as info:
                await asyncio.wait_for(handle.result(), 10)
        history = await handle.fetch_history()
    await env.shutdown()
    assert isinstance(info.value.cause, CancelledError)
    types = [e.event_type for e in history.events]
    assert types[types.index("ActivityTaskCancelRequested") + 1 :][:2] == ["ActivityTaskCanceled", "ActivityTaskScheduled"]
    assert "WorkflowTaskFailed" not in types and types[-1] == "WorkflowExecutionCanceled"
    assert Replayer(workflows=[AwaitsActivityWhenCancelled]).replay_workflow(history).replay_failure is None


async def test_cancelling_a_workflow_that_awaits_an_activity_cancels_it_like_temporal() -> None:
    env = await WorkflowEnvironment.start_local()
    async with Worker(env.client, task_queue="q", workflows=[AwaitsActivityWhenCancelled], activities=[heartbeat_until_cancelled, echo]):
        for catch in (False, True):
            handle = await env.client.start_workflow(AwaitsActivityWhenCancelled.run, catch, id=f"awc-{catch}", task_queue="q")
            await asyncio.sleep(0.2)
            await handle.cancel()
            with pytest.raises(WorkflowFailureError) as info:
                await handle.result()
            assert isinstance(info.value.cause, CancelledError)
            types = [e.event_type for e in (await handle.fetch_history()).events]
            assert types[-1] == "WorkflowExecutionCanceled" and "ActivityTaskCancelRequested" in types
            assert types.count("ActivityTaskScheduled") == (2 if catch else 1)
    await env.shutdown()


@workflow.defn
class CancelWithType:
    @workflow.run
    async def run(self, kind: str) -> list[str]:
        handle = workflow.start_activity(
            heartbeat_until_cancelled,
            start_to_close_timeout=timedelta(minutes=1),
            heartbeat_timeout=timedelta(seconds=5),
            cancellation_type=workflow.ActivityCancellationType[kind],
        )
        await workflow.sleep(0.3)
        handle.cancel()
        try:
            await handle
        except ActivityError as e:
            assert isinstance(e.__cause__, CancelledError)
        # What the history shows at the moment the await returned.
        return [kind]


@pytest.mark.parametrize("kind", ["TRY_CANCEL", "WAIT_CANCELLATION_COMPLETED", "ABANDON"])
async def test_activity_cancellation_types(kind: str) -> None:
    SEEN.clear()
    env = await WorkflowEnvironment.start_local()
    async with Worker(env.client, task_queue="q", workflows=[CancelWithType], activities=[heartbeat_until_cancelled]):
        handle = await env.client.start_workflow(CancelWithType.run, kind, id=f"ct-{kind}", task_queue="q")
        assert await handle.result() == [kind]
        types = [e.event_type for e in (await handle.fetch_history()).events]
    await env.shutdown()
    if kind == "ABANDON":
        # No cancel is sent: the history has no cancel request, the activity was left running.
        assert "ActivityTaskCancelRequested" not in types
        assert SEEN in ([], ["cancelled"])  # the worker's shutdown may stop it
    elif kind == "WAIT_CANCELLATION_COMPLETED":
        # The workflow went on only after the activity acknowledged the cancel, as in
        # tests/histories/cancel_wait_completed.json.
        assert SEEN == ["cancelled"]
        assert types.index("ActivityTaskCancelRequested") < types.index("ActivityTaskCanceled") < types.index("WorkflowExecutionCompleted")
        # The task that saw ActivityTaskCanceled is the one that completed the run.
        assert types[types.index("ActivityTaskCanceled") + 1] == "WorkflowTaskScheduled"
    else:
        assert "ActivityTaskCancelRequested" in types


SLOW_FIRST: list[int] = []


@activity.defn
async def slow_first_attempt() -> str:
    if activity.info().attempt == 1:
        SLOW_FIRST.append(1)
        await asyncio.sleep(60)
    return f"done on attempt {activity.info().attempt}"


@workflow.defn
class RunsSlowFirst:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity(
            slow_first_attempt,
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=50)),
        )


async def test_a_worker_shut_down_mid_activity_reports_it_so_the_retry_comes_at_once() -> None:
    SLOW_FIRST.clear()
    env = await WorkflowEnvironment.start_local()
    first = Worker(env.client, task_queue="q", workflows=[RunsSlowFirst], activities=[slow_first_attempt])
    async with first:
        handle = await env.client.start_workflow(RunsSlowFirst.run, id="shutdown-mid", task_queue="q")
        for _ in range(200):
            if SLOW_FIRST:
                break
            await asyncio.sleep(0.01)
    async with Worker(env.client, task_queue="q", workflows=[RunsSlowFirst], activities=[slow_first_attempt]):
        assert await asyncio.wait_for(handle.result(), 10) == "done on attempt 2"  # not after 5 minutes
        attempts = await handle.activity_attempts()
    await env.shutdown()
    assert attempts[0].outcome == "failed" and attempts[0].failure["applicationFailureInfo"]["type"] == "WorkerShutdown"
