"""The kernel's engine as plain async functions (what the magics wrap), under ``asyncio.run``."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable

import pytest

from engine import activity, workflow
from engine.client import WorkflowExecutionStatus
from engine.errors import CancelledError, TerminatedError, WorkflowAlreadyStartedError, WorkflowFailureError
from kernel_ext._session import JsonDocument, RunHandle, RunTable, Session, SessionError

CALLS: list[str] = []


@activity.defn
async def greet(name: str) -> str:
    CALLS.append(name)
    return f"Hello, {name}!"


@workflow.defn
class Hello:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(greet, name, start_to_close_timeout=timedelta(seconds=10))


@workflow.defn
class Nap:
    @workflow.run
    async def run(self, seconds: float) -> str:
        await workflow.sleep(seconds)
        return "rested"


@workflow.defn(name="Versioned")
class VersionOne:
    @workflow.run
    async def run(self) -> str:
        await workflow.sleep(0.4)
        return "v1"


@workflow.defn(name="Versioned")
class VersionTwo:
    @workflow.run
    async def run(self) -> str:
        await workflow.sleep(0.4)
        return "v2"


async def _until(check: Callable[[], Any], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def _session(*objects: Any, time_mode: str = "real") -> Session:
    session = Session(":memory:", time_mode)
    session.define(objects)
    return session


def test_public_names() -> None:
    import kernel_ext

    assert kernel_ext.__all__ == ["load_ipython_extension", "unload_ipython_extension", "Session", "SessionError"]


async def test_execute_a_workflow_with_a_kernel_worker() -> None:
    session = await _session(greet, Hello)
    worker = await session.start_worker("q")
    assert worker.name == "w1" and worker.state == "running"
    assert await session.execute_workflow("Hello", task_queue="q", workflow_id="w1", args=["Ada"]) == "Hello, Ada!"
    run = await session.start_workflow("Hello", task_queue="q", workflow_id="w2", args=["Bob"])
    assert isinstance(run, RunHandle) and "w2" in repr(run) and "Hello" in repr(run)
    assert await run == "Hello, Bob!"
    assert (await run.describe()).status == WorkflowExecutionStatus.COMPLETED  # handle methods pass through
    await session.close()
    assert worker.state == "stopped"
    assert await worker is worker  # awaiting a worker waits until it stops


async def test_the_database_opens_lazily_beside_the_notebook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    session = Session()
    assert session.client is None and not (tmp_path / ".durable").exists()
    status = await session.status()
    assert (tmp_path / ".durable" / "engine.db").is_file()
    assert status.resolved_path == str(tmp_path / ".durable" / "engine.db")
    assert "database    .durable/engine.db" in status.text()
    await session.close()


async def test_a_worker_started_before_definitions_waits_for_them() -> None:
    session = await _session()
    worker = await session.start_worker("q", name="early")
    assert worker.state == "waiting for definitions"
    session.define([greet])
    assert await session.sync_workers() == ["early"]
    assert worker.polls == (False, True)
    # An engine worker polls workflow tasks only if it had workflows when it started: restart it.
    registration = session.define([Hello])
    assert registration.added == [("workflow", "Hello")] and registration.workers == ["early"]
    assert await session.sync_workers() == ["early"]
    assert worker.polls == (True, True)
    assert await session.execute_workflow("Hello", task_queue="q", args=["x"]) == "Hello, x!"
    await session.close()


async def test_redefining_a_workflow_moves_running_runs_to_the_new_code() -> None:
    session = await _session(VersionOne)
    await session.start_worker("q")
    run = await session.start_workflow("Versioned", task_queue="q", workflow_id="v")

    async def timer_started() -> bool:
        return any(e.event_type == "TimerStarted" for e in await run.fetch_history())

    await _until(timer_started)
    registration = session.define([VersionTwo])
    assert registration.replaced == [("workflow", "Versioned")]
    assert registration.evicted == 1 and "replay with the new code" in registration.summary()
    assert session.workflows["Versioned"] is VersionTwo
    assert await run == "v2"
    await session.close()


async def test_define_ignores_other_objects_and_reports_unchanged_ones() -> None:
    session = await _session()
    first = session.define([greet, Hello, 42, "text", len])
    assert first.added == [("activity", "greet"), ("workflow", "Hello")]
    again = session.define([greet, Hello])
    assert again.unchanged == [("activity", "greet"), ("workflow", "Hello")] and not again.added
    assert again.names("workflow") == ["Hello"]


async def test_show_describe_and_list() -> None:
    session = await _session(greet, Hello)
    await session.start_worker("q")
    await session.execute_workflow("Hello", task_queue="q", workflow_id="a", args=["1"])
    await session.execute_workflow("Hello", task_queue="q", workflow_id="b", args=["2"])
    table = await session.show_workflow("a")
    assert "WorkflowExecutionCompleted" in table._repr_mimebundle_(include=["text/plain"])["text/plain"]
    document = await session.show_workflow("a", output="json")
    assert isinstance(document, JsonDocument) and document.data["events"][0]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"
    assert set(document._repr_mimebundle_()) == {"application/json", "text/plain"}
    graph = await session.show_workflow("a", output="graph")
    assert "text/plain" in graph._repr_mimebundle_(include=["text/plain"])
    described = await session.describe_workflow("b")
    assert described.status == WorkflowExecutionStatus.COMPLETED and "Status             COMPLETED" in described.text()
    runs = await session.list_workflows()
    assert isinstance(runs, RunTable) and [r.id for r in runs] == ["b", "a"]
    assert [r.id for r in await session.list_workflows("WorkflowId = 'a'")] == ["a"]
    assert len(await session.list_workflows(limit=1)) == 1
    assert len(await session.list_workflows("ExecutionStatus='Running' AND WorkflowType=\"Hello\"")) == 0
    await session.close()


async def test_cancel_and_terminate() -> None:
    session = await _session(Nap)
    await session.start_worker("q")
    sleepy = await session.start_workflow("Nap", task_queue="q", workflow_id="c", args=[3600])
    doomed = await session.start_workflow("Nap", task_queue="q", workflow_id="t", args=[3600])

    async def both_sleeping() -> bool:
        return [(await r.describe()).pending_timers for r in (sleepy, doomed)] == [1, 1]

    await _until(both_sleeping)
    assert await session.cancel_workflow("c", reason="enough") == sleepy.run_id
    with pytest.raises(WorkflowFailureError) as cancelled:
        await sleepy
    assert isinstance(cancelled.value.cause, CancelledError)
    await session.terminate_workflow("t", reason="stop")
    with pytest.raises(WorkflowFailureError) as terminated:
        await doomed
    assert isinstance(terminated.value.cause, TerminatedError)
    with pytest.raises(SessionError, match="already CANCELED; nothing to cancel"):
        await session.cancel_workflow("c")
    with pytest.raises(SessionError, match="already TERMINATED; nothing to terminate"):
        await session.terminate_workflow("t")
    await session.close()


async def test_time_skipping_and_switching_the_clock() -> None:
    session = await _session(Nap, time_mode="skip")
    await session.start_worker("q")
    started = time.monotonic()
    assert await session.execute_workflow("Nap", task_queue="q", args=[7 * 24 * 3600]) == "rested"
    assert time.monotonic() - started < 5
    status = await session.status()
    assert status.time_mode == "skip" and "time skipping" in status.text()
    # Back to real time: same database, workers move to the new clock.
    status = await session.set_time_mode("real")
    assert status.time_mode == "real" and status.runs == {"Completed": 1}
    assert status.workers == (("w1", "q", "running"),)
    assert await session.execute_workflow("Nap", task_queue="q", args=[0.05]) == "rested"
    await session.close()


async def test_reset_starts_over_with_an_empty_database(tmp_path: Path) -> None:
    session = Session(str(tmp_path / "lab.db"))
    session.define([greet, Hello])
    await session.start_worker("q")
    await session.execute_workflow("Hello", task_queue="q", workflow_id="a", args=["1"])
    status = await session.reset()
    assert status.runs == {} and status.workers == (("w1", "q", "running"),)
    assert await session.execute_workflow("Hello", task_queue="q", workflow_id="a", args=["2"]) == "Hello, 2!"
    await session.close()


async def test_a_new_path_takes_effect_at_the_next_call(tmp_path: Path) -> None:
    session = await _session(greet, Hello)
    await session.start_worker("q")
    await session.execute_workflow("Hello", task_queue="q", args=["1"])
    session.configure(db_path=str(tmp_path / "other.db"))
    status = await session.status()
    assert status.runs == {} and status.workers == (("w1", "q", "running"),)
    assert (tmp_path / "other.db").is_file()
    await session.close()


async def test_user_mistakes_raise_session_error() -> None:
    session = await _session(greet, Hello)
    with pytest.raises(SessionError, match="Unknown workflow type 'Helo'.*this kernel defines: Hello"):
        await session.start_workflow("Helo", task_queue="q")
    with pytest.raises(SessionError, match="No worker of this kernel polls task queue 'q'"):
        await session.execute_workflow("Hello", task_queue="q")
    with pytest.raises(SessionError, match="needs a task queue"):
        await session.start_worker("")
    await session.start_worker("q", name="a")
    with pytest.raises(SessionError, match="already running"):
        await session.start_worker("q", name="a")
    with pytest.raises(SessionError, match=r"No worker named 'b' \(running: a\)"):
        await session.stop_worker("b")
    with pytest.raises(SessionError, match="No workflow with id 'nope'"):
        await session.describe_workflow("nope")
    await session.execute_workflow("Hello", task_queue="q", workflow_id="x", args=["1"])
    with pytest.raises(SessionError, match="has no run 'r-1'"):
        await session.show_workflow("x", "r-1")
    with pytest.raises(SessionError, match="Unknown output"):
        await session.show_workflow("x", output="svg")
    with pytest.raises(SessionError, match="already closed.*cannot receive signal 'go'"):
        await session.signal_workflow("x", "go")
    with pytest.raises(SessionError, match=r"^Query handler for 'state' expected but not found, known queries: \[.*\]\. Workflow Hello has no query 'state'"):
        await session.query_workflow("x", "state")
    with pytest.raises(SessionError, match="--limit must be at least 1"):
        await session.list_workflows(limit=0)
    with pytest.raises(SessionError, match="Unknown time mode"):
        session.configure(time_mode="fast")
    await session.stop_worker("a")
    await session.close()


async def test_a_workflow_id_in_use_is_the_engine_error() -> None:
    session = await _session(Nap)
    await session.start_workflow("Nap", task_queue="nobody", workflow_id="dup", args=[60])
    with pytest.raises(WorkflowAlreadyStartedError):
        await session.start_workflow("Nap", task_queue="nobody", workflow_id="dup", args=[60])
    await session.close()


async def test_engine_warnings_are_kept_for_status_not_printed(capsys: pytest.CaptureFixture[str]) -> None:
    session = await _session(greet)
    await session.start_worker("q")
    logging.getLogger("engine.worker").warning("polling failed: %s", "disk gone")
    status = await session.status()
    assert status.errors[-1].endswith("polling failed: disk gone") and "engine log" in status.text()
    await session.close()
    assert capsys.readouterr().err == ""
    assert not [h for h in logging.getLogger("engine.worker").handlers if type(h).__name__ == "_EngineLog"]


async def test_list_filters_are_temporals_and_misuse_is_a_session_error() -> None:
    session = Session(":memory:")
    session.define([greet, Hello])
    await session.ensure_ready()
    assert len(await session.list_workflows("WorkflowType='Hello' and ExecutionStatus = \"Running\"")) == 0
    with pytest.raises(SessionError, match="StartTime"):
        await session.list_workflows("StartTime > 3")
    with pytest.raises(SessionError, match="Done"):
        await session.list_workflows("ExecutionStatus='Done'")
    await session.close()


def test_close_from_synchronous_code_when_the_loop_is_idle() -> None:
    # What %unload_ext does in a plain IPython shell: the engine's loop exists but is not running.
    loop = asyncio.new_event_loop()
    try:
        session = Session(":memory:")
        session.define([greet, Hello])
        worker = loop.run_until_complete(session.start_worker("q"))
        assert session.close_soon() is None
        assert worker.state == "stopped" and session.client is None and session.workers() == []
    finally:
        loop.close()


async def test_close_soon_on_the_running_loop_returns_a_task() -> None:
    session = await _session(greet)
    await session.start_worker("q")
    closing = session.close_soon()
    assert closing is not None
    await closing
    assert session.workers() == [] and session.client is None
    assert Session(":memory:").close_soon() is None  # never opened: nothing to do


@workflow.defn
class Tally:
    def __init__(self) -> None:
        self.count = 0

    @workflow.run
    async def run(self, target: int) -> int:
        await workflow.wait_condition(lambda: self.count >= target)
        return self.count

    @workflow.signal
    def add(self, n: int) -> None:
        self.count += n

    @workflow.query
    def total(self) -> int:
        return self.count


async def test_signal_and_query_a_running_workflow() -> None:
    session = await _session(Tally)
    await session.start_worker("q", name="a")
    handle = await session.start_workflow("Tally", task_queue="q", workflow_id="t", args=[5])
    await session.signal_workflow("t", "add", [2])
    for _ in range(300):
        if await session.query_workflow("t", "total") == 2:
            break
        await asyncio.sleep(0.01)
    assert await session.query_workflow("t", "total") == 2
    await session.signal_workflow("t", "add", [3])
    assert await handle == 5
    await session.stop_worker("a")
    await session.close()
