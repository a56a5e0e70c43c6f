"""``%workflow execute`` and ``%workflow result`` stop at a failing workflow task instead of
hanging, and an interrupt while they wait is one line."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Iterator

import pytest
from IPython.core.interactiveshell import InteractiveShell

from engine import Client, Worker
from engine import workflow as engine_workflow
from kernel_ext._session_results import RunHandle
from kernel_ext._waiting import TaskFailedError, WaitInterrupted, wait_for_result
from tests.kernel_ext.test_magics import loaded_shell, run
from tests.kernel_ext.test_sandbox_cells import PROBE_CELL


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    monkeypatch.chdir(tmp_path)
    yield from loaded_shell(after=("%config DurableLab.time_mode = 'skip'", "%config DurableLab.db_path = ':memory:'"))


def failure_of(shell: InteractiveShell, code: str) -> BaseException:
    result = shell.run_cell(code, store_history=True)
    assert result.error_in_exec is not None, code
    return result.error_in_exec


def test_execute_stops_at_a_failing_workflow_task_and_result_waits_after_the_fix(shell: InteractiveShell) -> None:
    run(shell, "import random, time\nfrom engine import workflow\nshared: list[str] = []")
    run(shell, PROBE_CELL)
    probe_cell = shell.execution_count - 1
    run(shell, "%worker start --task-queue q")
    error = failure_of(shell, "%workflow execute --type Probe -t q -w clocked -i '\"clock\"'")
    assert isinstance(error, TaskFailedError)
    lines = error._render_traceback_()
    assert lines[0] == "WorkflowTaskFailed: the workflow task of 'clocked' (Probe) failed, so the run cannot go on."
    assert lines[1].startswith("  RestrictedWorkflowAccessError: time.time() is not allowed in workflow code")
    assert f"  Cell In[{probe_cell}], line 12, in run" in lines and "    started = time.time()" in lines
    assert lines[-1].endswith("Fix the cell, run it again, then wait for the run: %workflow result -w clocked")
    assert run(shell, "%workflow describe -w clocked").status.name == "RUNNING"  # the run is untouched
    # Waiting again before the fix stops at the task's next failure (a retry), not at the old one.
    assert isinstance(failure_of(shell, "%workflow result -w clocked"), TaskFailedError)
    run(shell, PROBE_CELL.replace("time.time()", "workflow.time()"))
    assert run(shell, "%workflow result -w clocked") == [1, True]
    assert run(shell, "%workflow execute --type Probe -t q -w fine -i '\"a\"'") == [1, True]


def test_an_interrupt_while_waiting_is_one_line_and_the_run_goes_on(shell: InteractiveShell) -> None:
    run(shell, "from engine import workflow")
    run(shell, "%%workflow\n@workflow.defn\nclass Waits:\n    @workflow.run\n    async def run(self) -> str:\n        await workflow.wait_condition(lambda: False)\n        return 'never'\n")
    run(shell, "%worker start --task-queue q")
    # What the kernel does on an interrupt: it cancels the task running the cell.
    code = (
        "import asyncio\n"
        "async def execute():\n"
        "    try:\n"
        "        return await get_ipython().run_line_magic('workflow', 'execute --type Waits -t q -w waits')\n"
        "    except BaseException as e:\n"
        "        return e\n"
        "waiting = asyncio.ensure_future(execute())\n"
        "await asyncio.sleep(0.3)\n"
        "waiting.cancel()\n"
        "await waiting"
    )
    stopped = run(shell, code)
    assert isinstance(stopped, WaitInterrupted) and isinstance(stopped, asyncio.CancelledError)
    assert stopped._render_traceback_() == [
        "Interrupted: Stopped waiting for workflow 'waits'; the run goes on (%workflow describe -w waits, "
        "or wait again: %workflow result -w waits)."
    ]
    assert run(shell, "%workflow describe -w waits").status.name == "RUNNING"


@engine_workflow.defn(sandboxed=False)
class Broken:
    @engine_workflow.run
    async def run(self) -> str:
        raise RuntimeError("a bug in the workflow code")


async def test_a_new_run_whose_task_failed_before_the_wait_began_is_reported(tmp_path: Path) -> None:
    # %workflow execute waits for a run it has just started: a failure of its first task,
    # committed before the wait looked, is news too (it used to be taken as the baseline).
    client = await Client.connect(str(tmp_path / "engine.db"))
    try:
        async with Worker(client, task_queue="q", workflows=[Broken]):
            handle = await client.start_workflow(Broken.run, id="broken", task_queue="q")
            while not any(e.event_type == "WorkflowTaskFailed" for e in (await handle.fetch_history()).events):
                await asyncio.sleep(0.01)
        # The worker is gone: no retry will fail anew, so only that first failure can stop the wait.
        with pytest.raises(TaskFailedError, match="a bug in the workflow code"):
            await asyncio.wait_for(wait_for_result(client, RunHandle(handle, "Broken", "q"), new=True), 10)
    finally:
        await client.close()
