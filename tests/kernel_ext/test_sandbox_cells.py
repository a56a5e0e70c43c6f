"""``%%workflow`` cells run in the engine's sandbox, as module code does.

Each run re-runs the cell's definitions in a copy of the notebook's namespace: the cell's own
globals are the run's, names from other cells are shared, and restricted calls (also through
names imported in other cells) fail the workflow task until the cell is fixed and re-run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest
from IPython.core.interactiveshell import InteractiveShell

from tests.kernel_ext.test_magics import loaded_shell, run


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    monkeypatch.chdir(tmp_path)
    # Time skipping: task retries after a fix need no real waiting.
    yield from loaded_shell(after=("%config DurableLab.time_mode = 'skip'",))


def task_failure(shell: InteractiveShell, workflow_id: str) -> dict[str, Any]:
    for _ in range(200):  # the kernel's loop runs only while a cell awaits
        events = run(shell, f"%workflow show -w {workflow_id} --output json").data["events"]
        failed = [e for e in events if e["eventType"] == "EVENT_TYPE_WORKFLOW_TASK_FAILED"]
        if failed:
            return dict(failed[0]["workflowTaskFailedEventAttributes"])
        run(shell, "import asyncio; await asyncio.sleep(0.02)")
    raise AssertionError(f"no workflow task of {workflow_id} failed")


PROBE_CELL = '''%%workflow
own: list[str] = []
print("defining Probe")


@workflow.defn
class Probe:
    @workflow.run
    async def run(self, what: str) -> list:
        own.append(what)
        shared.append(what)
        if what == "clock":
            started = time.time()
        if what == "unrestricted":
            with workflow.unsafe.sandbox_unrestricted():
                random.random()
        return [len(own), workflow.unsafe.in_sandbox()]
'''


def test_a_workflow_cell_runs_in_the_sandbox(capsys: pytest.CaptureFixture[str], shell: InteractiveShell) -> None:
    run(shell, "import random, time\nfrom engine import workflow\nshared: list[str] = []")
    run(shell, PROBE_CELL)
    probe_cell = shell.execution_count - 1
    run(shell, "%worker start --task-queue q")
    for word in ("a", "b", "unrestricted"):
        assert run(shell, f"%workflow execute --type Probe -t q -i '\"{word}\"'") == [1, True]
    assert run(shell, "own") == []  # the cell's own globals belong to each run
    assert run(shell, "shared") == ["a", "b", "unrestricted"]  # another cell's list is shared
    assert capsys.readouterr().out.count("defining Probe") == 1  # expression statements are not re-run

    run(shell, "h = %workflow start --type Probe -t q -w clocked -i '\"clock\"'")
    failed = task_failure(shell, "clocked")
    message = failed["failure"]["message"]
    assert message.startswith("time.time() is not allowed in workflow code: it differs on replay.")
    assert f'Called at Cell In[{probe_cell}], line 12, in run: "started = time.time()"' in message  # the cell, as IPython names it
    run(shell, PROBE_CELL.replace("time.time()", "workflow.time()"))
    assert run(shell, "await h") == [1, True]  # fixed: the run replays with the new cell and finishes


def test_names_imported_in_other_cells_are_checked_too(shell: InteractiveShell) -> None:
    run(shell, "from datetime import datetime\nimport uuid\nfrom engine import workflow")
    run(shell, '''%%workflow
@workflow.defn
class Stamps:
    @workflow.run
    async def run(self, kind: str) -> str:
        return str(datetime.now() if kind == "now" else uuid.uuid4())
''')
    run(shell, "%worker start --task-queue q")
    for kind, name in (("now", "datetime.datetime.now()"), ("uuid", "uuid.uuid4()")):
        run(shell, f"%workflow start --type Stamps -t q -w {kind} -i '\"{kind}\"'")
        assert task_failure(shell, kind)["failure"]["message"].startswith(f"{name} is not allowed in workflow code")
    assert isinstance(run(shell, "datetime.now()"), __import__("datetime").datetime)  # the notebook's own name is untouched


def test_cells_written_with_temporalio_imports_define_workflows_and_activities(shell: InteractiveShell) -> None:
    # A course's code pasted as it is (issue 11 item 13): the cells map temporalio onto the engine.
    run(shell, '''%%activity
from temporalio import activity

@activity.defn
async def translate(term: str) -> str:
    return term.upper()
''')
    run(shell, '''%%workflow
from datetime import timedelta
from temporalio import workflow
from temporalio.common import RetryPolicy

@workflow.defn
class Translate:
    @workflow.run
    async def run(self, term: str) -> str:
        return await workflow.execute_activity(
            translate, term, start_to_close_timeout=timedelta(seconds=5), retry_policy=RetryPolicy(maximum_attempts=1)
        )
''')
    run(shell, "%worker start --task-queue q")
    assert run(shell, "%workflow execute --type Translate -t q -i '\"hola\"'") == "HOLA"
    assert not __import__("engine.temporalio_compat").temporalio_compat.is_installed()  # only while the cells ran
