"""``%workflow reset``: the teaching use of a reset (a bug fixed in a cell, the run taken back to
its first workflow task so that the new code takes over), and its errors."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from IPython.core.interactiveshell import InteractiveShell

from tests.kernel_ext.test_magics import ACTIVITY_CELL, loaded_shell, run, usage_error

BUGGY = '''%%workflow
@workflow.defn
class Welcome:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(greet, name.lower(), start_to_close_timeout=timedelta(seconds=10))
'''

FIXED = BUGGY.replace("name.lower()", "name")


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    monkeypatch.chdir(tmp_path)
    yield from loaded_shell(after=("%config DurableLab.db_path = ':memory:'",))


def test_a_run_reset_to_its_first_task_finishes_with_the_fixed_code(shell: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    run(shell, ACTIVITY_CELL)
    run(shell, BUGGY)
    run(shell, "%worker start -t q")
    assert run(shell, '%workflow execute --type Welcome -t q -w w1 -i \'"Ada"\'') == "Hello, ada!"
    run(shell, FIXED)
    capsys.readouterr()
    run(shell, '%workflow reset -w w1 --type FirstWorkflowTask --reason "the name lost its capital"')
    said = capsys.readouterr().out
    assert "Workflow 'w1' reset to event 4: new run " in said and "left COMPLETED" in said
    assert run(shell, "%workflow result -w w1") == "Hello, Ada!"
    events = [e.event_type for e in run(shell, "%workflow show -w w1").history.events]
    assert events[:5] == ["WorkflowExecutionStarted", "WorkflowTaskScheduled", "WorkflowTaskStarted", "WorkflowTaskFailed", "WorkflowTaskScheduled"]
    assert events[-1] == "WorkflowExecutionCompleted"
    # The graph draws the reset as where the new run took over, not as a failure of the code.
    graph = run(shell, "%workflow show -w w1 -o graph")
    text = graph.to_text()
    assert "Reset" in text and "the name lost its capital" in text and "Workflow task failed" not in text
    reset_node = next(line for line in graph.dot.splitlines() if "label=\"Reset" in line)
    assert 'fillcolor="#f7f7f7"' in reset_node and "penwidth=2" in reset_node, reset_node


def test_reset_errors_name_the_fix(shell: InteractiveShell) -> None:
    run(shell, ACTIVITY_CELL)
    run(shell, BUGGY)
    run(shell, "%worker start -t q")
    run(shell, '%workflow execute --type Welcome -t q -w w2 -i \'"Ada"\'')
    neither = usage_error(shell, "%workflow reset -w w2 --reason r")
    assert "either --event-id N or --type FirstWorkflowTask|LastWorkflowTask" in neither and "usage: %workflow reset" in neither
    both = usage_error(shell, "%workflow reset -w w2 -e 4 --type LastWorkflowTask --reason r")
    assert "either --event-id N or --type" in both
    assert "--reason" in usage_error(shell, "%workflow reset -w w2 -e 4")
    bad = usage_error(shell, "%workflow reset -w w2 -e 2 --reason r")
    assert "Events you can reset to" in bad and "4" in bad
    assert "no-such" in usage_error(shell, "%workflow reset -w no-such -e 4 --reason r")


def test_describe_lists_the_reset_points(shell: InteractiveShell) -> None:
    run(shell, ACTIVITY_CELL)
    run(shell, BUGGY)
    run(shell, "%worker start -t q")
    run(shell, '%workflow execute --type Welcome -t q -w w3 -i \'"Ada"\'')
    text = run(shell, "%workflow describe -w w3").text()
    assert "ResetPoints:      (%workflow reset -e EVENT)" in text
    assert "  event 4          build " in text
