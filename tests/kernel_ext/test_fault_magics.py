"""``%fault`` and ``%explore`` through a real IPython shell."""

from __future__ import annotations

import pytest
from IPython.core.interactiveshell import InteractiveShell

from tests.kernel_ext.test_magics import define, run, shell, usage_error  # noqa: F401 - the fixture

PAY_CELLS = [
    '''%%activity
from datetime import timedelta
from engine import activity, workflow
from engine.common import RetryPolicy
BANK: list[int] = []

@activity.defn
async def debit(amount: int) -> str:
    BANK.append(-amount)
    return f"debited {amount}"
''',
    '''%%workflow
@workflow.defn
class Pay:
    @workflow.run
    async def run(self, amount: int) -> str:
        return await workflow.execute_activity(
            debit, amount, start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=10)))
''',
    '''def reset():
    BANK.clear()

def balance(outcome):
    return None if sum(BANK) == -5 else f"balance {sum(BANK)}, not -5"
''',
]


def test_fault_verbs_inject_list_and_clear(shell: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    define(shell)
    run(shell, "%worker start -t q")
    capsys.readouterr()
    run(shell, "%fault fail --activity greet --times 2")
    assert "Fault 1: activity 'greet': fail with InjectedFault, 2 more attempt(s)." in capsys.readouterr().out
    run(shell, "%fault crash --after ActivityTaskCompleted --activity greet --when before_commit")
    listed = run(shell, "%fault list")
    assert [r[1] for r in listed.rows] == ["fail", "crash_worker"]
    assert "crash the worker before commit of ActivityTaskCompleted(greet)" in listed.text()
    assert "<table>" in listed._repr_html_()
    run(shell, "%fault clear 2")
    assert [r[1] for r in run(shell, "%fault list").rows] == ["fail"]
    run(shell, "%fault slow -a greet --delay 10ms")
    assert run(shell, "%workflow execute --type Hello -t q -w f1 -i '\"Ada\"'") == "Hello, Ada!"
    log = run(shell, "%fault log -w f1")
    assert [r[1] for r in log.rows] == ["fail", "fail", "slow"]
    capsys.readouterr()
    run(shell, "%fault clear")
    assert "fault(s) removed" in capsys.readouterr().out
    assert run(shell, "%fault list").text() == "Faults: none"


def test_fault_misuse_is_a_usage_error(shell: InteractiveShell) -> None:
    assert "the following arguments are required: --activity" in usage_error(shell, "%fault fail")
    assert "invalid choice" in usage_error(shell, "%fault crash --after X --when later")
    assert "A crash cannot follow 'activity done'" in usage_error(shell, "%fault crash --after 'activity done'")
    assert "Unknown verb 'explode' for %fault" in usage_error(shell, "%fault explode")


def test_explore_tabulates_every_crash_point(shell: InteractiveShell) -> None:
    for cell in PAY_CELLS:
        run(shell, cell)
    view = run(shell, "%explore --type Pay --input 5 --setup reset --check balance")
    assert len(view.points) == 6
    bad = view.violations
    assert [(p.phase, p.description) for p in bad] == [("before_commit", "ActivityTaskStarted(debit) + ActivityTaskCompleted(debit)")]
    html = view._repr_html_()
    assert "Crash exploration of Pay" in html and "1 violation(s)" in html and "balance -10, not -5" in html
    assert "6 crash points, 1 violation(s)" in repr(view)
    assert "no function of that name" in usage_error(shell, "%explore --type Pay -i 5 --check nothing")
    assert "Unknown workflow type 'Nope'" in usage_error(shell, "%explore --type Nope")


def test_a_crashed_kernel_worker_says_so_and_stays_dead(shell: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    define(shell)
    run(shell, "%engine --time skip")  # the dead worker's workflow task times out at once
    first = run(shell, "%worker start -t q")
    run(shell, "%fault crash --after ActivityTaskCompleted --activity greet")
    run(shell, "h = %workflow start --type Hello -t q -w crashed -i '\"Ada\"'")
    for _ in range(200):
        capsys.readouterr()
        run(shell, "%worker list")
        if "crashed (injected fault)" in capsys.readouterr().out:
            break
        run(shell, "import asyncio; await asyncio.sleep(0.02)")
    else:
        raise AssertionError("the worker never showed as crashed")
    assert "No worker of this kernel polls task queue 'q'" in usage_error(shell, "%workflow execute --type Hello -t q -i '\"Bob\"'")
    run(shell, "%worker start -t q")
    assert run(shell, "await h") == "Hello, Ada!"
    view = run(shell, "%workflow show -w crashed -o graph")
    greet = next(row for row in view.rows if row["title"] == "greet")
    assert greet["injected"] == 1 and "⚡ worker crashed here (injected)" in greet["detail"]
    assert "crashed after commit of ActivityTaskStarted(greet)" in greet["tooltip"]
    # A dead worker stays dead when the engine reopens (a new clock) or new code arrives.
    run(shell, "%engine --time real")
    define(shell, word="awake")
    capsys.readouterr()
    run(shell, "%worker list")
    listing = capsys.readouterr().out
    assert "w1    q          crashed (injected fault)" in listing and "w2    q          running" in listing
    assert first.worker is None  # no engine worker serves under its name


@pytest.mark.parametrize(
    "code, expected",
    [
        ("%fault fail --activity gret", "No activity named 'gret' is registered in this kernel (registered: greet), so the fault could never fire. Did you mean greet?"),
        ("%fault hang -a Greet", "No activity named 'Greet'"),
        ("%fault slow -a nobody --delay 1s", "registered: greet"),
        ("%fault crash --after ActivityTaskCompleted --activity Hi", "No activity or workflow named 'Hi' is registered in this kernel (registered: greet, Hello, Nap)"),
        ("%fault crash --after Bogus", "A crash cannot follow 'Bogus': a worker crashes when it writes an event, and workers write only WorkflowTaskCompleted, ActivityTaskScheduled"),
        ("%fault crash --after ActivityTaskComplete -a greet", "Did you mean ActivityTaskCompleted?"),
        ("%fault crash --after WorkflowExecutionStarted", "A crash cannot follow 'WorkflowExecutionStarted'"),
    ],
)
def test_a_fault_that_could_never_fire_is_a_usage_error(shell: InteractiveShell, code: str, expected: str) -> None:
    define(shell)
    message = usage_error(shell, code)
    assert expected in message and "usage: %fault" in message
    assert run(shell, "%fault list").text() == "Faults: none"


def test_a_fault_needs_its_activity_defined_first(shell: InteractiveShell) -> None:
    # Decided: the target must exist when the fault is set (a notebook reads top to bottom);
    # a typo is caught at once instead of a fault that never fires.
    assert "registered: none yet" in usage_error(shell, "%fault fail --activity greet")
    define(shell)
    run(shell, "%fault fail --activity greet")
    run(shell, "%fault crash --after StartChildWorkflowExecutionInitiated --activity Nap")  # a child workflow's type
    assert [r[1] for r in run(shell, "%fault list").rows] == ["fail", "crash_worker"]
