"""temporalio-written apps on the engine: the switch (``engine.temporalio_compat``), the
runner (``dlab run``), and what the engine accepts from the real temporalio without it."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine import temporalio_compat
from engine.errors import ActivityError, ApplicationError
from engine.testing import WorkflowEnvironment
from engine.worker import Worker

APP = Path(__file__).with_name("compat_app.py")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def switch() -> Iterator[None]:
    temporalio_compat.install()
    try:
        yield
    finally:
        temporalio_compat.uninstall()


# ---------------------------------------------------------------- real temporalio, no switch
async def test_the_engine_runs_what_the_real_temporalio_decorated() -> None:
    pytest.importorskip("temporalio")
    from tests.engine import compat_app as app

    assert hasattr(app.reserve, "__temporal_activity_definition")  # the real decorator's work
    async with await WorkflowEnvironment.start_time_skipping() as env:
        async with Worker(env.client, task_queue="orders", workflows=[app.OrderWorkflow], activities=[app.reserve, app.ship]):
            handle = await env.client.start_workflow(app.OrderWorkflow.run, app.Order("pen", 2), id="o-1", task_queue="orders")
            assert await handle.query(app.OrderWorkflow.approved_yet) is False
            assert await handle.execute_update(app.OrderWorkflow.set_note, "fragile") == ""
            await handle.signal(app.OrderWorkflow.approve, "ok")
            assert await handle.result() == "reserved 2 pen; shipped pen; ok"
            raw = (await handle.describe()).raw_description
            assert raw.workflow_execution_info.status == "WORKFLOW_EXECUTION_STATUS_COMPLETED"
            assert raw.workflow_execution_info.execution.workflow_id == "o-1" and raw.pending_activities == []
            assert raw.to_json()["workflowExecutionInfo"]["type"] == {"name": "OrderWorkflow"}


async def test_errors_read_from_history_carry_temporalios_failure() -> None:
    pytest.importorskip("temporalio")
    from tests.engine import compat_app as app

    async with await WorkflowEnvironment.start_time_skipping() as env:
        async with Worker(env.client, task_queue="orders", workflows=[app.OrderWorkflow], activities=[app.reserve, app.ship]):
            handle = await env.client.start_workflow(app.OrderWorkflow.run, app.Order("pen", 11), id="o-2", task_queue="orders")
            result = await handle.result()
            attempts = await handle.activity_attempts()
    # The workflow read `cause.failure.message` of the ActivityError's cause, as temporalio code does.
    assert result == "failed: only 10 pen in stock"
    # temporalio's ApplicationError(non_retryable=True), raised by the activity: not retried.
    assert [(a.attempt, a.failure["applicationFailureInfo"]) for a in attempts] == [
        (1, {"type": "OutOfStock", "nonRetryable": True})
    ]
    assert ApplicationError("raised here").failure is None


def test_client_module_has_temporalios_error_names() -> None:
    from engine import client, errors

    assert client.WorkflowUpdateFailedError is errors.WorkflowUpdateFailedError
    assert client.WorkflowFailureError is errors.WorkflowFailureError
    assert {"WorkflowUpdateFailedError", "WorkflowFailureError", "WorkflowQueryFailedError"} <= set(client.__all__)


def test_a_dynamic_activity_of_temporalio_is_refused_by_name() -> None:
    activity = pytest.importorskip("temporalio.activity")

    from collections.abc import Sequence

    from temporalio.common import RawValue

    async def anything(args):  # type: ignore[no-untyped-def]
        return None

    # Set by hand: the hint must resolve where temporalio evaluates it (not this module's globals).
    anything.__annotations__ = {"args": Sequence[RawValue]}
    activity.defn(dynamic=True)(anything)

    from engine._sandbox.translation import activity_definition
    from engine.errors import DefinitionError

    with pytest.raises(DefinitionError, match="dynamic activity"):
        activity_definition(anything)


# ---------------------------------------------------------------- the switch
def test_public_names() -> None:
    from engine import run

    assert set(temporalio_compat.__all__) == {
        "install", "uninstall", "is_installed", "mapped", "missing_names", "on_missing", "target", "MODULES", "DB_ENV",
        "DEFAULT_DB",
    }
    assert set(run.__all__) == {"main", "run", "USAGE"}
    for module in (temporalio_compat, run):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_the_switch_maps_temporalio_onto_the_engine(switch: None) -> None:
    import engine
    import temporalio
    from temporalio import activity, client, common, converter, exceptions, testing, worker, workflow
    from temporalio.client import Client, WorkflowUpdateFailedError

    assert workflow.defn is engine.workflow.defn and activity.defn is engine.activity.defn
    assert worker.Worker is engine.Worker and testing.WorkflowEnvironment is WorkflowEnvironment
    assert common.RetryPolicy is engine.RetryPolicy and converter.DataConverter is engine.converter.DataConverter
    assert exceptions.ActivityError is ActivityError and exceptions.TemporalError is engine.errors.EngineError
    assert issubclass(Client, engine.Client) and client.WorkflowFailureError is engine.WorkflowFailureError
    assert WorkflowUpdateFailedError is engine.errors.WorkflowUpdateFailedError
    assert temporalio.workflow is workflow


def test_names_the_engine_lacks_fail_clearly(switch: None) -> None:
    from temporalio import workflow

    with pytest.raises(ImportError, match=r"temporalio\.workflow\.no_such_call is not supported by durable-lab's engine yet"):
        from temporalio.workflow import no_such_call  # noqa: F401
    with pytest.raises(AttributeError, match=r"temporalio\.workflow\.no_such_call is not supported"):
        workflow.no_such_call  # noqa: B018
    assert not hasattr(workflow, "no_such_call")  # hasattr still answers
    with pytest.raises(ModuleNotFoundError, match=r"temporalio\.nexus is not supported by durable-lab's engine yet"):
        import temporalio.nexus  # noqa: F401


def test_uninstall_gives_back_the_real_temporalio() -> None:
    real = pytest.importorskip("temporalio.workflow")
    temporalio_compat.install()
    try:
        import temporalio.workflow as mapped

        assert mapped is not real
    finally:
        temporalio_compat.uninstall()
    import temporalio.workflow as again

    assert again is real and not temporalio_compat.is_installed()


def test_a_temporal_address_maps_to_the_engine_database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DLAB_DB", raising=False)
    monkeypatch.chdir(tmp_path)
    assert temporalio_compat.target("localhost:7233") == ".durable/engine.db"
    assert temporalio_compat.target(None) == ".durable/engine.db"
    monkeypatch.setenv("DLAB_DB", str(tmp_path / "app.db"))
    assert temporalio_compat.target("my-ns.a1b2.tmprl.cloud:7233") == str(tmp_path / "app.db")
    assert temporalio_compat.target(":memory:") == ":memory:"
    assert temporalio_compat.target("orders.db") == "orders.db"


async def test_connect_drops_network_options_and_names_unsupported_ones(switch: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from temporalio.client import Client

    monkeypatch.setenv("DLAB_DB", ":memory:")
    client = await Client.connect("localhost:7233", namespace="default", tls=False, api_key=None)
    await client.close()
    with pytest.raises(TypeError, match=r"Client.connect\(no_such_option=...\) is not supported"):
        await Client.connect("localhost:7233", no_such_option=1)


# ---------------------------------------------------------------- the runner
def _dlab_run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DLAB_DB": str(tmp_path / "run.db")}
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", "run", *args], capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env
    )


def test_dlab_run_runs_a_temporalio_app_unchanged(tmp_path: Path) -> None:
    done = _dlab_run(tmp_path, str(APP), "3")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "result: reserved 3 pen; shipped pen; ok\n"
    assert (tmp_path / "run.db").exists()  # Client.connect("localhost:7233") opened $DLAB_DB
    failed = _dlab_run(tmp_path, "--db", str(tmp_path / "other.db"), str(APP), "11")
    assert failed.stdout == "result: failed: only 10 pen in stock\n", failed.stderr


def test_dlab_run_says_what_is_wrong(tmp_path: Path) -> None:
    done = _dlab_run(tmp_path, str(tmp_path / "missing.py"))
    assert done.returncode == 2 and "no such script" in done.stderr


def test_dlab_run_says_which_temporalio_names_the_engine_lacks(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text("from temporalio import workflow\nprint(hasattr(workflow, 'defn'))\nworkflow.no_such_call()\n")
    done = _dlab_run(tmp_path, str(app))
    assert done.stdout == "True\n" and done.returncode == 1
    assert "durable-lab: temporalio.workflow.no_such_call is not supported by the engine yet" in done.stderr


def test_the_docs_list_the_mapped_modules() -> None:
    text = (ROOT / "docs" / "temporalio.md").read_text()
    for theirs, ours in temporalio_compat.MODULES.items():
        assert f"| `{theirs}` | `{ours}` |" in text, theirs


async def test_raw_description_lists_pending_activities() -> None:
    # What hello_cancellation's test reads to wait until its activity runs.
    import asyncio
    from datetime import timedelta

    from engine import activity, workflow

    started = asyncio.Event()

    @activity.defn
    async def wait_forever() -> None:
        started.set()
        await asyncio.Event().wait()

    @workflow.defn(sandboxed=False)
    class Waits:
        @workflow.run
        async def run(self) -> None:
            await workflow.execute_activity(wait_forever, start_to_close_timeout=timedelta(hours=1))

    async with await WorkflowEnvironment.start_local() as env:
        async with Worker(env.client, task_queue="q", workflows=[Waits], activities=[wait_forever]):
            handle = await env.client.start_workflow(Waits.run, id="w", task_queue="q")
            await asyncio.wait_for(started.wait(), 10)
            raw = (await handle.describe()).raw_description
            assert [(p.activity_id, p.activity_type.name, p.state, p.attempt) for p in raw.pending_activities] == [
                ("1", "wait_forever", "PENDING_ACTIVITY_STATE_STARTED", 1)
            ]
            if importlib.util.find_spec("temporalio") is not None:  # Temporal's own message reads it
                from google.protobuf import json_format
                from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionResponse

                parsed = json_format.ParseDict(raw.to_json(), DescribeWorkflowExecutionResponse())
                assert parsed.pending_activities[0].activity_type.name == "wait_forever"
            await handle.terminate()


async def test_raw_description_json_is_temporals_describe_response() -> None:
    # Every field name and enum value parses as Temporal's protobuf message (temporalio's classes).
    pytest.importorskip("temporalio")
    from google.protobuf import json_format
    from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionResponse

    from tests.engine import compat_app as app

    async with await WorkflowEnvironment.start_time_skipping() as env:
        async with Worker(env.client, task_queue="orders", workflows=[app.OrderWorkflow], activities=[app.reserve, app.ship]):
            handle = await env.client.start_workflow(app.OrderWorkflow.run, app.Order("pen", 1), id="o-3", task_queue="orders", memo={"k": "v"})
            running = (await handle.describe()).raw_description.to_json()
            await handle.signal(app.OrderWorkflow.approve, "ok")
            await handle.result()
            closed = (await handle.describe()).raw_description.to_json()
    for raw in (running, closed):
        parsed = json_format.ParseDict(raw, DescribeWorkflowExecutionResponse())
        assert parsed.workflow_execution_info.execution.workflow_id == "o-3"
    assert json_format.ParseDict(closed, DescribeWorkflowExecutionResponse()).workflow_execution_info.status == 2  # COMPLETED
