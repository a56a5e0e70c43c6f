"""Errors as a notebook shows them: cells named as IPython names them (``Cell In[12], line 5``),
the user's frames only, one failure instead of three chained tracebacks."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from IPython.core.interactiveshell import InteractiveShell

from engine.errors import ApplicationError, WorkflowFailureError
from kernel_ext._errors import user_frames
from kernel_ext.magics import DurableMagics
from tests.kernel_ext.test_magics import loaded_shell, run


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    monkeypatch.chdir(tmp_path)
    yield from loaded_shell(after=("%config DurableLab.time_mode = 'skip'", "%config DurableLab.db_path = ':memory:'"))


ACTIVITY = '''%%activity
from datetime import timedelta
from engine import activity, workflow
from engine.common import RetryPolicy
from engine.errors import ApplicationError

def check(amount):
    raise ApplicationError(f"cannot pay {amount}", type="Declined")

@activity.defn
async def pay(amount: int) -> str:
    check(amount)
    return "paid"
'''

WORKFLOW = '''%%workflow
@workflow.defn
class Pay:
    @workflow.run
    async def run(self, amount: int) -> str:
        return await workflow.execute_activity(
            pay, amount, start_to_close_timeout=timedelta(seconds=5),
            retry_policy=RetryPolicy(maximum_attempts=2, initial_interval=timedelta(milliseconds=1)))
'''


def failure_of(shell: InteractiveShell, code: str) -> BaseException:
    result = shell.run_cell(code, store_history=True)
    assert result.error_in_exec is not None, code
    return result.error_in_exec


def test_a_failed_run_shows_the_chain_and_the_activitys_own_frames(shell: InteractiveShell) -> None:
    run(shell, ACTIVITY)
    activity_cell = shell.execution_count - 1
    run(shell, WORKFLOW)
    run(shell, "%worker start -t q")
    for code in ("%workflow execute --type Pay -t q -w pay-1 -i 5", "h = %workflow start --type Pay -t q -w pay-2 -i 5\nawait h"):
        error = failure_of(shell, code)
        # The same error as before for `except WorkflowFailureError`, only printed differently.
        assert type(error) is WorkflowFailureError
        assert isinstance(error.cause.cause, ApplicationError) and error.cause.cause.type == "Declined"
        lines = getattr(error, "_render_traceback_")()
        assert lines[:3] == [
            f"WorkflowFailureError: workflow {'pay-1' if 'execute' in code else 'pay-2'!r} (Pay) failed",
            "  caused by ActivityError: activity pay failed (maximum attempts reached)",
            "  caused by ApplicationError (Declined): cannot pay 5",
        ]
        assert lines[4:] == [
            f"  Cell In[{activity_cell}], line 11, in pay",
            "    check(amount)",
            f"  Cell In[{activity_cell}], line 7, in check",
            '    raise ApplicationError(f"cannot pay {amount}", type="Declined")',
            "ApplicationError (Declined): cannot pay 5",
        ]
        assert not any("engine" in line or "kernel_ext" in line for line in lines)


def test_a_workflow_cell_with_a_syntax_error_names_its_own_cell(shell: InteractiveShell) -> None:
    run(shell, "x = 1")
    error = failure_of(shell, "%%workflow\n@workflow.defn\nclass Broken:\n    @workflow.run\n    async def run(self) -> int:\n        return 1 +\n")
    number = shell.execution_count - 1
    assert isinstance(error, SyntaxError) and error.lineno == 5
    assert shell.compile.format_code_name(error.filename) == ("Cell", f"In[{number}]")


def test_user_frames_leave_out_the_engine_and_libraries() -> None:
    import asyncio
    import engine.worker

    text = (
        "Traceback (most recent call last):\n"
        f'  File "{engine.worker.__file__}", line 660, in _invoke\n    result = await defn.fn(*args)\n             ^^^^^^^\n'
        f'  File "{asyncio.__file__}", line 3, in run\n    x()\n'
        '  File "/home/me/shop.py", line 9, in pay\n    check(amount)\n'
        "engine.errors.ApplicationError: no"
    )
    assert user_frames(text) == ['  File "/home/me/shop.py", line 9, in pay', "    check(amount)"]
    assert user_frames("engine.errors.ApplicationError: no") == []


def test_a_nondeterminism_error_names_the_cell(shell: InteractiveShell) -> None:
    run(shell, ACTIVITY)
    run(shell, WORKFLOW)
    run(shell, "%worker start -t q")
    failure_of(shell, "%workflow execute --type Pay -t q -w pay-1 -i 5")
    magics = next(m for m in shell.magics_manager.registry.values() if isinstance(m, DurableMagics))
    assert magics.session.client is not None
    shell.user_ns["client"] = magics.session.client
    run(shell, "history = await client.get_workflow_handle('pay-1').fetch_history()")
    run(shell, """
@workflow.defn(name="Pay")
class PayV2:
    @workflow.run
    async def run(self, amount: int) -> str:
        await workflow.sleep(1)
        return "changed"
""")
    changed_cell = shell.execution_count - 1
    error = failure_of(shell, "from engine.replay import Replayer\nReplayer(workflows=[PayV2]).replay_workflow(history)")
    assert f'Code line: Cell In[{changed_cell}], line 5, in run: "await workflow.sleep(1)"' in str(error)
