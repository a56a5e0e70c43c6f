"""``%check NAME`` through a real IPython shell: a verdict, or a one-line UsageError."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from IPython.core.interactiveshell import InteractiveShell

from kernel_ext.exercises import Verdict
from tests.kernel_ext.test_magics import define, loaded_shell, run, usage_error

CHECK_MODULE = '''
from kernel_ext.exercises import Check, exercise

@exercise("say hello", hint="Run the Hello workflow on queue q.")
async def say_hello(c: Check) -> None:
    run = await c.run("Hello", "Ada", task_queue="q")
    c.require_completed(run)
    c.expect(run.result == "Hello, Ada!", "it greets Ada", f"it returned {run.result!r}")
'''


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    monkeypatch.chdir(tmp_path)
    yield from loaded_shell(before=("%config DurableLab.db_path = ':memory:'",))


def test_check_shows_a_verdict_and_misuse_is_one_usage_line(shell: InteractiveShell) -> None:
    define(shell)
    assert "%check takes the name of one exercise (this notebook has: none yet" in usage_error(shell, "%check")
    run(shell, CHECK_MODULE)
    message = usage_error(shell, "%check say_helo")
    assert message.startswith("No exercise named 'say_helo' in this notebook (it has: say_hello).")
    verdict = run(shell, "%check say_hello")
    assert isinstance(verdict, Verdict) and not verdict.passed
    assert verdict.not_yet == ["no worker of this kernel polls task queue 'q', so the check's run would wait forever."]
    run(shell, "%worker start --task-queue q")
    verdict = run(shell, "%check say_hello")
    assert verdict.passed, verdict.text()
    assert verdict.text() == "Well done: say hello\n  ✓ the run completed\n  ✓ it greets Ada"
    shell.run_cell("%unload_ext kernel_ext")
    assert "check" not in shell.magics_manager.magics["line"]
    shell.run_cell("%load_ext kernel_ext")  # the fixture unloads it again
